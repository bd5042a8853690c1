/**
 * Feeding one projection from the global feed: batches of whatever is available, each committed with its
 * checkpoint in one PostgreSQL transaction. Shared by the live runner and by rebuilds, which differ only in
 * the checkpoint row and the tables they write.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { EventStore, Position, RecordedEvent, SubscriptionItem } from '../domain/ports/event-store.ts';
import { isTransientPgError } from '../adapters/postgres/errors.ts';
import { withTransaction } from '../adapters/postgres/transaction.ts';
import type { Projection } from './projection.ts';

/** The checkpoint changed under us (another owner, or a rebuild took over): start again from the stored one. */
export class CheckpointMoved extends Error {}

export interface FeedTarget {
  projection: Projection;
  /** The checkpoint row this feed owns in `projection_checkpoints`. */
  checkpointName: string;
  /** Physical table for a logical one. */
  table(logicalName: string): string;
  /** Extra writes inside each batch transaction (e.g. a rebuild's progress). */
  onCommit?(db: pg.PoolClient, applied: number, last: Position): Promise<void>;
}

export interface FeedOptions {
  pool: pg.Pool;
  store: EventStore;
  log: Logger;
  maxBatch: number;
  isStopping(): boolean;
  exposeStop(stop: () => Promise<void>): void;
  onApplied?(checkpoint: Position): void;
  /** Called when the feed has nothing more to hand right now; `done` ends the feed (a rebuild took over). */
  onIdle?(checkpoint: Position | undefined): Promise<'continue' | 'done'>;
}

export type FeedResult =
  | { kind: 'stopped' | 'done'; checkpoint: Position | undefined }
  | { kind: 'failed'; error: string; position: Position; checkpoint: Position | undefined };

const TIMEOUT = Symbol('timeout');
const nextTurn = () => new Promise<typeof TIMEOUT>((resolve) => setImmediate(() => resolve(TIMEOUT)));

export async function readCheckpoint(pool: pg.Pool, name: string) {
  const { rows } = await pool.query<{ position: string | null; status: string; last_error: string | null; error_position: string | null; events_applied: string }>(
    'SELECT position, status, last_error, error_position, events_applied FROM projection_checkpoints WHERE name = $1',
    [name],
  );
  return rows[0];
}

export async function feed(target: FeedTarget, options: FeedOptions): Promise<FeedResult> {
  const row = await readCheckpoint(options.pool, target.checkpointName);
  let checkpoint = (row?.position ?? undefined) as Position | undefined;
  const subscription = options.store.subscribeToAll(checkpoint ? { from: checkpoint } : {});
  options.exposeStop(() => subscription.stop());
  const iterator = subscription[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<SubscriptionItem>> | undefined;
  const pull = () => (pending ??= iterator.next());
  let caughtUp = false;
  let nearHead = false;

  try {
    for (;;) {
      // Near the head (history read, or the last batch was not full): a rebuild may take over here.
      if ((caughtUp || nearHead) && options.onIdle) {
        const idle = await Promise.race([pull(), nextTurn()]);
        if (idle === TIMEOUT && (await options.onIdle(checkpoint)) === 'done') return { kind: 'done', checkpoint };
      }
      const first = await pull();
      pending = undefined;
      if (first.done || options.isStopping()) return { kind: 'stopped', checkpoint };
      const batch: RecordedEvent[] = [];
      if (first.value.kind === 'event') batch.push(first.value.event);
      else caughtUp = true;
      // Take whatever else is already available, without waiting for more to arrive.
      while (batch.length < options.maxBatch) {
        const next = await Promise.race([pull(), nextTurn()]);
        if (next === TIMEOUT) break;
        pending = undefined;
        if (next.done) break;
        if (next.value.kind === 'event') batch.push(next.value.event);
        else caughtUp = true;
      }
      if (batch.length === 0) continue;
      nearHead = batch.length < options.maxBatch;
      const result = await applyBatch(target, options, checkpoint, batch);
      if (result.kind === 'failed') return result;
      checkpoint = result.checkpoint;
      options.onApplied?.(checkpoint);
    }
  } finally {
    await subscription.stop();
  }
}

async function applyBatch(
  target: FeedTarget,
  options: FeedOptions,
  checkpoint: Position | undefined,
  batch: RecordedEvent[],
): Promise<{ kind: 'applied'; checkpoint: Position } | Extract<FeedResult, { kind: 'failed' }>> {
  try {
    return { kind: 'applied', checkpoint: await commit(target, options.pool, checkpoint, batch) };
  } catch (error) {
    if (error instanceof CheckpointMoved || isTransientPgError(error)) throw error;
    // Find the exact event: apply one by one, so everything before it is kept and it is named.
    let current = checkpoint;
    for (const event of batch) {
      try {
        current = await commit(target, options.pool, current, [event]);
      } catch (single) {
        if (single instanceof CheckpointMoved || isTransientPgError(single)) throw single;
        const message = single instanceof Error ? single.message : String(single);
        options.log.error({ err: single, position: event.position, eventType: event.type, stream: event.stream }, 'projection failed on event');
        await options.pool.query(
          `UPDATE projection_checkpoints SET status = 'failed', last_error = $2, error_position = $3, updated_at = now() WHERE name = $1`,
          [target.checkpointName, message, event.position],
        );
        return { kind: 'failed', error: message, position: event.position, checkpoint: current };
      }
    }
    // The batch failed as a whole but every event passed alone: it is applied now.
    return { kind: 'applied', checkpoint: current as Position };
  }
}

async function commit(target: FeedTarget, pool: pg.Pool, checkpoint: Position | undefined, events: readonly RecordedEvent[]): Promise<Position> {
  const last = events[events.length - 1];
  if (!last) throw new Error('empty batch');
  return withTransaction(pool, async (db) => {
    // A read model and its checkpoint can always be derived again from the log: if a crash loses the last
    // few commits, both roll back together and the events are applied again. No need to wait for the disk.
    await db.query('SET LOCAL synchronous_commit = off');
    const { rows } = await db.query<{ position: string | null }>('SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE', [target.checkpointName]);
    if (!rows[0] || (rows[0].position ?? undefined) !== checkpoint) throw new CheckpointMoved(`checkpoint ${target.checkpointName} moved elsewhere`);
    await target.projection.apply(events, { db, table: target.table });
    await db.query(
      `UPDATE projection_checkpoints
          SET position = $2, events_applied = events_applied + $3, status = 'running', last_error = NULL, error_position = NULL, updated_at = now()
        WHERE name = $1`,
      [target.checkpointName, last.position, events.length],
    );
    await target.onCommit?.(db, events.length, last.position);
    return last.position;
  });
}
