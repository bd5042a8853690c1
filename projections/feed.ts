/**
 * Feeding one projection from the global feed: batches of whatever is available, each committed with its
 * checkpoint in one PostgreSQL transaction. Shared by the live runner and by rebuilds, which differ only in
 * the checkpoint row and the tables they write.
 *
 * Lazy checkpoints (the live runner): most events concern a few projections only, and committing an unchanged
 * read model with its checkpoint for every small batch was most of the live projection cost (8 projections ×
 * every batch). With `lazyCheckpoints`, a batch's transaction opens at the projection's first query; a batch it
 * writes nothing for only advances the checkpoint in memory. That checkpoint is written with the next batch that
 * writes, when no event came for `checkpointIdleMs`, and at least every `checkpointEveryMs` under load; every write of it is a
 * compare-and-set against the last one written and the row's takeover count (`generation`), so an owner change or a
 * rebuild's takeover is still detected. A crash can only make the
 * projection see again events it had nothing to do for (a reactor re-issues idempotent commands).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { EventStoreUnavailable, type EventStore, type Position, type RecordedEvent, type SubscriptionItem } from '../domain/ports/event-store.ts';
import { isTransientPgError } from '../adapters/postgres/errors.ts';
import { StreamContended } from '../domain/shared/errors.ts';
import { EventDecodeFailed } from '../domain/shared/codec.ts';
import { withLazyTransaction, withTransactionEnds, type TransactionEnds } from '../adapters/postgres/transaction.ts';
import type { ProjectionContext } from './projection.ts';

/** The checkpoint changed under us (another owner, or a rebuild took over): start again from the stored one. */
export class CheckpointMoved extends Error {}

/**
 * The live tables were rebuilt at a version above this code's (a rolling deploy: a newer instance took over): this
 * code must write nothing more into them. Its runner stands down.
 */
export class ProjectionSuperseded extends CheckpointMoved {
  constructor(
    readonly projection: string,
    readonly storedVersion: number,
    readonly version: number,
  ) {
    super(`${projection}: its live tables are at version ${storedVersion}, this instance runs version ${version}`);
  }
}

/** The feed was stopped while a batch waited (a reactor waiting for its read models): nothing failed. */
export class FeedStopped extends Error {}

export interface FeedTarget {
  /** The event types to subscribe to: the store hands over only those (`all`: every event). */
  eventTypes: readonly string[] | 'all';
  apply(events: readonly RecordedEvent[], context: ProjectionContext): Promise<void>;
  /** The checkpoint row this feed owns in `projection_checkpoints`. */
  checkpointName: string;
  /**
   * The version of the code applying the events (a live projection): a checkpoint row at a higher version is another
   * instance's, running newer code, and this feed stops with `ProjectionSuperseded` rather than write.
   */
  version?: number;
  /** Physical table for a logical one. */
  table(logicalName: string): string;
  /** Extra writes inside each batch transaction (e.g. a rebuild's progress). */
  onCommit?(db: pg.PoolClient, applied: number, last: Position): Promise<void>;
  /** After each batch's transaction has committed (a fold kept in memory makes what `apply` staged its base). */
  committed?(): void;
}

export interface FeedOptions {
  pool: pg.Pool;
  store: EventStore;
  log: Logger;
  maxBatch: number;
  /** How many events one read of the history fetches (the subscription's `pageSize`; default: the store's). */
  pageSize?: number;
  isStopping(): boolean;
  exposeStop(stop: () => Promise<void>): void;
  /** After each batch: where the feed is, and how many events it read and applied (handled) in that batch. */
  onApplied?(checkpoint: Position, counts: { read: number; applied: number }): void;
  /** Called when the feed has nothing more to hand right now; `done` ends the feed (a rebuild took over). */
  onIdle?(checkpoint: Position | undefined): Promise<'continue' | 'done'>;
  /** Skip the commit of batches the projection writes nothing for (see the top of this file). */
  lazyCheckpoints?: boolean;
  /** Under sustained load, the longest a lazily advanced checkpoint stays unwritten (default 1,000 ms). */
  checkpointEveryMs?: number;
  /** A lazily advanced checkpoint is written once no event came for this long (default 100 ms). */
  checkpointIdleMs?: number;
}

/** Where a feed is: applied through `checkpoint`; `stored` is what the checkpoint row says (they differ only lazily). */
interface FeedState {
  checkpoint: Position | undefined;
  stored: Position | undefined;
  /** Events applied since `stored` was written. */
  unstored: number;
  storedAt: number;
  /** The row's takeover count when the feed started: any other means a rebuild took over since (migration 0320). */
  generation: string;
}

export type FeedResult =
  | { kind: 'stopped' | 'done'; checkpoint: Position | undefined }
  | { kind: 'failed'; error: string; position: Position; checkpoint: Position | undefined };

const TIMEOUT = Symbol('timeout');
const nextTurn = () => new Promise<typeof TIMEOUT>((resolve) => setImmediate(() => resolve(TIMEOUT)));
const after = (ms: number) => new Promise<typeof TIMEOUT>((resolve) => setTimeout(() => resolve(TIMEOUT), ms).unref());

export async function readCheckpoint(pool: pg.Pool, name: string) {
  const { rows } = await pool.query<{
    position: string | null;
    status: string;
    last_error: string | null;
    error_position: string | null;
    events_applied: string;
    version: number;
    generation: string;
  }>('SELECT position, status, last_error, error_position, events_applied, version, generation FROM projection_checkpoints WHERE name = $1', [name]);
  return rows[0];
}

/** Throws `ProjectionSuperseded` when the row was built at a version above the one `target` applies. */
function refuseNewer(target: FeedTarget, storedVersion: unknown): void {
  if (target.version !== undefined && Number(storedVersion) > target.version) {
    throw new ProjectionSuperseded(target.checkpointName, Number(storedVersion), target.version);
  }
}

export async function feed(target: FeedTarget, options: FeedOptions): Promise<FeedResult> {
  const row = await readCheckpoint(options.pool, target.checkpointName);
  if (row) refuseNewer(target, row.version);
  const initial = (row?.position ?? undefined) as Position | undefined;
  const state: FeedState = { checkpoint: initial, stored: initial, unstored: 0, storedAt: Date.now(), generation: row?.generation ?? '0' };
  const everyMs = options.checkpointEveryMs ?? 1000;
  const idleMs = options.checkpointIdleMs ?? 100;
  const filter = target.eventTypes === 'all' ? {} : { filter: { eventTypes: target.eventTypes } };
  const handled = target.eventTypes === 'all' ? undefined : new Set(target.eventTypes);
  const subscription = options.store.subscribeToAll({ ...(initial ? { from: initial } : {}), ...filter, ...(options.pageSize ? { pageSize: options.pageSize } : {}) });
  options.exposeStop(() => subscription.stop());
  const iterator = subscription[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<SubscriptionItem>> | undefined;
  const pull = () => (pending ??= iterator.next());
  let caughtUp = false;
  let nearHead = false;

  try {
    for (;;) {
      // A checkpoint advanced in memory is written once no event came for `idleMs`, or after `everyMs` under load.
      if (state.checkpoint !== state.stored) {
        const waitMs = Math.max(0, Math.min(idleMs, everyMs - (Date.now() - state.storedAt)));
        const ready = waitMs === 0 ? TIMEOUT : await Promise.race([pull(), after(waitMs)]);
        if (ready === TIMEOUT) await storeCheckpoint(target, options.pool, state);
      }
      // Near the head (history read, or the last batch was not full): a rebuild may take over here.
      if ((caughtUp || nearHead) && options.onIdle) {
        const idle = await Promise.race([pull(), nextTurn()]);
        if (idle === TIMEOUT && (await options.onIdle(state.checkpoint)) === 'done') return { kind: 'done', checkpoint: state.checkpoint };
      }
      const first = await pull();
      pending = undefined;
      if (first.done || options.isStopping()) return { kind: 'stopped', checkpoint: await finalCheckpoint(target, options, state) };
      const batch: RecordedEvent[] = [];
      if (first.value.kind === 'event') batch.push(first.value.event);
      else caughtUp = true;
      // Take whatever else is already available, without waiting for more to arrive: what the subscription hands
      // over before the loop's next turn (one turn for the whole batch, not a timer per event).
      const turn = nextTurn();
      while (batch.length < options.maxBatch) {
        const next = await Promise.race([pull(), turn]);
        if (next === TIMEOUT) break;
        pending = undefined;
        if (next.done) break;
        if (next.value.kind === 'event') batch.push(next.value.event);
        else caughtUp = true;
      }
      if (batch.length === 0) continue;
      nearHead = batch.length < options.maxBatch;
      const result = await applyBatch(target, options, state, batch);
      if (result.kind === 'failed') return result;
      options.onApplied?.(state.checkpoint as Position, { read: batch.length, applied: handled ? batch.filter((e) => handled.has(e.type)).length : batch.length });
    }
  } finally {
    await subscription.stop();
  }
}

/** On a clean stop, write a lazily advanced checkpoint (best effort: a crash would only replay no-op events). */
async function finalCheckpoint(target: FeedTarget, options: FeedOptions, state: FeedState): Promise<Position | undefined> {
  if (state.checkpoint !== state.stored) await storeCheckpoint(target, options.pool, state).catch(() => undefined);
  return state.checkpoint;
}

/**
 * Writes the in-memory checkpoint, only over the one last written and with no takeover since: anything else means
 * another owner or a rebuild moved it (the runner then reads the row again, and stands down if its version is newer).
 */
async function storeCheckpoint(target: FeedTarget, pool: pg.Pool, state: FeedState): Promise<void> {
  const { rowCount } = await pool.query(
    `UPDATE projection_checkpoints
        SET position = $2, events_applied = events_applied + $3, status = 'running', last_error = NULL, error_position = NULL, updated_at = now()
      WHERE name = $1 AND position IS NOT DISTINCT FROM $4 AND generation = $5 AND ($6::int IS NULL OR version <= $6::int)`,
    [target.checkpointName, state.checkpoint, state.unstored, state.stored ?? null, state.generation, target.version ?? null],
  );
  if (rowCount !== 1) throw new CheckpointMoved(`checkpoint ${target.checkpointName} moved elsewhere`);
  state.stored = state.checkpoint;
  state.unstored = 0;
  state.storedAt = Date.now();
}

/**
 * Not the event's fault, so never a failure recorded against it: the feed starts again from the checkpoint. The
 * checkpoint moved or the feed stopped; PostgreSQL unreachable; the event store unavailable (a reactor's command
 * appends through it: a KurrentDB leader election, a PostgreSQL store out of connections); a reactor's command that
 * met other processes' writes at every attempt.
 */
function retriedFromCheckpoint(error: unknown): boolean {
  return (
    error instanceof CheckpointMoved ||
    error instanceof FeedStopped ||
    isTransientPgError(error) ||
    error instanceof EventStoreUnavailable ||
    error instanceof StreamContended ||
    // Written by newer code during a rolling deploy (a newer version, or a type this code does not declare): this
    // instance waits to be replaced, and records no failure.
    (error instanceof EventDecodeFailed && error.writtenByNewerCode)
  );
}

async function applyBatch(
  target: FeedTarget,
  options: FeedOptions,
  state: FeedState,
  batch: RecordedEvent[],
): Promise<{ kind: 'applied' } | Extract<FeedResult, { kind: 'failed' }>> {
  try {
    await commit(target, options, state, batch);
    return { kind: 'applied' };
  } catch (error) {
    if (retriedFromCheckpoint(error)) throw error;
    // Find the exact event: apply one by one, so everything before it is kept and it is named.
    for (const event of batch) {
      try {
        await commit(target, options, state, [event]);
      } catch (single) {
        // A reactor's command that met other processes' writes at every attempt is retried from the checkpoint, never a failure.
        if (retriedFromCheckpoint(single)) throw single;
        const message = single instanceof Error ? single.message : String(single);
        options.log.error({ err: single, position: event.position, eventType: event.type, stream: event.stream }, 'projection failed on event');
        // Keep what was applied before it (a lazily advanced checkpoint included), then stop here.
        if (state.checkpoint !== state.stored) await storeCheckpoint(target, options.pool, state);
        // Only on the row this feed owns: after a takeover, the failure is not the new tables'.
        const { rowCount } = await options.pool.query(
          `UPDATE projection_checkpoints SET status = 'failed', last_error = $2, error_position = $3, updated_at = now() WHERE name = $1 AND generation = $4`,
          [target.checkpointName, message, event.position, state.generation],
        );
        if (rowCount !== 1) throw new CheckpointMoved(`checkpoint ${target.checkpointName} moved elsewhere`);
        return { kind: 'failed', error: message, position: event.position, checkpoint: state.checkpoint };
      }
    }
    // The batch failed as a whole but every event passed alone: it is applied now.
    return { kind: 'applied' };
  }
}

/** Applies `events` with the checkpoint in one transaction; lazily, a batch that writes nothing commits nothing. */
async function commit(target: FeedTarget, options: FeedOptions, state: FeedState, events: readonly RecordedEvent[]): Promise<void> {
  const last = events[events.length - 1];
  if (!last) throw new Error('empty batch');
  const name = pg.escapeLiteral(target.checkpointName);
  const ends: TransactionEnds = {
    // A read model and its checkpoint can always be derived again from the log: if a crash loses the last
    // few commits, both roll back together and the events are applied again. No need to wait for the disk
    // (`synchronous_commit` off for this transaction, set in the statement that locks the checkpoint). The lock rides
    // in BEGIN's round trip and the advance in COMMIT's (`TransactionEnds`): every batch of every projection runs them.
    // The row's version and takeover count are compared too: a takeover that left the position where it was (the
    // live projection was ahead of the rebuild) still stops this feed, and code older than the tables writes nothing.
    afterBegin: `SELECT position, version, generation, set_config('synchronous_commit', 'off', true) AS synchronous_commit FROM projection_checkpoints WHERE name = ${name} FOR UPDATE`,
    opened([row]) {
      if (row) refuseNewer(target, row.version);
      const position: unknown = row?.position;
      if (!row || (position ?? undefined) !== state.stored || String(row.generation) !== state.generation) {
        throw new CheckpointMoved(`checkpoint ${target.checkpointName} moved elsewhere`);
      }
    },
    ...(target.onCommit ? { beforeCommit: (db: pg.PoolClient) => target.onCommit!(db, events.length, last.position) } : {}),
    beforeCommitText: () => `UPDATE projection_checkpoints
        SET position = ${pg.escapeLiteral(last.position)}, events_applied = events_applied + ${Number(state.unstored + events.length)}, status = 'running',
            last_error = NULL, error_position = NULL, updated_at = now()
      WHERE name = ${name}`,
  };
  if (options.lazyCheckpoints) {
    const { began } = await withLazyTransaction(options.pool, ends, (db) => target.apply(events, { db, table: target.table }));
    target.committed?.();
    state.checkpoint = last.position;
    if (began) {
      state.stored = last.position;
      state.unstored = 0;
      state.storedAt = Date.now();
    } else {
      state.unstored += events.length;
    }
    return;
  }
  await withTransactionEnds(options.pool, ends, (db) => target.apply(events, { db, table: target.table }));
  target.committed?.();
  state.checkpoint = state.stored = last.position;
  state.unstored = 0;
  state.storedAt = Date.now();
}
