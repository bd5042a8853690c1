/**
 * Runs projections from the event store's global feed into PostgreSQL.
 *
 * - Each batch of events and the projection's checkpoint are committed in one transaction, so a crash at
 *   any point neither loses nor double-applies an event.
 * - One runner owns a projection at a time across processes (a session advisory lock); the others stand by.
 *   The checkpoint row is also locked and compared inside every batch transaction, so even a runner that
 *   lost its lock without noticing cannot apply a batch twice.
 * - A projection that throws stops with the failing event's position and error recorded; it never skips.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { EventStore, Position } from '../domain/ports/event-store.ts';
import { isTransientPgError } from '../adapters/postgres/errors.ts';
import type { Projection } from './projection.ts';
import { CheckpointMoved, feed, readCheckpoint } from './feed.ts';

export type ProjectionState = 'starting' | 'running' | 'standby' | 'stopped' | 'failed';

export interface ProjectionStatus {
  name: string;
  state: ProjectionState;
  position: Position | undefined;
  lastError: string | undefined;
  errorPosition: Position | undefined;
}

export interface RunnerOptions {
  /** Most events applied in one transaction. */
  maxBatch?: number;
  /** How often a standby runner tries to take over a projection (ms). */
  standbyRetryMs?: number;
  /** See `FeedOptions.checkpointIdleMs` and `checkpointEveryMs` (feed.ts). */
  checkpointIdleMs?: number;
  checkpointEveryMs?: number;
}


/** A stable 64-bit advisory-lock key per projection name. */
const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtextextended('tally.projection:' || $1, 0)) AS locked`;

interface Worker {
  projection: Projection;
  status: ProjectionStatus;
  stop: () => Promise<void>;
  done: Promise<void>;
}

export class ProjectionRunner {
  private readonly workers = new Map<string, Worker>();
  private readonly positionWaiters = new Set<() => void>();
  private readonly maxBatch: number;
  private readonly standbyRetryMs: number;
  private readonly checkpointTiming: { checkpointIdleMs?: number; checkpointEveryMs?: number };

  constructor(
    private readonly pool: pg.Pool,
    private readonly connectionConfig: pg.ClientConfig,
    private readonly store: EventStore,
    private readonly projections: readonly Projection[],
    private readonly log: Logger,
    options: RunnerOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.standbyRetryMs = options.standbyRetryMs ?? 2000;
    this.checkpointTiming = {
      ...(options.checkpointIdleMs === undefined ? {} : { checkpointIdleMs: options.checkpointIdleMs }),
      ...(options.checkpointEveryMs === undefined ? {} : { checkpointEveryMs: options.checkpointEveryMs }),
    };
  }

  start(): void {
    for (const projection of this.projections) {
      if (this.workers.has(projection.name)) continue;
      this.workers.set(projection.name, this.startWorker(projection));
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    this.workers.clear();
  }

  status(): ProjectionStatus[] {
    return [...this.workers.values()].map((w) => ({ ...w.status }));
  }

  /** True when every projection is running here or owned by another instance. */
  healthy(): boolean {
    return [...this.workers.values()].every((w) => w.status.state === 'running' || w.status.state === 'standby');
  }

  /**
   * Resolves true once every projection owned here has applied `position` (or the feed past it), false on
   * timeout. Read-your-writes for HTTP readers.
   */
  async waitForPosition(position: Position, timeoutMs: number): Promise<boolean> {
    const covers = (at: Position | null | undefined) => at !== null && at !== undefined && !this.store.isAfter(position, at);
    const reached = async () => {
      // A projection fed here is where its worker says: its checkpoint row may lag (written lazily, see feed.ts).
      const here = new Map([...this.workers.values()].filter((w) => w.status.state === 'running').map((w) => [w.projection.name, w.status.position]));
      const elsewhere = this.projections.filter((p) => !covers(here.get(p.name)));
      if (elsewhere.length === 0) return true;
      const rows = (await this.pool.query<{ name: string; position: string | null }>('SELECT name, position FROM projection_checkpoints WHERE name = ANY($1)', [
        elsewhere.map((p) => p.name),
      ])).rows;
      return rows.length === elsewhere.length && rows.every((r) => covers(r.position as Position | null));
    };
    const deadline = Date.now() + timeoutMs;
    const reachedOrRetry = async () => {
      try {
        return await reached();
      } catch (error) {
        if (isTransientPgError(error)) return false;
        throw error;
      }
    };
    while (!(await reachedOrRetry())) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.positionWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 250));
        this.positionWaiters.add(done);
      });
    }
    return true;
  }

  private startWorker(projection: Projection): Worker {
    const status: ProjectionStatus = {
      name: projection.name,
      state: 'starting',
      position: undefined,
      lastError: undefined,
      errorPosition: undefined,
    };
    let stopping = false;
    let wakeStandby: (() => void) | undefined;
    let stopSubscription: (() => Promise<void>) | undefined;
    const log = this.log.child({ projection: projection.name });

    const loop = async () => {
      while (!stopping) {
        const lockClient = new pg.Client(this.connectionConfig);
        // Losing this connection releases the lock: stop feeding, and compete for the lock again.
        lockClient.on('error', () => void stopSubscription?.());
        try {
          await lockClient.connect();
          const { rows } = await lockClient.query<{ locked: boolean }>(LOCK_SQL, [projection.name]);
          if (!rows[0]?.locked) {
            status.state = 'standby';
          } else {
            await this.ensureCheckpointRow(projection.name);
            // A failed projection keeps its lock and looks again now and then: a rebuild (maybe by another
            // process) clears the failure, and feeding resumes from the rebuilt checkpoint.
            while (!stopping && (await this.runOwned(projection, status, log, (stop) => (stopSubscription = stop), () => stopping)) === 'failed') {
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, this.standbyRetryMs);
                wakeStandby = () => {
                  clearTimeout(timer);
                  resolve();
                };
              });
            }
          }
        } catch (error) {
          if (stopping) return;
          if (error instanceof CheckpointMoved) {
            // A rebuild took over (or another owner moved it): resume from the stored checkpoint at once.
            log.info('checkpoint moved; resuming from the stored one');
            await lockClient.end().catch(() => undefined);
            continue;
          }
          status.lastError = error instanceof Error ? error.message : String(error);
          log.warn({ err: error }, 'projection interrupted; will resume from its checkpoint');
        } finally {
          await lockClient.end().catch(() => undefined);
        }
        if (stopping) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.standbyRetryMs);
          wakeStandby = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    };

    const done = loop().finally(() => {
      if (status.state !== 'failed') status.state = 'stopped';
    });
    return {
      projection,
      status,
      done,
      stop: async () => {
        stopping = true;
        wakeStandby?.();
        await stopSubscription?.();
        await done;
      },
    };
  }

  private async ensureCheckpointRow(name: string): Promise<void> {
    await this.pool.query(`INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [name]);
  }

  /** Feeds the projection until stopped, failed, or the connection to PostgreSQL is lost. */
  private async runOwned(
    projection: Projection,
    status: ProjectionStatus,
    log: Logger,
    exposeStop: (stop: () => Promise<void>) => void,
    isStopping: () => boolean,
  ): Promise<'stopped' | 'failed'> {
    const row = await readCheckpoint(this.pool, projection.name);
    if (row?.status === 'failed') {
      // A failed projection stays stopped until an operator rebuilds it: never skip an event.
      Object.assign(status, {
        state: 'failed',
        lastError: row.last_error ?? undefined,
        errorPosition: (row.error_position ?? undefined) as Position | undefined,
        position: (row.position ?? undefined) as Position | undefined,
      });
      return 'failed';
    }
    status.position = (row?.position ?? undefined) as Position | undefined;
    status.state = 'running';
    status.lastError = undefined;
    const result = await feed(
      { projection, checkpointName: projection.name, table: (name) => name },
      {
        pool: this.pool,
        store: this.store,
        log,
        maxBatch: this.maxBatch,
        isStopping,
        exposeStop,
        lazyCheckpoints: true,
        ...this.checkpointTiming,
        onApplied: (checkpoint) => {
          status.position = checkpoint;
          for (const wake of [...this.positionWaiters]) wake();
        },
      },
    );
    if (result.kind === 'failed') {
      Object.assign(status, { state: 'failed', lastError: result.error, errorPosition: result.position, position: result.checkpoint });
      return 'failed';
    }
    return 'stopped';
  }
}
