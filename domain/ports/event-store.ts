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

export type Direction = 'forwards' | 'backwards';

export interface ReadStreamOptions {
  direction?: Direction;
  /** Inclusive start revision; defaults to the first (forwards) or last (backwards) event. */
  fromRevision?: number;
  /** Maximum number of events to return; defaults to all. */
  limit?: number;
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
}

export interface SubscribeOptions {
  /** Resume after this position (exclusive). Omit or `start` to begin with the first event. */
  from?: Position | 'start';
  filter?: EventFilter;
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
  /** A stream that does not exist reads as empty. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Catch-up then live subscription to the global feed, skipping system events. */
  subscribeToAll(options?: SubscribeOptions): Subscription;
  /** The position of the newest event in the feed, if any. */
  headPosition(): Promise<Position | undefined>;
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

/** The event store could not be reached or answered with a transient failure; the caller may retry. */
export class EventStoreUnavailable extends Error {
  readonly code = 'EVENT_STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStoreUnavailable';
  }
}
