/**
 * KurrentDB implementation of the event store port, on `@kurrent/kurrentdb-client`. The only module that
 * imports the client: it maps the client's revisions, positions, events and errors to the port's. The port's types
 * are read as `Port.…` here, so that a `Position` or `RecordedEvent` says whose it is.
 *
 * `$all` on a real server holds system events (`$`-prefixed types); every feed read here skips them.
 * The server filters `$all` on one thing only (stream name or event type), so a filter on both is applied
 * partly on the server and partly here; that is why limited `$all` reads are paged.
 */
import {
  ANY,
  BACKWARDS,
  CancelledError,
  convertToCommandError,
  DeadlineExceededError,
  END,
  eventTypeFilter,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  KurrentDBClient,
  NO_STREAM,
  NotLeaderError,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  streamNameFilter,
  TimeoutError,
  UnavailableError,
  UnknownError,
  UnsupportedError,
  WrongExpectedVersionError,
  type AllStreamRecordedEvent,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type AppendStreamRequest,
  type AppendStreamState,
  type CurrentStreamState,
  type Filter,
  type JSONType,
  type ReadPosition,
  type RecordedEvent as KurrentRecordedEvent,
  type Position as KurrentPosition,
} from '@kurrent/kurrentdb-client';
import { z } from 'zod';
import { checkAppendManyRequests, ConcurrencyConflict, EventStoreUnavailable, MultiStreamConflict } from '../../domain/ports/event-store.ts';
import type * as Port from '../../domain/ports/event-store.ts';
import { appendInOrder } from './append-in-order.ts';
import { notLeaderNode, type Endpoint } from './kurrentdb-not-leader.ts';

/**
 * Positions look like `<commit>:<prepare>`, each zero-padded to the 20 digits of a uint64, so that they also
 * sort correctly as plain strings (e.g. in a checkpoint column). Only this module reads them.
 */
export function encodePosition({ commit, prepare }: KurrentPosition): Port.Position {
  return `${commit.toString().padStart(20, '0')}:${prepare.toString().padStart(20, '0')}` as Port.Position;
}

export function decodePosition(position: string): KurrentPosition {
  const match = /^(\d{20}):(\d{20})$/.exec(position);
  if (!match) throw new TypeError(`Not a KurrentDB event store position: ${position}`);
  return { commit: BigInt(match[1]!), prepare: BigInt(match[2]!) };
}

const compare = (a: KurrentPosition, b: KurrentPosition) =>
  a.commit === b.commit ? (a.prepare === b.prepare ? 0 : a.prepare < b.prepare ? -1 : 1) : a.commit < b.commit ? -1 : 1;

const metadataSchema = z
  .object({
    correlationId: z.string().optional(),
    causationId: z.string().optional(),
    actor: z.string().optional(),
    schemaVersion: z.number().int().positive().optional(),
  })
  .catchall(z.json());

/**
 * `multiStreamAppend` sends metadata as the record's properties, whose values must be strings, and v1 readers
 * get the properties back as a JSON object. So those events carry their metadata as JSON in this one property,
 * unwrapped on reading; events written by `append` carry it as plain JSON custom metadata.
 * KurrentDB 25.1 adds keys of its own to that object (`$schema.name`, `$schema.format`); `$`-prefixed keys are the
 * server's, so they are set aside before unwrapping (the metadata itself is inside the property).
 */
const WRAPPED_METADATA = 'tally-metadata';
const wrappedMetadataSchema = z.strictObject({ [WRAPPED_METADATA]: z.string() });

const withoutServerKeys = (metadata: unknown): unknown =>
  metadata !== null && typeof metadata === 'object' && !Array.isArray(metadata)
    ? Object.fromEntries(Object.entries(metadata).filter(([key]) => !key.startsWith('$')))
    : metadata;

function unwrapMetadata(metadata: unknown): unknown {
  const wrapped = wrappedMetadataSchema.safeParse(withoutServerKeys(metadata));
  if (!wrapped.success) return metadata;
  try {
    return JSON.parse(wrapped.data[WRAPPED_METADATA]);
  } catch {
    return wrapped.data;
  }
}

function toEventData(event: Port.NewEvent, wrapMetadata = false) {
  // Same default as the PostgreSQL adapter, so a stored event always says which schema its data follows.
  const metadata = { schemaVersion: 1, ...event.metadata };
  return jsonEvent({
    id: event.id,
    type: event.type,
    // The client types JSON data as object | array | string, but serialises whatever it gets with
    // JSON.stringify, so every JSON value (numbers, booleans, null) round-trips.
    data: event.data as JSONType,
    metadata: wrapMetadata ? { [WRAPPED_METADATA]: JSON.stringify(metadata) } : metadata,
  });
}

/** `omit` (ReadAllOptions.omit): the client always receives both parts; omitted ones are not validated nor handed on (but the schemaVersion). */
function toRecorded(event: KurrentRecordedEvent, omit: readonly Port.ReadAllPart[] = []): Port.RecordedEvent {
  const where = `Event ${event.id} in ${event.streamId}`;
  if (!event.isJson) throw new Error(`${where} is not JSON; this store writes JSON only`);
  // Servers before 22.6 do not send positions with events; the feed cannot do without them.
  if (!event.position) throw new Error(`${where} has no position (KurrentDB 22.6 or later required)`);
  let metadata: Port.EventMetadata;
  if (omit.includes('metadata')) {
    // Only what decoding the data needs (ReadAllOptions.omit).
    const version = (unwrapMetadata(event.metadata ?? {}) as { schemaVersion?: unknown } | null)?.schemaVersion;
    metadata = typeof version === 'number' ? { schemaVersion: version } : {};
  } else {
    const parsed = metadataSchema.safeParse(unwrapMetadata(event.metadata ?? {}));
    if (!parsed.success) throw new Error(`${where} has invalid metadata: ${parsed.error.message}`);
    metadata = parsed.data;
  }
  return {
    id: event.id,
    type: event.type,
    // JSON events arrive parsed by the client's JSON.parse, so the value is JSON by construction.
    data: omit.includes('data') ? null : (event.data as Port.JsonValue),
    metadata,
    stream: event.streamId,
    revision: Number(event.revision),
    position: encodePosition(event.position),
    // The client's stream and $all reads (its native bridge) give whole seconds, its subscriptions milliseconds: the
    // same second either way. Not truncated here: the read models, fed by the subscription, order a wallet's lines
    // within a second by it (the ledger CSV pages on the time, ties by line id).
    recordedAt: event.created,
  };
}

function toStreamState(expected: Port.ExpectedRevision): AppendStreamState {
  if (typeof expected !== 'number') {
    return expected === 'no_stream' ? NO_STREAM : expected === 'stream_exists' ? STREAM_EXISTS : ANY;
  }
  if (!Number.isSafeInteger(expected) || expected < 0) throw new RangeError(`Invalid expected revision ${expected}`);
  return BigInt(expected);
}

/** Older servers report a missing stream as revision -1 in the error trailers. */
const toActual = (state: CurrentStreamState): number | 'no_stream' =>
  state === NO_STREAM || state < 0n ? 'no_stream' : Number(state);

/**
 * Why KurrentDB did not handle an append it answers on `Streams/BatchAppend` (`NotHandled`: not ready, too busy,
 * no leader known). Its answer carries only this text, which the client reports as an `UnknownError`
 * "Could not recognize <text>".
 */
const NOT_HANDLED = ['Server Is Not Ready', 'Server Is Busy', 'No leader info available in response'];

const isNotHandled = (error: unknown) =>
  error instanceof UnknownError && NOT_HANDLED.some((reason) => error.message.endsWith(reason));

/**
 * Failures worth a retry: the server is down, restarting, not the leader, busy, or timed out. Some client paths
 * (e.g. its feature probe before an append) throw raw gRPC errors, hence the conversion first.
 */
function isTransient(error: unknown): error is Error {
  const converted = error instanceof Error ? convertToCommandError(error) : error;
  return (
    converted instanceof UnavailableError ||
    converted instanceof NotLeaderError ||
    converted instanceof CancelledError ||
    converted instanceof DeadlineExceededError ||
    converted instanceof TimeoutError ||
    isNotHandled(converted)
  );
}

function translate(error: unknown): unknown {
  if (isTransient(error)) return new EventStoreUnavailable(`KurrentDB unavailable: ${error.message}`, { cause: error });
  return error;
}

/** Empty lists are treated as absent: they do not filter. */
function normalise(filter: Port.EventFilter | undefined): Port.EventFilter {
  return {
    ...(filter?.eventTypes?.length ? { eventTypes: filter.eventTypes } : {}),
    ...(filter?.streamPrefixes?.length ? { streamPrefixes: filter.streamPrefixes } : {}),
  };
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The part of the filter the server applies. Stream prefixes go to the server when given (they are the
 * narrower selection in practice); otherwise exact event types go as an anchored regex, which also keeps
 * system events out; otherwise the client's own system-event exclusion.
 */
function serverFilter(filter: Port.EventFilter): Filter {
  if (filter.streamPrefixes) return streamNameFilter({ prefixes: [...filter.streamPrefixes] });
  if (filter.eventTypes) return eventTypeFilter({ regex: `^(?:${filter.eventTypes.map(escapeRegex).join('|')})$` });
  return excludeSystemEvents();
}

/** The whole filter, checked on every event that reaches us. */
const accepts = (filter: Port.EventFilter, event: KurrentRecordedEvent) =>
  !event.type.startsWith('$') &&
  (!filter.eventTypes || filter.eventTypes.includes(event.type)) &&
  (!filter.streamPrefixes || filter.streamPrefixes.some((prefix) => event.streamId.startsWith(prefix)));

async function collect(events: AsyncIterable<AllStreamResolvedEvent>): Promise<AllStreamRecordedEvent[]> {
  const recorded: AllStreamRecordedEvent[] = [];
  for await (const resolved of events) if (resolved.event) recorded.push(resolved.event);
  return recorded;
}

/** Smallest page for limited `$all` reads, so a selective client-side filter does not mean many round trips. */
const MIN_PAGE = 64;

/**
 * Makes a client: to the configured server(s), or, after a v2 not-leader answer, towards the leader it named
 * (which the client does by itself only for v1 answers).
 */
export type KurrentDbConnect = (leader?: Endpoint) => KurrentDBClient;

export class KurrentDbEventStore implements Port.EventStore {
  private readonly subscriptions = new Set<KurrentDbSubscription>();
  private multiStream: Promise<boolean> | undefined;
  private client: KurrentDBClient;
  /**
   * Clients replaced after a not-leader answer, closed with the store: calls still under way on them (an append,
   * a subscription reading from the follower) finish there rather than being cancelled, which the client would
   * report as an unrecognised error.
   */
  private readonly replaced: KurrentDBClient[] = [];

  constructor(private readonly connect: KurrentDbConnect) {
    this.client = connect();
  }

  async append(stream: string, events: readonly Port.NewEvent[], expected: Port.ExpectedRevision): Promise<Port.AppendResult> {
    if (events.length === 0) throw new TypeError('append needs at least one event');
    try {
      const result = await this.client.appendToStream(stream, events.map((event) => toEventData(event)), {
        streamState: toStreamState(expected),
      });
      if (!result.position) throw new Error(`KurrentDB returned no position for an append to ${stream}`);
      return { nextExpectedRevision: Number(result.nextExpectedRevision), position: encodePosition(result.position) };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        throw new ConcurrencyConflict(stream, expected, toActual(error.actualState));
      }
      throw translate(error);
    }
  }

  /**
   * Atomic through the client's `multiStreamAppend` (KurrentDB 25.1+); on an older server, one append per stream
   * in request order (see `appendInOrder`). The server answers revisions and one commit position for the whole
   * transaction; the exact position of each stream's last event is read back (one concurrent read per stream).
   */
  async appendMany(requests: readonly Port.StreamAppend[]): Promise<Port.AppendManyResult> {
    checkAppendManyRequests(requests);
    if (requests.length === 0) return { streams: [] };
    if (!(await this.supportsAtomicMultiStream())) return appendInOrder(this, requests);
    const streams = requests.map((request): AppendStreamRequest => ({
      streamName: request.stream,
      events: request.events.map((event) => toEventData(event, true)),
      expectedState: toStreamState(request.expected),
    }));
    let revisions: Map<string, number>;
    const client = this.client;
    try {
      const result = await client.multiStreamAppend(streams);
      revisions = new Map(result.responses.map((response) => [response.streamName, Number(response.revision)]));
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        // The server compares stream names ignoring case within a session.
        const request =
          requests.find((r) => r.stream === error.streamName) ??
          requests.find((r) => r.stream.toLowerCase() === error.streamName.toLowerCase());
        if (request) throw new MultiStreamConflict([{ stream: request.stream, expected: request.expected, actual: toActual(error.actualState) }]);
      }
      if (error instanceof UnsupportedError) {
        // A server without multi-stream appends became leader after this store said it had them: appending
        // stream by stream now would break what the caller relies on. Transient from the caller's side.
        throw new EventStoreUnavailable('KurrentDB no longer offers multi-stream appends (a server before 25.1 is leader)', {
          cause: error,
        });
      }
      const notLeader = notLeaderNode(error);
      if (notLeader) {
        this.reconnect(client, notLeader.leader);
        const towards = notLeader.leader ? ` ${notLeader.leader.host}:${notLeader.leader.port}` : '';
        throw new EventStoreUnavailable(`KurrentDB: not the leader; reconnecting to the leader${towards}`, { cause: error });
      }
      throw translate(error);
    }
    const written = await Promise.all(
      requests.map(async ({ stream }): Promise<Port.StreamAppendResult> => {
        const revision = revisions.get(stream);
        if (revision === undefined) throw new Error(`KurrentDB answered no revision for ${stream}`);
        const [last] = await this.readStream(stream, { direction: 'backwards', fromRevision: revision, limit: 1 });
        if (!last) throw new Error(`KurrentDB: ${stream} has no event at revision ${revision} just appended`);
        return { stream, nextExpectedRevision: revision, position: last.position };
      }),
    );
    const position = written.reduce((latest, s) => (this.isAfter(s.position, latest) ? s.position : latest), written[0]!.position);
    return { streams: written, position };
  }

  /** Once per failed client: calls that failed on it together reconnect once. */
  private reconnect(failed: KurrentDBClient, leader: Endpoint | undefined): void {
    if (this.client !== failed) return;
    this.replaced.push(failed);
    this.client = this.connect(leader);
  }

  /**
   * Asked of the server once (the client learns its supported methods; an empty append session is refused
   * by a server that has them and never sent to one that has not). A transient failure is not remembered.
   */
  supportsAtomicMultiStream(): Promise<boolean> {
    this.multiStream ??= this.client.multiStreamAppend([]).then(
      () => true,
      (error: unknown) => {
        if (error instanceof UnsupportedError) return false;
        if (isTransient(error)) {
          this.multiStream = undefined;
          throw translate(error);
        }
        return true;
      },
    );
    return this.multiStream;
  }

  /** The client reads one stream per call: the streams are read concurrently. */
  async readStreams(streams: readonly string[]): Promise<Map<string, Port.RecordedEvent[]>> {
    const unique = [...new Set(streams)];
    const read = await Promise.all(unique.map(async (stream) => [stream, await this.readStream(stream)] as const));
    return new Map(read);
  }

  async readStream(stream: string, options: Port.ReadStreamOptions = {}): Promise<Port.RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    if (options.limit !== undefined && options.limit <= 0) return [];
    try {
      const events: Port.RecordedEvent[] = [];
      const read = this.client.readStream(stream, {
        direction: backwards ? BACKWARDS : FORWARDS,
        fromRevision: options.fromRevision === undefined ? (backwards ? END : START) : BigInt(options.fromRevision),
        ...(options.limit === undefined ? {} : { maxCount: options.limit }),
      });
      for await (const resolved of read) if (resolved.event) events.push(toRecorded(resolved.event));
      return events;
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw translate(error);
    }
  }

  async readAll(options: Port.ReadAllOptions = {}): Promise<Port.RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return [];
    const filter = normalise(options.filter);
    const start = options.from ?? (backwards ? 'end' : 'start');
    let from: ReadPosition = start === 'start' ? START : start === 'end' ? END : decodePosition(start);
    const upTo = options.to ? decodePosition(options.to) : undefined;
    const selected: Port.RecordedEvent[] = [];
    let repeated: KurrentPosition | undefined;
    try {
      for (;;) {
        // Part of the filter may apply here, after the server counted the page: read pages until the limit is
        // filled from accepted events, or the feed ends.
        const pageSize = Number.isFinite(limit)
          ? Math.max(limit - selected.length, MIN_PAGE) + (repeated ? 1 : 0)
          : undefined;
        const page = await collect(
          this.client.readAll({
            direction: backwards ? BACKWARDS : FORWARDS,
            fromPosition: from,
            filter: serverFilter(filter),
            ...(pageSize === undefined ? {} : { maxCount: pageSize }),
          }),
        );
        for (const event of page) {
          if (repeated && compare(event.position, repeated) === 0) continue;
          if (upTo && !backwards && compare(event.position, upTo) > 0) return selected;
          if (accepts(filter, event)) selected.push(toRecorded(event, options.omit));
          if (selected.length >= limit) return selected;
        }
        const last = page.at(-1);
        if (pageSize === undefined || page.length < pageSize || !last) return selected;
        from = last.position;
        // A forwards read includes its start position, which the previous page already returned.
        repeated = backwards ? undefined : last.position;
      }
    } catch (error) {
      throw translate(error);
    }
  }

  subscribeToAll(options: Port.SubscribeOptions = {}): Port.Subscription {
    const filter = normalise(options.filter);
    const subscription = new KurrentDbSubscription({
      open: (fromPosition) => this.client.subscribeToAll({ fromPosition, filter: serverFilter(filter) }),
      from: options.from === undefined || options.from === 'start' ? START : decodePosition(options.from),
      accepts: (event) => accepts(filter, event),
      onStopped: (stopped) => this.subscriptions.delete(stopped),
    });
    this.subscriptions.add(subscription);
    return subscription;
  }

  async headPosition(): Promise<Port.Position | undefined> {
    try {
      const [last] = await collect(
        this.client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1, filter: excludeSystemEvents() }),
      );
      return last && encodePosition(last.position);
    } catch (error) {
      throw translate(error);
    }
  }

  isAfter(a: Port.Position, b: Port.Position): boolean {
    return compare(decodePosition(a), decodePosition(b)) > 0;
  }

  async ping(): Promise<void> {
    try {
      await collect(this.client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }));
    } catch (error) {
      // Whatever the failure, the probe's answer is the same: not ready.
      const translated = translate(error);
      if (translated instanceof EventStoreUnavailable) throw translated;
      throw new EventStoreUnavailable('KurrentDB ping failed', { cause: error });
    }
  }

  async close(): Promise<void> {
    // The client's dispose cancels subscription calls silently, which would leave their iterators pending.
    await Promise.all([...this.subscriptions].map((subscription) => subscription.stop()));
    await Promise.all([this.client, ...this.replaced].map((client) => client.dispose()));
  }
}

export function createKurrentDbEventStore(connectionString: string): KurrentDbEventStore {
  return new KurrentDbEventStore((leader) =>
    KurrentDBClient.connectionString(leader ? towardsLeader(connectionString, leader) : connectionString),
  );
}

/**
 * A connection string that reaches the leader: with discovery (`+discover`, or several hosts: gossip) the same
 * string, whose discovery finds the leader (node preference `leader`, the default); with one host, that host
 * replaced by the leader's, other settings kept. Like the client after a v1 not-leader answer, which then stays on
 * the leader.
 */
export function towardsLeader(connectionString: string, leader: Endpoint): string {
  const match = /^([a-z+]+:\/\/(?:[^@/?]*@)?)([^/?]*)(.*)$/i.exec(connectionString);
  if (!match || match[1]!.toLowerCase().includes('+discover') || match[2]!.includes(',')) return connectionString;
  const host = leader.host.includes(':') ? `[${leader.host}]` : leader.host;
  return `${match[1]}${host}:${leader.port}${match[3]}`;
}

interface SubscriptionSource {
  open(from: ReadPosition): AllStreamSubscription;
  from: ReadPosition;
  accepts(event: KurrentRecordedEvent): boolean;
  onStopped(subscription: KurrentDbSubscription): void;
}

/** Pause the server's stream when this many items wait for the consumer; resume below the low mark. */
const HIGH_WATER = 512;
const LOW_WATER = 128;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * Adapts the client's subscription (a Node stream plus a `caughtUp` event) to the port's async iterable, and
 * survives drops: after a transient error it resubscribes after the last event it received, so consumers see
 * nothing twice and miss nothing. Items are queued here; iterators created from it share the queue.
 */
class KurrentDbSubscription implements Port.Subscription {
  private readonly queue: Port.SubscriptionItem[] = [];
  private readonly waiters: {
    resolve(result: IteratorResult<Port.SubscriptionItem>): void;
    reject(error: unknown): void;
  }[] = [];
  private failure: { error: unknown } | undefined;
  private stopped = false;
  private caughtUp = false;
  /** Position of the last event received from the server, whether or not it passed the filter. */
  private resumeFrom: ReadPosition;
  private lastDelivered: KurrentPosition | undefined;
  private current: AllStreamSubscription | undefined;
  private paused = false;
  private retryDelay = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly source: SubscriptionSource) {
    this.resumeFrom = source.from;
    this.connect();
  }

  [Symbol.asyncIterator](): AsyncIterator<Port.SubscriptionItem> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    for (const waiter of this.waiters.splice(0)) waiter.resolve({ done: true, value: undefined });
    this.source.onStopped(this);
    // Cancelling a call that never got going (server unreachable) can fail; stopping must not.
    await this.detach()
      ?.unsubscribe()
      .catch(() => undefined);
  }

  private next(): Promise<IteratorResult<Port.SubscriptionItem>> {
    const item = this.queue.shift();
    if (item) {
      if (this.paused && this.queue.length <= LOW_WATER) {
        this.paused = false;
        this.current?.resume();
      }
      return Promise.resolve({ done: false, value: item });
    }
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.stopped) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private push(item: Port.SubscriptionItem): void {
    const waiter = this.waiters.shift();
    if (waiter) return waiter.resolve({ done: false, value: item });
    this.queue.push(item);
    if (!this.paused && this.queue.length >= HIGH_WATER) {
      this.paused = true;
      this.current?.pause();
    }
  }

  private connect(): void {
    if (this.stopped) return;
    let subscription: AllStreamSubscription;
    try {
      subscription = this.source.open(this.resumeFrom);
    } catch (error) {
      return this.fail(error);
    }
    this.current = subscription;
    // Listeners stay attached after a drop; once this is no longer the current subscription they ignore
    // anything it still emits (buffered events would otherwise arrive twice, once more after resubscribing).
    const isCurrent = () => this.current === subscription;
    // Events still buffered inside the client's stream when `caughtUp` fires came before it: count them down.
    let eventsBeforeCaughtUp: number | undefined;

    subscription.on('confirmation', () => {
      if (isCurrent()) this.retryDelay = RETRY_FIRST_MS;
    });
    subscription.on('data', ({ event }: AllStreamResolvedEvent) => {
      if (!isCurrent()) return;
      if (event) this.received(event);
      if (eventsBeforeCaughtUp !== undefined && --eventsBeforeCaughtUp === 0) this.markCaughtUp();
    });
    subscription.on('caughtUp', () => {
      if (!isCurrent()) return;
      if (subscription.readableLength === 0) this.markCaughtUp();
      else eventsBeforeCaughtUp = subscription.readableLength;
    });
    subscription.on('error', (error: unknown) => {
      if (isCurrent()) this.dropped(error);
    });
    subscription.on('end', () => {
      if (isCurrent()) this.dropped(new UnavailableError(undefined, 'subscription ended by the server'));
    });
    if (this.paused) subscription.pause();
  }

  private received(event: AllStreamRecordedEvent): void {
    this.resumeFrom = event.position;
    if (!this.source.accepts(event)) return;
    let recorded: Port.RecordedEvent;
    try {
      recorded = toRecorded(event);
    } catch (error) {
      return this.fail(error);
    }
    this.lastDelivered = event.position;
    this.push({ kind: 'event', event: recorded });
  }

  /** One marker per subscription: after a resubscription the server catches up again, which is not news. */
  private markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.push({ kind: 'caught-up', ...(this.lastDelivered ? { position: encodePosition(this.lastDelivered) } : {}) });
  }

  private dropped(error: unknown): void {
    this.detach()
      ?.unsubscribe()
      .catch(() => undefined);
    if (!isTransient(error)) return this.fail(error);
    this.retryTimer = setTimeout(() => this.connect(), this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
  }

  private detach(): AllStreamSubscription | undefined {
    const subscription = this.current;
    this.current = undefined;
    return subscription;
  }

  private fail(error: unknown): void {
    if (this.stopped) return;
    this.failure = { error: translate(error) };
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.detach()
      ?.unsubscribe()
      .catch(() => undefined);
    this.source.onStopped(this);
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure.error);
  }
}
