/**
 * The event store port. The core depends on this interface only; `adapters/eventstore/` holds the
 * PostgreSQL and KurrentDB implementations, which must both pass `tests/integration/event-store.contract.ts`.
 */

/** JSON-compatible value: what event data and metadata may contain. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Metadata carried by every event. Extra keys are kept as given. */
export interface EventMetadata {
  correlationId?: string;
  causationId?: string;
  /** Who caused the event: `user:<id>`, `admin:<id>`, `square:<merchantId>`, `system:<process>`. */
  actor?: string;
  /** Schema version of the event's data; defaults to 1. */
  schemaVersion?: number;
  [key: string]: JsonValue | undefined;
}

/** An event about to be appended. `id` is a uuid chosen by the caller so that a retried append is idempotent. */
export interface NewEvent<Type extends string = string, Data extends JsonValue = JsonValue> {
  id: string;
  type: Type;
  data: Data;
  metadata?: EventMetadata;
}

/**
 * A position in the global feed. Opaque: compare only through the store (never parse or do arithmetic);
 * it survives a round trip through JSON as a string.
 */
export type Position = string & { readonly __position: unique symbol };

export interface RecordedEvent<Type extends string = string, Data extends JsonValue = JsonValue> {
  id: string;
  type: Type;
  data: Data;
  metadata: EventMetadata;
  stream: string;
  /** 0-based revision of the event within its stream. */
  revision: number;
  position: Position;
  recordedAt: Date;
}

/**
 * What the writer believes about the stream:
 * `no_stream` — it must not exist; `stream_exists` — it must exist; `any` — no check;
 * a number — the revision of the stream's last event must be exactly this.
 */
export type ExpectedRevision = 'no_stream' | 'any' | 'stream_exists' | number;

export interface AppendResult {
  /** Revision of the last event appended (the stream's new current revision). */
  nextExpectedRevision: number;
  /** Global position of the last event appended. */
  position: Position;
}

/** One stream's part of an `appendMany`: the same three things `append` takes. */
export interface StreamAppend {
  stream: string;
  /** At least one event. */
  events: readonly NewEvent[];
  expected: ExpectedRevision;
}

/** What an `appendMany` wrote to one stream. */
export interface StreamAppendResult extends AppendResult {
  stream: string;
}

export interface AppendManyResult {
  /** One entry per request, in request order. */
  streams: StreamAppendResult[];
  /**
   * Position of the last event written by the call (events are written in request order): a subscriber that
   * has seen it has seen every event of the call. Absent only when `requests` was empty.
   */
  position?: Position;
}

export type Direction = 'forwards' | 'backwards';

export interface ReadStreamOptions {
  direction?: Direction;
  /** Inclusive start revision; defaults to the first (forwards) or last (backwards) event. */
  fromRevision?: number;
  /** Maximum number of events to return; defaults to all. */
  limit?: number;
}

export interface HeadOptions {
  /**
   * A head at or after every event committed before the call, or `EventStoreUnavailable` (retry later) when appends
   * in progress hold such events back past the store's bound. For a reader that must not decide on a view missing
   * anything written before it asked (ingestion's view of connections and rules). Undefined only for an empty store.
   */
  complete?: boolean;
}

/** Selects events in `$all` reads and subscriptions. Types are matched exactly. */
export interface EventFilter {
  eventTypes?: readonly string[];
  /** Stream name prefixes. */
  streamPrefixes?: readonly string[];
}

export interface ReadAllOptions {
  direction?: Direction;
  /**
   * Where to start. Forwards includes `from`; backwards excludes it (the rule KurrentDB follows).
   * Defaults to the start (forwards) or the end (backwards).
   */
  from?: Position | 'start' | 'end';
  /** Forwards only: stop after this position (inclusive). Everything up to a position handed out is settled. */
  to?: Position;
  limit?: number;
  filter?: EventFilter;
  /**
   * Parts of each event not to read (a projection, in the SQL sense): a reader that never looks at them saves
   * moving and parsing them. An omitted `metadata` reads as its `schemaVersion` alone (`{}` without one: what
   * decoding the data needs), an omitted `data` as `null`; everything else (id, type, stream, revision, position,
   * time) is always read.
   */
  omit?: readonly ReadAllPart[];
}

/** What `ReadAllOptions.omit` may leave out. */
export type ReadAllPart = 'data' | 'metadata';

export interface SubscribeOptions {
  /** Resume after this position (exclusive). Omit or `start` to begin with the first event. */
  from?: Position | 'start';
  filter?: EventFilter;
  /**
   * A hint for the catch-up: how many events one read of the history fetches (a rebuild reads bigger pages than a
   * live projection). Stores may ignore it; it never changes what the subscription yields.
   */
  pageSize?: number;
}

/** Items a subscription yields: events in global order, and one marker when the historical part is done. */
export type SubscriptionItem = { kind: 'event'; event: RecordedEvent } | { kind: 'caught-up'; position?: Position };

export interface Subscription extends AsyncIterable<SubscriptionItem> {
  /** Stops the subscription; a pending iteration ends. Idempotent. */
  stop(): Promise<void>;
}

export interface EventStore {
  /** Appends atomically. Throws `ConcurrencyConflict` when `expected` does not hold. */
  append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /**
   * Appends to several streams, each request checked against its own expected revision, events written in
   * request order (so the feed delivers them in that order, and, where atomic, contiguously).
   *
   * Where `supportsAtomicMultiStream()` is true it is all or nothing: on a wrong expected revision in any
   * stream nothing is written and it throws `MultiStreamConflict` naming the conflicting streams.
   * Where it is false the requests are appended one stream at a time, in order, stopping at the first failure:
   * a `MultiStreamConflict` then lists in `written` the requests that were already appended (any other error
   * may also leave a prefix written). Appends are idempotent by event id, so retrying the same requests is safe.
   *
   * Each stream may appear once per call, with at least one event (else `TypeError`). An empty list writes nothing.
   */
  appendMany(requests: readonly StreamAppend[]): Promise<AppendManyResult>;
  /** True when `appendMany` is atomic across streams on this store (KurrentDB: 25.1 and later, see README). */
  supportsAtomicMultiStream(): Promise<boolean>;
  /** A stream that does not exist reads as empty. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /**
   * Reads several whole streams forwards, in one round trip where the store allows. Every requested name is
   * a key of the result; a stream that does not exist maps to an empty list.
   */
  readStreams(streams: readonly string[]): Promise<Map<string, RecordedEvent[]>>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Catch-up then live subscription to the global feed, skipping system events. */
  subscribeToAll(options?: SubscribeOptions): Subscription;
  /**
   * The position of the newest event in the feed, if any. On a store whose feed holds back events committed after
   * an append still in progress (PostgreSQL), the newest settled event: a brief append is waited for (as a forwards
   * `readAll` waits), one in progress for longer is not, so the answer may lie before events committed already.
   * Never undefined while the feed has an event to hand out.
   */
  headPosition(options?: HeadOptions): Promise<Position | undefined>;
  /** True when `a` comes after `b` in the feed (positions are opaque to callers). */
  isAfter(a: Position, b: Position): boolean;
  /** Cheap reachability check for readiness probes. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The stream's actual state did not match the writer's expectation. */
export class ConcurrencyConflict extends Error {
  readonly code = 'CONCURRENCY_CONFLICT';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedRevision,
    /** The stream's actual current revision, or `no_stream`. */
    readonly actual: number | 'no_stream',
  ) {
    super(`Stream ${stream}: expected revision ${String(expected)}, actual ${String(actual)}`);
    this.name = 'ConcurrencyConflict';
  }
}

/** A conflicting stream in a `MultiStreamConflict`. */
export interface StreamConflict {
  stream: string;
  expected: ExpectedRevision;
  actual: number | 'no_stream';
}

/**
 * Some streams of an `appendMany` did not match their expected revisions. It is a `ConcurrencyConflict` whose
 * `stream`, `expected` and `actual` describe the first conflict in request order.
 */
export class MultiStreamConflict extends ConcurrencyConflict {
  constructor(
    /**
     * The conflicting streams, in request order; never empty. PostgreSQL and the in-memory store report every
     * conflicting stream; KurrentDB reports the first its server found (re-decide it and try again).
     */
    readonly conflicts: readonly StreamConflict[],
    /** Requests already appended: always empty where `appendMany` is atomic. */
    readonly written: readonly StreamAppendResult[] = [],
  ) {
    const [first] = conflicts;
    if (!first) throw new TypeError('MultiStreamConflict needs at least one conflict');
    super(first.stream, first.expected, first.actual);
    this.name = 'MultiStreamConflict';
    if (conflicts.length > 1) this.message = `${conflicts.length} streams in conflict: ${conflicts.map((c) => c.stream).join(', ')}; first: ${this.message}`;
  }
}

/** Throws `TypeError` unless every request names a different stream and carries at least one event. */
export function checkAppendManyRequests(requests: readonly StreamAppend[]): void {
  const seen = new Set<string>();
  for (const { stream, events } of requests) {
    if (events.length === 0) throw new TypeError(`appendMany: no events for stream ${stream}`);
    if (seen.has(stream)) throw new TypeError(`appendMany: stream ${stream} appears twice; merge its events into one request`);
    seen.add(stream);
  }
}

/** The event store could not be reached or answered with a transient failure; the caller may retry. */
export class EventStoreUnavailable extends Error {
  readonly code = 'EVENT_STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStoreUnavailable';
  }
}
