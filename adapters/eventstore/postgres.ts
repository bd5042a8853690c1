/**
 * PostgreSQL implementation of the event store port.
 *
 * Global order is (ordering key, sequence), the key being the appending transaction's id or a later one. The
 * feed only hands out events below the oldest append still in progress, so an event that commits late can
 * never land behind a position a subscriber has already passed (the sequence-gap bug; see
 * migrations/0001_event-store.sql). Transactions that append nothing never hold the feed back, whichever
 * database of the server they run in (migrations/0050_feed-horizon.sql).
 * Subscribers are woken in-process right after a local append, and across processes by LISTEN/NOTIFY;
 * a slow poll remains as a safety net for a lost notification.
 */
import pg from 'pg';
import { z } from 'zod';
import {
  checkAppendManyRequests,
  ConcurrencyConflict,
  MultiStreamConflict,
  EventStoreUnavailable,
  type AppendManyResult,
  type AppendResult,
  type EventFilter,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type HeadOptions,
  type JsonValue,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadAllPart,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
  type StreamAppend,
  type StreamAppendResult,
} from '../../domain/ports/event-store.ts';
import { isTransientPgError } from '../postgres/errors.ts';
import { named } from '../postgres/named.ts';
import { withTransaction, type Queryable } from '../postgres/transaction.ts';
import { AppendGroups } from './append-groups.ts';
import { SharedFeed, type ScanPage } from './postgres-feed.ts';

const CHANNEL = 'tally_events';
export const NOTIFY_INTERVAL_MS = 10;
/**
 * The precise horizon (one more query) is asked only once the server's xmin has stood still this long: appends in
 * flight move it on within milliseconds, and reading below it is always safe. A transaction that holds it (another
 * database's, or one that appends nothing) then costs the feed this much delay, not more.
 */
const HORIZON_AFTER_MS = 20;

interface Cursor {
  tx: bigint;
  seq: bigint;
}

/** Positions look like `tx.seq`; only this module reads them. */
export function encodePosition(cursor: Cursor): Position {
  return `${cursor.tx}.${cursor.seq}` as Position;
}

export function decodePosition(position: string): Cursor {
  const match = /^(\d+)\.(\d+)$/.exec(position);
  if (!match) throw new TypeError(`Not a PostgreSQL event store position: ${position}`);
  return { tx: BigInt(match[1]!), seq: BigInt(match[2]!) };
}

const compare = (a: Cursor, b: Cursor) => (a.tx === b.tx ? (a.seq === b.seq ? 0 : a.seq < b.seq ? -1 : 1) : a.tx < b.tx ? -1 : 1);

interface EventRow {
  tx_id: string;
  global_position: string;
  event_id: string;
  stream_name: string;
  stream_revision: string;
  event_type: string;
  /** NULL when omitted (ReadAllOptions.omit). */
  data: JsonValue;
  metadata: EventMetadata | null;
  /** With the metadata omitted: its schemaVersion as JSON (decoding uses it only if it is a number). */
  schema_version?: JsonValue;
  /** recorded_at in epoch milliseconds (truncated, as a Date holds it): a float parses far faster than a timestamp. */
  recorded_ms: number;
  /** The statement's xmin: on every row of a subscription's page; on a readAll page, on the rows that carry `snapshot`. */
  safe_below: string;
  /** The statement's snapshot, on rows at or beyond `safe_below` only (see `readPage`). */
  snapshot: string | null;
}

/** Without the metadata, its schemaVersion still comes along: decoding needs it (see ReadAllOptions.omit). */
// One extraction per row, as JSON (a number, or anything else `toRecorded` passes over).
const OMITTED_METADATA = `NULL::jsonb AS metadata, metadata->'schemaVersion' AS schema_version`;
// The whole milliseconds as float8 arithmetic: `extract` computes in numeric, several times slower per row.
// Truncated to whole milliseconds first, the float epoch times 1000 lies within 1e-3 of an integer: rounding gives it.
const RECORDED_MS = `round(date_part('epoch', date_trunc('milliseconds', recorded_at)) * 1000) AS recorded_ms`;
/** The event columns, less those a reader omits (read as NULL: `toRecorded` gives `{}` metadata, `null` data). */
const eventColumns = (omit: readonly ReadAllPart[] = []) =>
  // Aliased so that ORDER BY transaction_id sorts the xid8 column, not this text (output names win in ORDER BY).
  `transaction_id::text AS tx_id, global_position, event_id, stream_name, stream_revision, event_type,
  ${omit.includes('data') ? 'NULL::jsonb AS data' : 'data'}, ${omit.includes('metadata') ? OMITTED_METADATA : 'metadata'}, ${RECORDED_MS}`;
const EVENT_COLUMNS = eventColumns();
/**
 * readAll also needs the safe bound (see `readPage`): the statement's xmin and snapshot, taken once (InitPlans) and
 * sent only on the rows at or beyond that xmin. The rows below it, nearly all of a long read, carry neither: two
 * strings fewer to send, parse and collect per event.
 */
const READ_XMIN = '(SELECT pg_snapshot_xmin(pg_current_snapshot()))';
const columns = (omit?: readonly ReadAllPart[]) => `${eventColumns(omit)},
  CASE WHEN transaction_id >= ${READ_XMIN} THEN ${READ_XMIN}::text END AS safe_below,
  CASE WHEN transaction_id >= ${READ_XMIN} THEN (SELECT pg_current_snapshot())::text END AS snapshot`;

function toRecorded(row: EventRow): RecordedEvent {
  return {
    id: row.event_id,
    type: row.event_type,
    data: row.data,
    metadata: row.metadata ?? (typeof row.schema_version === 'number' ? { schemaVersion: row.schema_version } : {}),
    stream: row.stream_name,
    revision: Number(row.stream_revision),
    // Both are the server's canonical decimal text, as encodePosition would write them.
    position: `${row.tx_id}.${row.global_position}` as Position,
    recordedAt: new Date(row.recorded_ms),
  };
}

/** The rows below the bound (`horizon`, else the statement's xmin, the same on every row of one statement). */
function settled<R extends EventRow>(rows: readonly R[], horizon: bigint | undefined): R[] {
  const first = rows[0];
  if (!first) return [];
  const bound = horizon ?? BigInt(first.safe_below);
  // Rows below the statement's xmin carry no snapshot: only the rows that do need comparing.
  return rows.filter((r) => r.snapshot === null || BigInt(r.tx_id) < bound);
}

function escapeLike(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
}

/** Adds the filter's WHERE clauses; returns them joined, with parameters pushed onto `params`. */
function filterClauses(filter: EventFilter | undefined, params: unknown[]): string[] {
  const clauses: string[] = [];
  if (filter?.eventTypes?.length) {
    params.push(filter.eventTypes);
    clauses.push(`event_type = ANY($${params.length}::text[])`);
  }
  if (filter?.streamPrefixes?.length) {
    params.push(filter.streamPrefixes.map(escapeLike));
    clauses.push(`stream_name LIKE ANY($${params.length}::text[])`);
  }
  return clauses;
}

interface FeedPage {
  events: RecordedEvent[];
  /** Events were visible beyond the safe bound: a transaction still in progress holds them back. */
  heldBack: boolean;
}

/** What a page of `readAll` reads: after (or before, backwards) a cursor, filtered, bounded, some parts left out. */
interface PageArgs {
  after: Cursor | undefined;
  inclusive: boolean;
  backwards: boolean;
  limit: number | undefined;
  filter: EventFilter | undefined;
  /** Inclusive upper bound (forwards): events up to a position already handed out are settled, no wait. */
  upTo?: Cursor | undefined;
  /** Only keys below this transaction id: the feed's horizon, below which every event is final (backwards). */
  below?: bigint | undefined;
  omit?: readonly ReadAllPart[] | undefined;
}

/** A backwards page: the newest settled events, and how long the append holding newer ones back has been open. */
interface BackwardsPage extends FeedPage {
  heldMs: number | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Waiter = () => void;

/**
 * A single event appended at an exact place (`exact` revision, or `no_stream`), in one statement: the stream's lock
 * (the same as append_events takes, migrations/0150), then the insert at the next revision if the expected one is
 * the stream's last: it must exist (`exact`), and the unique (stream_name, stream_revision) index refuses the next
 * one if it is taken. The statement's snapshot may predate the lock; the index check does not depend on it. The
 * event's fields are plain parameters ($4 id, $5 type, $6 data, $7 metadata), not the one-element arrays
 * append_events takes: no array literal to build and escape here, nor to parse there (measured in bench/store.ts,
 * prototype C of its diagnostics before it was applied, and "one-event INSERT with array parameters" since).
 */
const APPEND_ONE = {
  name: 'tally_append_one_event',
  text: `WITH stream_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(31250, hashtext($1)))
  INSERT INTO events (event_id, stream_name, stream_revision, event_type, data, metadata)
  SELECT $4::uuid, $1, coalesce($3::bigint, -1) + 1, $5::text, $6::jsonb, $7::jsonb
    FROM stream_lock
   WHERE $2::text IN ('exact', 'no_stream')
     AND ($2::text = 'no_stream' OR EXISTS (SELECT 1 FROM events e WHERE e.stream_name = $1 AND e.stream_revision = $3::bigint))
  ON CONFLICT (stream_name, stream_revision) DO NOTHING
  RETURNING 'ok'::text AS status, stream_revision AS current_revision, transaction_id::text AS last_transaction_id, global_position AS last_global_position`,
};

/**
 * Several one-event appends at exact places, on distinct streams, in one statement (group commit, append-groups.ts):
 * APPEND_ONE for each, in one transaction. Every stream's lock first, in the order of the lock keys as
 * append_events_many takes them (so no two writers deadlock), all before any row is inserted (`locked` is one row
 * made of all of them); then each event at the next revision, where its expectation holds and the place is free.
 * A member whose place is taken, or whose expected revision is not there, is left out (ON CONFLICT DO NOTHING: it
 * fails no one else) and comes back without a row; the adapter settles it alone (a conflict, or a retry's original
 * result). All the group's events share the transaction and its one registration (the gap-safe feed hands them out
 * together). Any error fails the whole statement, which then wrote nothing.
 */
const APPEND_GROUP = {
  name: 'tally_append_group',
  text: `WITH appends AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::jsonb[], $7::jsonb[])
      WITH ORDINALITY AS a(stream, kind, revision, id, type, data, metadata, ord)),
  stream_locks AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(31250, keys.key) FROM (SELECT DISTINCT hashtext(stream) AS key FROM appends ORDER BY 1) AS keys),
  locked AS MATERIALIZED (SELECT count(*) AS n FROM stream_locks)
  INSERT INTO events (event_id, stream_name, stream_revision, event_type, data, metadata)
  SELECT a.id, a.stream, coalesce(a.revision, -1) + 1, a.type, a.data, a.metadata
    FROM appends a, locked
   WHERE a.kind IN ('exact', 'no_stream')
     AND (a.kind = 'no_stream' OR EXISTS (SELECT 1 FROM events e WHERE e.stream_name = a.stream AND e.stream_revision = a.revision))
   ORDER BY a.ord
  ON CONFLICT (stream_name, stream_revision) DO NOTHING
  RETURNING stream_name, 'ok'::text AS status, stream_revision AS current_revision, transaction_id::text AS last_transaction_id, global_position AS last_global_position`,
};

type AppendRow = { status: string; current_revision: string; last_transaction_id: string; last_global_position: string };

/** A one-event append at an exact place, its event encoded. */
interface OneEventAppend {
  stream: string;
  kind: 'exact' | 'no_stream';
  revision: number | null;
  id: string;
  type: string;
  data: string;
  metadata: string;
}

/** What `append_events_many` raises when an expected revision does not hold (migrations/0020). */
const MANY_CONFLICT = 'TL409';
const manyConflictDetail = z.array(z.object({ request: z.number().int().positive(), actual: z.number().int() }));

/** Options of the PostgreSQL-only form of `appendMany`. */
export interface PostgresAppendManyOptions {
  /**
   * Runs in the same transaction, right after the events are written (and only if they are), with the result:
   * what it writes commits together with the events, and if it throws, nothing of the call commits and its
   * error is rethrown. For adapters that must settle their own rows with the events (the webhook inbox).
   * It may run more than once (a retry after a transient failure that rolled back the previous attempt).
   */
  inTransaction?: (client: pg.PoolClient, result: AppendManyResult) => Promise<void>;
  /**
   * A data-modifying statement run in the same statement as the append (one round trip, one transaction): it
   * commits with the events, and not at all when they conflict. Its placeholders start at `$1`; its `RETURNING`
   * rows come back as `alongside` (as JSON objects). `name` makes the combined statement a named one. Exclusive
   * with `inTransaction`. With no events it runs alone.
   */
  alongside?: AlongsideStatement;
}

export interface AlongsideStatement {
  name: string;
  text: string;
  values: unknown[];
}

/** Values of the append's own placeholders ($1…$8) in `writeMany`. */
const APPEND_PARAMETERS = 8;

/**
 * A `jsonb[]` argument from one `jsonb` parameter holding the array (its elements in order): the events' data and
 * metadata of a batch travel as one JSON text each, made natively by `JSON.stringify`, instead of an array literal
 * node-postgres builds by quoting each element's JSON text in JavaScript (adapters/postgres/recordset.ts says why).
 */
const JSONB_ELEMENTS = (parameter: number) => `ARRAY(SELECT v FROM jsonb_array_elements($${parameter}::jsonb) WITH ORDINALITY AS a(v, i) ORDER BY i)`;

export interface PostgresEventStoreOptions {
  /** Fallback poll interval for subscriptions when no notification arrives (ms). */
  pollIntervalMs?: number;
  /** Wait this long at most for in-flight transactions to finish before a forwards readAll returns. */
  readAllSettleMs?: number;
  /**
   * Group commit of one-event appends at an exact place (append-groups.ts): the appends issued in one turn of the
   * event loop, or while `statementsInFlight` statements are under way, are written together by the next statement,
   * up to `maxAppends`, each answered once that statement has committed. `false`: each is written alone, at once.
   * Default: 4 statements, 64 appends (`EVENT_APPENDS_IN_FLIGHT`, `EVENT_APPEND_GROUP_SIZE`); `maxAppends` 1 is `false`.
   */
  appendGroups?: AppendGroupSettings | false;
}

export interface AppendGroupSettings {
  statementsInFlight: number;
  maxAppends: number;
}

export const DEFAULT_APPEND_GROUPS: AppendGroupSettings = { statementsInFlight: 4, maxAppends: 64 };

export class PostgresEventStore implements EventStore {
  private readonly waiters = new Set<Waiter>();
  private listener: pg.Client | undefined;
  private listenerStarting: Promise<void> | undefined;
  private notifyScheduled = false;
  private notifyPending = false;
  /** The notification scheduled (cancelled by close) and the one being sent (awaited by close). */
  private notifyTimer: NodeJS.Timeout | undefined;
  private notifySending: Promise<void> | undefined;
  private notifier: pg.Client | undefined;
  private closed = false;
  private readonly pollIntervalMs: number;
  private readonly readAllSettleMs: number;
  /** The server's xmin last seen holding rows back, and since when (see HORIZON_AFTER_MS). */
  private stuckXmin: { xmin: string; since: number } | undefined;
  /** The one reader of the feed that this store's subscriptions share (postgres-feed.ts). */
  readonly sharedFeed: SharedFeed;
  private readonly appendGroups: AppendGroups<OneEventAppend, AppendRow> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly connectionConfig: pg.ClientConfig,
    options: PostgresEventStoreOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.readAllSettleMs = options.readAllSettleMs ?? 2000;
    const groups = options.appendGroups ?? DEFAULT_APPEND_GROUPS;
    this.appendGroups =
      groups && groups.maxAppends > 1
        ? new AppendGroups({
            ...groups,
            writeOne: (one) => this.appendOne(one),
            writeGroup: (group) => this.appendGroup(group),
            settle: (one) => this.retryOnDuplicateId(() => this.settleOne(one)),
          })
        : undefined;
    this.sharedFeed = new SharedFeed({
      scan: (after, filter, pageSize, upTo) => this.scanPage(after, filter, pageSize, upTo),
      sleep: (ms, expose) => this.sleep(ms, expose),
      wakes: () => this.wakes,
      listening: () => this.ensureListener(),
      isClosed: () => this.closed,
      pollIntervalMs: this.pollIntervalMs,
      encode: encodePosition,
      decode: decodePosition,
    });
  }

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    if (events.length === 0) throw new TypeError('append needs at least one event');
    const kind = typeof expected === 'number' ? 'exact' : expected;
    const revision0 = typeof expected === 'number' ? expected : null;
    const data = events.map((e) => JSON.stringify(e.data));
    const metadata = events.map((e) => JSON.stringify({ schemaVersion: 1, ...e.metadata }));
    let row: AppendRow;
    if (events.length === 1 && (kind === 'exact' || kind === 'no_stream')) {
      // One event expected at an exact place (a command's decision): one prepared INSERT, alone or in a group.
      const one: OneEventAppend = { stream, kind, revision: revision0, id: events[0]!.id, type: events[0]!.type, data: data[0]!, metadata: metadata[0]! };
      row = await (this.appendGroups ? this.appendGroups.append(one) : this.appendOne(one));
    } else {
      row = await this.retryOnDuplicateId(() => this.appendThroughFunction(stream, kind, revision0, events.map((e) => e.id), events.map((e) => e.type), data, metadata));
    }
    const revision = Number(row.current_revision);
    if (row.status === 'conflict') throw new ConcurrencyConflict(stream, expected, revision < 0 ? 'no_stream' : revision);
    this.wake();
    return {
      nextExpectedRevision: revision,
      position: encodePosition({ tx: BigInt(row.last_transaction_id), seq: BigInt(row.last_global_position) }),
    };
  }

  /**
   * A one-event append alone: the prepared INSERT. No row back means the place is taken or the expectation does not
   * hold: the function then tells a conflict from a retry.
   */
  private appendOne(one: OneEventAppend): Promise<AppendRow> {
    return this.retryOnDuplicateId(async () => {
      const [appended] = await this.query<AppendRow>(APPEND_ONE, [one.stream, one.kind, one.revision, one.id, one.type, one.data, one.metadata]);
      return appended ?? this.settleOne(one);
    });
  }

  /** A one-event append the INSERT did not write, through the function: a conflict, or a retry's original result. */
  private settleOne(one: OneEventAppend): Promise<AppendRow> {
    return this.appendThroughFunction(one.stream, one.kind, one.revision, [one.id], [one.type], [one.data], [one.metadata]);
  }

  /**
   * Several one-event appends (distinct streams) in one statement: each one's row, `undefined` for those it did not
   * write (see APPEND_GROUP).
   */
  private async appendGroup(group: readonly OneEventAppend[]): Promise<(AppendRow | undefined)[]> {
    const rows = await this.query<AppendRow & { stream_name: string }>(APPEND_GROUP, [
      group.map((one) => one.stream),
      group.map((one) => one.kind),
      group.map((one) => one.revision),
      group.map((one) => one.id),
      group.map((one) => one.type),
      group.map((one) => one.data),
      group.map((one) => one.metadata),
    ]);
    const byStream = new Map(rows.map((row) => [row.stream_name, row]));
    return group.map((one) => byStream.get(one.stream));
  }

  private appendThroughFunction(stream: string, kind: string, revision0: number | null, ids: string[], types: string[], data: string[], metadata: string[]): Promise<AppendRow> {
    return this.firstRow<AppendRow>(
      {
        // Named, so each connection parses and plans it once (measured in bench/store.ts).
        name: 'tally_append_events',
        text: 'SELECT status, current_revision, last_transaction_id::text, last_global_position FROM append_events($1, $2, $3, $4::uuid[], $5::text[], $6::jsonb[], $7::jsonb[])',
      },
      [stream, kind, revision0, ids, types, data, metadata],
    );
  }

  /** Group commit's figures so far (bench/store.ts): statements of more than one append, and the appends they wrote. */
  appendGroupStats(): { groups: number; appendsInGroups: number } {
    return this.appendGroups?.stats() ?? { groups: 0, appendsInGroups: 0 };
  }

  private async firstRow<T extends pg.QueryResultRow>(sql: { name: string; text: string }, params: unknown[]): Promise<T> {
    const [first] = await this.query<T>(sql, params);
    if (!first) throw new Error(`${sql.name} returned no row`);
    return first;
  }

  /** Two concurrent retries of one batch race on the unique event id; the loser's retry sees the winner's rows. */
  private async retryOnDuplicateId<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        const isDuplicate = (error as { code?: string; constraint?: string }).constraint === 'events_event_id_unique';
        if (!isDuplicate || attempt >= 2) throw error;
      }
    }
  }

  /**
   * One transaction (one statement when there is no `inTransaction` work): all streams or none, events in
   * request order under one transaction id, so the feed hands them out contiguously. Subscribers are woken once.
   */
  async appendMany(requests: readonly StreamAppend[], options: PostgresAppendManyOptions & { alongside: AlongsideStatement }): Promise<AppendManyResult & { alongside: unknown[] }>;
  async appendMany(requests: readonly StreamAppend[], options?: PostgresAppendManyOptions): Promise<AppendManyResult>;
  async appendMany(requests: readonly StreamAppend[], options: PostgresAppendManyOptions = {}): Promise<AppendManyResult & { alongside?: unknown[] }> {
    checkAppendManyRequests(requests);
    const { inTransaction, alongside } = options;
    if (inTransaction && alongside) throw new Error('appendMany: inTransaction and alongside are exclusive');
    if (requests.length === 0 && !inTransaction && !alongside) return { streams: [] };
    try {
      const result = await this.retryOnDuplicateId(() =>
        alongside
          ? this.writeMany(this.pool, requests, alongside)
          : inTransaction
          ? withTransaction(this.pool, async (client) => {
              const written = await this.writeMany(client, requests);
              await inTransaction(client, written);
              return written;
            })
          : this.writeMany(this.pool, requests),
      );
      if (result.streams.length) this.wake();
      return result;
    } catch (error) {
      throw this.translate(error, requests);
    }
  }

  private async writeMany(db: Queryable, requests: readonly StreamAppend[], alongside?: AlongsideStatement): Promise<AppendManyResult & { alongside?: unknown[] }> {
    if (requests.length === 0) {
      if (!alongside) return { streams: [] };
      const { rows } = await db.query({ name: alongside.name, text: alongside.text, values: alongside.values });
      return { streams: [], alongside: rows };
    }
    const events = requests.flatMap((request, index) => request.events.map((event) => ({ request: index + 1, event })));
    const append = `SELECT request, current_revision, last_transaction_id::text, last_global_position
        FROM append_events_many($1::text[], $2::text[], $3::bigint[], $4::int[], $5::uuid[], $6::text[], ${JSONB_ELEMENTS(7)}, ${JSONB_ELEMENTS(8)})`;
    const { rows: all } = await db.query<{ request: number | null; current_revision: string; last_transaction_id: string; last_global_position: string; alongside?: unknown }>({
      // Named, so each connection parses and plans it once.
      name: alongside ? `tally_append_events_many+${alongside.name}` : 'tally_append_events_many',
      // The statement alongside is a data-modifying WITH: it runs to completion in the same statement, and the
      // append failing (a conflict) fails the whole statement, so both commit or neither.
      text: alongside
        ? `WITH alongside AS (${alongside.text.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + APPEND_PARAMETERS}`)})
           SELECT request, current_revision, last_transaction_id, last_global_position, NULL::jsonb AS alongside FROM (${append}) appended
           UNION ALL SELECT NULL, NULL, NULL, NULL, to_jsonb(alongside) FROM alongside`
        : append,
      values: [
        requests.map((r) => r.stream),
        requests.map((r) => (typeof r.expected === 'number' ? 'exact' : r.expected)),
        requests.map((r) => (typeof r.expected === 'number' ? r.expected : null)),
        events.map((e) => e.request),
        events.map((e) => e.event.id),
        events.map((e) => e.event.type),
        JSON.stringify(events.map((e) => e.event.data)),
        JSON.stringify(events.map((e) => ({ schemaVersion: 1, ...e.event.metadata }))),
        ...(alongside?.values ?? []),
      ],
    });
    const rows = alongside ? all.filter((row) => row.request !== null) : all;
    if (rows.length !== requests.length) throw new Error(`append_events_many answered ${rows.length} rows for ${requests.length} streams`);
    let last: { position: Position; cursor: Cursor } | undefined;
    const streams: StreamAppendResult[] = rows.map((row, index) => {
      const cursor = { tx: BigInt(row.last_transaction_id), seq: BigInt(row.last_global_position) };
      const position = encodePosition(cursor);
      if (!last || compare(cursor, last.cursor) > 0) last = { position, cursor };
      return { stream: requests[index]!.stream, nextExpectedRevision: Number(row.current_revision), position };
    });
    return { streams, ...(last ? { position: last.position } : {}), ...(alongside ? { alongside: all.filter((row) => row.request === null).map((row) => row.alongside) } : {}) };
  }

  private translate(error: unknown, requests: readonly StreamAppend[]): unknown {
    const { code, detail } = error as { code?: string; detail?: string };
    if (code === MANY_CONFLICT && detail) {
      const conflicts = manyConflictDetail.parse(JSON.parse(detail)).map(({ request, actual }) => {
        const { stream, expected } = requests[request - 1]!;
        return { stream, expected, actual: actual < 0 ? ('no_stream' as const) : actual };
      });
      return new MultiStreamConflict(conflicts);
    }
    if (isTransientPgError(error)) return new EventStoreUnavailable('PostgreSQL event store unavailable', { cause: error });
    return error;
  }

  async supportsAtomicMultiStream(): Promise<boolean> {
    return true;
  }

  /** One query for all the streams. */
  async readStreams(streams: readonly string[]): Promise<Map<string, RecordedEvent[]>> {
    const result = new Map<string, RecordedEvent[]>(streams.map((stream) => [stream, []]));
    if (streams.length === 0) return result;
    const rows = await this.query<EventRow>(
      {
        name: 'tally_read_streams',
        text: `SELECT ${EVENT_COLUMNS} FROM events WHERE stream_name = ANY($1::text[]) ORDER BY stream_name, stream_revision`,
      },
      [[...new Set(streams)]],
    );
    for (const row of rows) result.get(row.stream_name)!.push(toRecorded(row));
    return result;
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    const params: unknown[] = [stream];
    let where = 'stream_name = $1';
    let name = backwards ? 'tally_read_stream_b' : 'tally_read_stream_f';
    if (options.fromRevision !== undefined) {
      params.push(options.fromRevision);
      where += backwards ? ` AND stream_revision <= $2` : ` AND stream_revision >= $2`;
      name += '_from';
    }
    let sql = `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where} ORDER BY stream_revision ${backwards ? 'DESC' : 'ASC'}`;
    if (options.limit !== undefined) {
      params.push(options.limit);
      sql += ` LIMIT $${params.length}`;
      name += '_limit';
    }
    // Named, so each connection parses and plans it once: every request loads its caller's stream (one name per shape of the query).
    return (await this.query<EventRow>({ name, text: sql }, params)).map(toRecorded);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    const from = options.from === undefined || options.from === 'start' || options.from === 'end' ? undefined : decodePosition(options.from);
    if (backwards && options.from === 'start') return [];
    if (!backwards && options.from === 'end') return [];
    if (backwards) return this.readBackwards({ after: from, inclusive: false, backwards, limit: options.limit, filter: options.filter, omit: options.omit }, false);
    const settleBy = Date.now() + this.readAllSettleMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      const page = await this.readPage({
        after: from,
        inclusive: true,
        backwards,
        limit: options.limit,
        filter: options.filter,
        upTo: options.to ? decodePosition(options.to) : undefined,
        omit: options.omit,
      });
      // A caller reading forwards expects what was committed before it asked; give in-flight
      // transactions a moment to finish rather than returning a page with a hole that fills later.
      if (!page.heldBack || Date.now() >= settleBy) return page.events;
      await sleep(delay);
    }
  }

  /**
   * A backwards read answers the newest settled events, a full page of them: those below the feed's horizon (the
   * oldest append in progress). Events committed above such an append are held back, as the feed holds them: a brief
   * append is waited for, `readAllSettleMs` at most, as a forwards read waits (a writer reading the head just after
   * its own append finds it); one open for at least that long is not waited for, so a scrape of /metrics or a live
   * tail opening answers at once. Until 2026-12-07 the page was the newest rows less those held back: with a long
   * append below the newest commit, the head was undefined and pages came back short.
   * `complete` (see `HeadOptions`): the bound is waited whatever the append's age, then EventStoreUnavailable.
   */
  private async readBackwards(args: PageArgs, complete: boolean): Promise<RecordedEvent[]> {
    const settleBy = Date.now() + this.readAllSettleMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      const page = await this.readBackwardsPage(args);
      if (!page.heldBack) return page.events;
      const outOfTime = Date.now() >= settleBy;
      if (complete && outOfTime) {
        throw new EventStoreUnavailable(
          `events committed after an append in progress for ${Math.round(page.heldMs ?? 0)} ms are held back from the feed (see /readyz, feedHeldBackBy); retry once it ends`,
        );
      }
      if (!complete && (outOfTime || (page.heldMs ?? 0) >= this.readAllSettleMs)) return page.events;
      await sleep(delay);
    }
  }

  private async readBackwardsPage(args: PageArgs): Promise<BackwardsPage> {
    const rows = await this.pageRows(args);
    // Rows below the statement's xmin carry no snapshot: settled. Beyond it, the precise horizon decides.
    const unsettled = rows.find((r) => r.snapshot !== null);
    if (!unsettled?.snapshot) return { events: rows.map(toRecorded), heldBack: false, heldMs: undefined };
    const { horizon, heldMs } = await this.horizonAndHolder(unsettled.snapshot);
    const below = rows.filter((r) => r.snapshot === null || BigInt(r.tx_id) < horizon);
    if (below.length === rows.length) return { events: rows.map(toRecorded), heldBack: false, heldMs: undefined };
    // Every key below the horizon is final (a later append registers above it): the newest of them, a full page.
    const page = args.limit !== undefined && rows.length === args.limit ? await this.pageRows({ ...args, below: horizon }) : below;
    return { events: page.map(toRecorded), heldBack: true, heldMs };
  }

  /** The feed's horizon for a statement's snapshot, and how long the append that sets it has been open (ms; none: it has ended). */
  private async horizonAndHolder(snapshot: string): Promise<{ horizon: bigint; heldMs: number | undefined }> {
    const [row] = await this.query<{ horizon: string; held_ms: number | null }>(
      {
        name: 'tally_feed_horizon_holder',
        text: `SELECT h::text AS horizon,
                      (SELECT (extract(epoch FROM clock_timestamp() - s.xact_start) * 1000)::float8
                         FROM event_appends_in_flight a JOIN pg_stat_activity s ON s.pid = a.pid
                        WHERE a.xid = xid(h) AND s.xact_start IS NOT NULL LIMIT 1) AS held_ms
                 FROM event_feed_horizon($1::pg_snapshot) AS h`,
      },
      [snapshot],
    );
    if (!row) throw new Error('event_feed_horizon returned no row');
    return { horizon: BigInt(row.horizon), heldMs: row.held_ms ?? undefined };
  }

  private async readPage(args: PageArgs): Promise<FeedPage> {
    const rows = await this.pageRows(args);
    // Below the server's oldest transaction in progress, every row is settled. Rows at or beyond it wait only for
    // appends still in progress: the horizon for this statement's snapshot (migrations/0050_feed-horizon.sql).
    const horizon = await this.horizonFor(rows);
    // Ordered by the key and bounded by one, the safe rows are a contiguous run in either direction. Only rows at
    // or beyond the statement's xmin carry it (`columns`), and only they need comparing.
    const safeRows = rows.filter((r) => r.snapshot === null || BigInt(r.tx_id) < (horizon ?? BigInt(r.safe_below)));
    return { events: safeRows.map(toRecorded), heldBack: safeRows.length < rows.length };
  }

  /** The rows of one page, as the statement saw them (each beyond its xmin with its snapshot, see `columns`). */
  private async pageRows(args: PageArgs): Promise<EventRow[]> {
    const params: unknown[] = [];
    const clauses = filterClauses(args.filter, params);
    if (args.upTo) {
      params.push(args.upTo.tx.toString(), args.upTo.seq.toString());
      clauses.push(`(transaction_id, global_position) <= ($${params.length - 1}::xid8, $${params.length}::bigint)`);
    }
    if (args.below !== undefined) {
      params.push(args.below.toString());
      clauses.push(`transaction_id < $${params.length}::xid8`);
    }
    if (args.after) {
      params.push(args.after.tx.toString(), args.after.seq.toString());
      const op = args.backwards ? '<' : args.inclusive ? '>=' : '>';
      clauses.push(`(transaction_id, global_position) ${op} ($${params.length - 1}::xid8, $${params.length}::bigint)`);
    }
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const order = args.backwards ? 'DESC' : 'ASC';
    let sql = `SELECT ${columns(args.omit)} FROM events ${where} ORDER BY events.transaction_id ${order}, events.global_position ${order}`;
    if (args.limit !== undefined) {
      params.push(args.limit);
      sql += ` LIMIT $${params.length}`;
    }
    // Named by its text (the filter's values are parameters): parsed once per connection, as the subscriptions' scans.
    return this.query<EventRow>(named(sql), params);
  }

  /**
   * For rows read in one statement: the precise horizon when rows lie beyond the server's xmin and that xmin has
   * stood still for HORIZON_AFTER_MS; otherwise undefined, and the rows' own xmin bounds them.
   */
  private async horizonFor(rows: readonly EventRow[]): Promise<bigint | undefined> {
    const unsettled = rows.find((r) => r.snapshot !== null);
    if (!unsettled?.snapshot) return undefined;
    const now = Date.now();
    if (this.stuckXmin?.xmin !== unsettled.safe_below) {
      this.stuckXmin = { xmin: unsettled.safe_below, since: now };
      return undefined;
    }
    if (now - this.stuckXmin.since < HORIZON_AFTER_MS) return undefined;
    return this.feedHorizon(unsettled.snapshot);
  }

  /** The first ordering key a reader whose statement ran with `snapshot` must not pass: the oldest append in progress for it. */
  private async feedHorizon(snapshot: string): Promise<bigint> {
    const [row] = await this.query<{ horizon: string }>({ name: 'tally_feed_horizon', text: 'SELECT event_feed_horizon($1::pg_snapshot)::text AS horizon' }, [snapshot]);
    if (!row) throw new Error('event_feed_horizon returned no row');
    return BigInt(row.horizon);
  }

  /**
   * A subscription's page: the next `pageSize` events of the feed by primary key, whatever their type, with the data
   * of those the filter selects only. The cursor moves past every event scanned, so a subscription to rare types
   * costs a short key-range scan per wake, never a scan from its last match to the end of the feed. With `upTo`
   * (a position the shared reader has passed, see postgres-feed.ts), only events up to it, all final: no bound.
   */
  private async scanPage(after: Cursor | undefined, filter: EventFilter | undefined, pageSize: number, upTo?: Cursor): Promise<ScanPage> {
    const params: unknown[] = [];
    const selected = filterClauses(filter, params).join(' AND ') || 'true';
    const range: string[] = [];
    if (after) {
      params.push(after.tx.toString(), after.seq.toString());
      range.push(`(transaction_id, global_position) > ($${params.length - 1}::xid8, $${params.length}::bigint)`);
    }
    if (upTo) {
      params.push(upTo.tx.toString(), upTo.seq.toString());
      range.push(`(transaction_id, global_position) <= ($${params.length - 1}::xid8, $${params.length}::bigint)`);
    }
    // The data of a row at or beyond the statement's xmin is sent only when that xmin is the one last seen holding
    // rows back (then the precise horizon may pass such rows, see horizonFor); otherwise the row cannot be handed
    // out by this page, and is read again, with its data, by a later one. Under a burst of appends most pages end in
    // such rows: they were sent and parsed in full only to be dropped.
    let withData = 'true';
    if (!upTo) {
      const stuck = this.stuckXmin && Date.now() - this.stuckXmin.since >= HORIZON_AFTER_MS ? this.stuckXmin.xmin : null;
      params.push(stuck);
      withData = `(transaction_id < pg_snapshot_xmin(pg_current_snapshot()) OR coalesce(pg_snapshot_xmin(pg_current_snapshot())::text = $${params.length}::text, false))`;
    }
    params.push(pageSize);
    // Named by its shape (the filter's values are parameters), so each connection parses and plans it once.
    const name = `tally_scan_${filter?.eventTypes?.length ? 't' : ''}${filter?.streamPrefixes?.length ? 'p' : ''}${after ? 'a' : ''}${upTo ? 'u' : ''}`;
    const rows = await this.query<EventRow & { selected: boolean; with_data: boolean }>(
      { name, text: `SELECT transaction_id::text AS tx_id, global_position, event_id, stream_name, stream_revision, event_type,
              CASE WHEN ${selected} AND ${withData} THEN data END AS data, CASE WHEN ${selected} AND ${withData} THEN metadata END AS metadata, ${RECORDED_MS},
              pg_snapshot_xmin(pg_current_snapshot())::text AS safe_below,
              CASE WHEN transaction_id >= pg_snapshot_xmin(pg_current_snapshot()) THEN pg_current_snapshot()::text END AS snapshot,
              ${selected} AS selected, ${withData} AS with_data
         FROM events ${range.length ? `WHERE ${range.join(' AND ')}` : ''} ORDER BY transaction_id, global_position LIMIT $${params.length}` },
      params,
    );
    // As in readPage: rows beyond the server's oldest transaction wait only for appends still in progress. Rows up
    // to `upTo` are final (the shared reader has handed them out).
    // Ordered by the key and bounded by one, the safe rows are a contiguous run from the start; it ends before the
    // first row selected but sent without its data (beyond the xmin, when the horizon was not foreseen).
    const settledRows = upTo ? rows : settled(rows, await this.horizonFor(rows));
    const withoutData = settledRows.findIndex((r) => r.selected && !r.with_data);
    const safeRows = withoutData < 0 ? settledRows : settledRows.slice(0, withoutData);
    const last = safeRows.at(-1);
    return {
      events: safeRows.filter((r) => r.selected).map(toRecorded),
      heldBack: safeRows.length < rows.length,
      scanned: safeRows.length,
      scannedTo: last ? { tx: BigInt(last.tx_id), seq: BigInt(last.global_position) } : undefined,
    };
  }

  /**
   * Each subscription catches up by its own scans (pages of `pageSize`, default 1,000, one read ahead), then joins
   * the store's one shared reader, which scans the feed once for all of them (postgres-feed.ts).
   */
  subscribeToAll(options: SubscribeOptions = {}): Subscription {
    return this.sharedFeed.subscribe(options);
  }

  /** Sleeps until woken by an append (local or NOTIFY), the timeout, or `stop`. */
  private sleep(ms: number, expose: (wake: Waiter) => void): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      expose(done);
    });
  }

  /** Wake-ups so far (see `FeedSource.wakes`). */
  private wakes = 0;

  private wakeLocal(): void {
    this.wakes++;
    for (const wake of [...this.waiters]) wake();
  }

  /**
   * Wakes local subscribers now, and other processes through NOTIFY: at most one every NOTIFY_INTERVAL_MS, on
   * its own connection, with a trailing send so that no append goes unannounced. NOTIFY serialises committing
   * transactions in PostgreSQL, so it is never sent inside an append, and rarely (measured in bench/store.ts).
   */
  private wake(): void {
    this.wakeLocal();
    if (this.closed) return;
    this.notifyPending = true;
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      this.notifySending = this.sendNotify().finally(() => (this.notifySending = undefined));
    }, NOTIFY_INTERVAL_MS).unref();
  }

  private async sendNotify(): Promise<void> {
    this.notifyPending = false;
    try {
      if (!this.notifier) {
        const client = new pg.Client(this.connectionConfig);
        client.on('error', () => {
          if (this.notifier === client) this.notifier = undefined;
        });
        await client.connect();
        this.notifier = client;
      }
      await this.notifier.query(`SELECT pg_notify('${CHANNEL}', '')`);
    } catch {
      // Subscribers in other processes fall back to their poll; the next append tries again.
      await this.notifier?.end().catch(() => undefined);
      this.notifier = undefined;
    } finally {
      this.notifyScheduled = false;
      // Appends that came while this one was in flight get their own (trailing) notification.
      if (this.notifyPending && !this.closed) this.wake();
    }
  }

  private async ensureListener(): Promise<void> {
    if (this.listener || this.closed) return;
    this.listenerStarting ??= this.startListener().finally(() => (this.listenerStarting = undefined));
    await this.listenerStarting;
  }

  private async startListener(): Promise<void> {
    const client = new pg.Client(this.connectionConfig);
    client.on('notification', () => this.wakeLocal());
    client.on('error', () => {
      // The poll keeps subscribers going meanwhile; reconnect the listener shortly.
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => undefined);
      this.retryListener();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.listener = client;
      this.listenerRetries = 0;
    } catch {
      await client.end().catch(() => undefined);
      // Not fatal: subscriptions still poll. Keep trying (the database may be restarting), backing off to 5 s,
      // so that other processes' appends wake this one again without waiting for a new subscription.
      this.retryListener();
    }
  }

  private listenerRetries = 0;

  private retryListener(): void {
    if (this.closed) return;
    const delay = Math.min(this.pollIntervalMs * 2 ** this.listenerRetries++, 5000);
    setTimeout(() => this.ensureListener().catch(() => undefined), delay).unref();
  }

  /** The newest settled event's position (see `readBackwards`); with `complete`, only once nothing committed is held back. */
  async headPosition(options: HeadOptions = {}): Promise<Position | undefined> {
    const [last] = await this.readBackwards({ after: undefined, inclusive: false, backwards: true, limit: 1, filter: undefined }, options.complete ?? false);
    return last?.position;
  }

  isAfter(a: Position, b: Position): boolean {
    return compare(decodePosition(a), decodePosition(b)) > 0;
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1 FROM events LIMIT 1', []);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeLocal();
    await this.listenerStarting;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    // A notification scheduled is not sent; one being sent finishes first, so its connection is the one ended here.
    clearTimeout(this.notifyTimer);
    this.notifyTimer = undefined;
    await this.notifySending;
    const notifier = this.notifier;
    this.notifier = undefined;
    await notifier?.end().catch(() => undefined);
  }

  private async query<T extends pg.QueryResultRow>(sql: string | { name: string; text: string }, params: unknown[]): Promise<T[]> {
    try {
      const query = typeof sql === 'string' ? { text: sql, values: params } : { ...sql, values: params };
      return (await this.pool.query<T>(query)).rows;
    } catch (error) {
      if (isTransientPgError(error)) throw new EventStoreUnavailable('PostgreSQL event store unavailable', { cause: error });
      throw error;
    }
  }
}
