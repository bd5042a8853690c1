/**
 * Rebuilding a projection without downtime. The rebuild replays the whole feed into fresh tables beside the
 * live ones, with its own checkpoint, while the live projection keeps serving and keeping up. Once the
 * rebuild has caught up with the live feed, one transaction takes over: it locks the live checkpoint (so the
 * live runner cannot commit in between), renames the fresh tables into place, and moves the live checkpoint to
 * the rebuild's, raising its takeover count (`generation`). Readers wait for the renames for an instant and then see the
 * complete new tables; the live runner finds its checkpoint moved and carries on from the rebuild's, or, running code
 * older than the version the tables were rebuilt at (a rolling deploy), stands down (runner.ts). The old tables are then dropped.
 *
 * A job can be cancelled (its tables and checkpoint are kept) and resumed; one job per projection runs at a
 * time (a unique index on running jobs, and an advisory lock held by the process running it).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DomainError, NotFound } from '../domain/shared/errors.ts';
import type { EventStore, Position } from '../domain/ports/event-store.ts';
import { checkOut, withTransaction } from '../adapters/postgres/transaction.ts';
import { isLockContentionPgError, isTransientPgError } from '../adapters/postgres/errors.ts';
import { feed, readCheckpoint } from './feed.ts';
import { isReactor, type FeedReader, type Projection } from './projection.ts';
import { timestamp } from './read/views.ts';

export const rebuildState = z.enum(['running', 'completed', 'cancelled', 'failed']);
export type RebuildState = z.infer<typeof rebuildState>;

/** A rebuild job as `GET /api/v1/admin/jobs/:jobId` shows it. */
export const rebuildJob = z.object({
  jobId: z.string(),
  projection: z.string(),
  state: rebuildState,
  eventsApplied: z.number().int(),
  eventsTotal: z.number().int().nullable(),
  /** 0..1 when the total is known. */
  progress: z.number().nullable(),
  eventsPerSecond: z.number().nullable(),
  etaSeconds: z.number().nullable(),
  startedAt: timestamp,
  updatedAt: timestamp,
  finishedAt: timestamp.nullable(),
  error: z.string().nullable(),
});
export type RebuildJob = z.infer<typeof rebuildJob>;

const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtextextended('tally.rebuild:' || $1, 0)) AS locked`;
/** Most events the takeover applies itself to close the gap to the live projection. */
const TAKEOVER_GAP = 2000;
/**
 * Events per batch transaction, and per page of the history read (the next page is read while a batch is written).
 * Measured with bench/rebuild.ts (1,000,000 events): 5,000 gave 0.30 of the INSERT … SELECT baseline, 20,000 gave
 * 0.63 (on a loaded machine, where every round trip waits to be scheduled: fewer batches, fewer round trips).
 */
const REBUILD_BATCH = 20_000;
/**
 * The longest the takeover waits for a lock (`lock_timeout`): renaming a live table needs it to itself, so the rename
 * waits behind any reader of it, and every read of the table that comes after queues behind the rename. Past this,
 * the takeover rolls back, the reads go on, and it is tried again after a pause (`takeoverPauseMs`).
 */
export const TAKEOVER_LOCK_TIMEOUT_MS = 2_000;
/** The pause before takeover attempt `n + 1`: n seconds, at most 10 (a reader of an hour is met about every 12 s). */
const takeoverPauseMs = (attempt: number) => Math.min(attempt, 10) * 1000;
const rebuildCheckpoint = (projection: string) => `${projection}#rebuild`;
const freshTable = (table: string, suffix: string) => `${table}__rb_${suffix}`;
const oldTable = (table: string, suffix: string) => `${table}__old_${suffix}`;
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

function toJob(row: {
  id: string;
  projection: string;
  state: RebuildState;
  events_applied: string;
  events_total: string | null;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  error: string | null;
}): RebuildJob {
  const applied = Number(row.events_applied);
  const total = row.events_total === null ? null : Number(row.events_total);
  const elapsed = ((row.finished_at ?? row.updated_at).getTime() - row.started_at.getTime()) / 1000;
  const rate = elapsed > 0 ? applied / elapsed : null;
  return {
    jobId: row.id,
    projection: row.projection,
    state: row.state,
    eventsApplied: applied,
    eventsTotal: total,
    progress: row.state === 'completed' ? 1 : total ? Math.min(1, applied / Math.max(total, 1)) : null,
    eventsPerSecond: rate === null ? null : Math.round(rate),
    etaSeconds: row.state === 'running' && rate && total !== null ? Math.max(0, Math.round((total - applied) / rate)) : null,
    startedAt: row.started_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    error: row.error,
  };
}

const JOB_COLUMNS = 'id, projection, state, events_applied, events_total, started_at, updated_at, finished_at, error';

export interface RebuildOptions {
  /** Events per batch transaction and per page read (default REBUILD_BATCH). */
  maxBatch?: number;
  /** Called after each committed batch (metrics, CLI progress). */
  onProgress?(job: { projection: string; jobId: string; eventsApplied: number; eventsTotal: number | null }): void;
  /** Called when a run of the job starts: a new job, or a cancelled one resumed under its id. */
  onStarted?(job: { projection: string; jobId: string }): void;
  /** Called once a run of the job has ended, however (taken over, failed, cancelled, interrupted). */
  onEnded?(job: { projection: string; jobId: string }): void;
}

export class ProjectionRebuilds {
  private readonly running = new Map<string, { cancel: () => Promise<void>; done: Promise<void> }>();
  private readonly projections: readonly Projection[];
  private readonly reactors: readonly string[];

  constructor(
    private readonly pool: pg.Pool,
    private readonly connectionConfig: pg.ClientConfig,
    private readonly store: EventStore,
    readers: readonly FeedReader[],
    private readonly log: Logger,
    private readonly newId: () => string,
    private readonly options: RebuildOptions = {},
  ) {
    this.projections = readers.filter((r): r is Projection => !isReactor(r));
    this.reactors = readers.filter(isReactor).map((r) => r.name);
  }

  /** Projections that can be rebuilt (reactors are never: replaying the feed to one would issue its commands again). */
  names(): string[] {
    return this.projections.map((p) => p.name);
  }

  /**
   * Starts a rebuild of every projection whose declared version is above the version its live tables were built
   * at (`projection_checkpoints.version`). Called at start-up: raising a projection's version is how a change of
   * what it writes reaches existing databases. A rebuild already running elsewhere is left to that process.
   */
  async rebuildOutdated(): Promise<RebuildJob[]> {
    const { rows } = await this.pool.query<{ name: string; version: number }>('SELECT name, version FROM projection_checkpoints WHERE name = ANY($1)', [
      this.projections.map((p) => p.name),
    ]);
    const started: RebuildJob[] = [];
    for (const row of rows) {
      const projection = this.projections.find((p) => p.name === row.name);
      if (!projection || row.version >= projection.version) continue;
      try {
        const job = await this.begin(projection.name, { onlyIfOutdated: true });
        if (!job) continue;
        started.push(job);
        this.log.info({ projection: projection.name, from: row.version, to: projection.version }, 'projection version raised: rebuilding it beside the live one');
      } catch (error) {
        if (!(error instanceof DomainError && error.code === 'CONFLICT')) throw error;
      }
    }
    return started;
  }

  /** Starts (or resumes a cancelled or orphaned) rebuild of one projection; returns at once with the job. */
  async start(name: string): Promise<RebuildJob> {
    return (await this.begin(name, { onlyIfOutdated: false })) as RebuildJob;
  }

  /**
   * `onlyIfOutdated`: the live tables' version is read again once the lock is held, and nothing starts (undefined) if
   * they are at this code's version by then: another instance's rebuild took over since they were last read.
   */
  private async begin(name: string, { onlyIfOutdated }: { onlyIfOutdated: boolean }): Promise<RebuildJob | undefined> {
    if (this.reactors.includes(name)) {
      throw new DomainError('VALIDATION_FAILED', `${name} is a reactor: it owns no tables, and replaying the feed to it would issue its commands again`);
    }
    const projection = this.projections.find((p) => p.name === name);
    if (!projection) throw new NotFound(`Projection ${name}`);

    const lock = new pg.Client(this.connectionConfig);
    lock.on('error', () => undefined);
    await lock.connect();
    const { rows } = await lock.query<{ locked: boolean }>(LOCK_SQL, [name]);
    if (!rows[0]?.locked) {
      await lock.end();
      throw new DomainError('CONFLICT', `A rebuild of ${name} is already running`);
    }
    try {
      if (onlyIfOutdated && Number((await readCheckpoint(this.pool, name))?.version ?? 0) >= projection.version) {
        await lock.end();
        return undefined;
      }
      const job = await this.claimJob(projection);
      const control = this.run(projection, job.jobId, job.suffix, lock);
      this.running.set(job.jobId, control);
      void control.done.finally(() => this.running.delete(job.jobId));
      return (await this.get(job.jobId)) as RebuildJob;
    } catch (error) {
      await lock.end().catch(() => undefined);
      throw error;
    }
  }

  /**
   * A running or cancelled job of this projection started by code of this version is resumed (same tables, same
   * checkpoint). Any other unfinished job (another version, an unknown one: started before migration 0430, or failed)
   * is never resumed: resumed by other code, the rows before its checkpoint would be one fold's and the rest
   * another's. Its fresh tables are dropped, it is marked failed, and a new job starts from the first event.
   */
  private async claimJob(projection: Projection): Promise<{ jobId: string; suffix: string }> {
    const { rows } = await this.pool.query<{ id: string; suffix: string; state: RebuildState; version: number | null }>(
      `SELECT id, suffix, state, version FROM projection_rebuilds WHERE projection = $1 AND state IN ('running', 'cancelled', 'failed') ORDER BY started_at DESC`,
      [projection.name],
    );
    const resumable = rows.find((job) => job.state !== 'failed' && job.version === projection.version);
    await this.discardJobs(projection, rows.filter((job) => job !== resumable));
    if (resumable) {
      await this.pool.query(`UPDATE projection_rebuilds SET state = 'running', updated_at = now(), error = NULL WHERE id = $1`, [resumable.id]);
      // The live tables' storage options may have changed since the job started (a migration): take them again.
      for (const table of projection.tables) await this.copyStorageOptions(table, freshTable(table, resumable.suffix));
      return { jobId: resumable.id, suffix: resumable.suffix };
    }
    const jobId = this.newId();
    const suffix = jobId.replace(/-/g, '').slice(0, 12);
    const live = await readCheckpoint(this.pool, projection.name);
    await this.pool.query(`INSERT INTO projection_rebuilds (id, projection, state, suffix, events_total, version) VALUES ($1, $2, 'running', $3, $4, $5)`, [
      jobId,
      projection.name,
      suffix,
      live ? Number(live.events_applied) : null,
      projection.version,
    ]);
    // Fresh tables with the live tables' columns, defaults, constraints, indexes and storage options.
    for (const table of projection.tables) {
      await this.pool.query(`DROP TABLE IF EXISTS ${ident(freshTable(table, suffix))}`);
      await this.pool.query(`CREATE TABLE ${ident(freshTable(table, suffix))} (LIKE ${ident(table)} INCLUDING ALL)`);
      await this.copyStorageOptions(table, freshTable(table, suffix));
    }
    await this.pool.query(
      `INSERT INTO projection_checkpoints (name, position, events_applied, status) VALUES ($1, NULL, 0, 'rebuilding')
       ON CONFLICT (name) DO UPDATE SET position = NULL, events_applied = 0, status = 'rebuilding', last_error = NULL, error_position = NULL`,
      [rebuildCheckpoint(projection.name)],
    );
    return { jobId, suffix };
  }

  /**
   * Jobs that will never run again: their fresh tables go (a wallets rebuild's are gigabytes), and an unfinished one is
   * marked failed, so that code of its version, should it start again, begins anew rather than resume over tables that
   * are gone. The rebuild checkpoint is reset by the new job. This process holds the projection's rebuild lock: no
   * process is running any of them.
   */
  private async discardJobs(projection: Projection, jobs: ReadonlyArray<{ id: string; suffix: string; state: RebuildState }>): Promise<void> {
    if (jobs.length === 0) return;
    const { rows } = await this.pool.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY($1)`, [
      jobs.flatMap((job) => projection.tables.map((table) => freshTable(table, job.suffix))),
    ]);
    for (const { tablename } of rows) await this.pool.query(`DROP TABLE IF EXISTS ${ident(tablename)}`);
    const unfinished = jobs.filter((job) => job.state !== 'failed').map((job) => job.id);
    if (unfinished.length) {
      await this.pool.query(
        `UPDATE projection_rebuilds SET state = 'failed', error = $2, updated_at = now(), finished_at = now() WHERE id = ANY($1::uuid[])`,
        [unfinished, `not resumed: replaced by a rebuild at version ${projection.version} (its tables were dropped)`],
      );
    }
    if (rows.length) this.log.info({ projection: projection.name, tables: rows.map((r) => r.tablename) }, 'dropped the tables of rebuild jobs that will not be resumed');
  }

  /**
   * `LIKE … INCLUDING ALL` copies columns, defaults, constraints and indexes, but not the table's own storage
   * parameters (pg_class.reloptions, e.g. the `fillfactor` of `wallets`, migrations/0008): without this the
   * takeover would swap in a table without them. The TOAST table's parameters go along (`toast.` prefix).
   */
  private async copyStorageOptions(table: string, fresh: string): Promise<void> {
    const { rows } = await this.pool.query<{ heap: string[] | null; toast: string[] | null }>(
      `SELECT c.reloptions AS heap, t.reloptions AS toast FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.oid = $1::regclass`,
      [ident(table)],
    );
    const setting = (prefix: string) => (option: string) => {
      const at = option.indexOf('=');
      return `${prefix}${ident(option.slice(0, at))} = '${option.slice(at + 1).replace(/'/g, "''")}'`;
    };
    const settings = [...(rows[0]?.heap ?? []).map(setting('')), ...(rows[0]?.toast ?? []).map(setting('toast.'))];
    if (settings.length) await this.pool.query(`ALTER TABLE IF EXISTS ${ident(fresh)} SET (${settings.join(', ')})`);
  }

  private run(projection: Projection, jobId: string, suffix: string, lock: pg.Client) {
    let stopping = false;
    const pause = interruptiblePause();
    let stopFeed: (() => Promise<void>) | undefined;
    const log = this.log.child({ projection: projection.name, rebuildJob: jobId });
    // A projection's in-memory fold for replays (running balances), when it has one: see Projection.replay.
    const replay = projection.replay?.();
    const table = (name: string) => freshTable(name, suffix);
    const batch = this.options.maxBatch ?? REBUILD_BATCH;
    this.options.onStarted?.({ projection: projection.name, jobId });
    const done = (async () => {
      try {
        const result = await feed(
          {
            eventTypes: projection.eventTypes,
            apply: (events, context) => (replay ? replay.apply(events, context) : projection.apply(events, context)),
            committed: () => replay?.committed(),
            checkpointName: rebuildCheckpoint(projection.name),
            table,
            onCommit: async (db, applied) => {
              await db.query(`UPDATE projection_rebuilds SET events_applied = events_applied + $2, updated_at = now() WHERE id = $1`, [jobId, applied]);
            },
          },
          {
            pool: this.pool,
            store: this.store,
            log,
            maxBatch: batch,
            pageSize: batch,
            isStopping: () => stopping,
            exposeStop: (stop) => (stopFeed = stop),
            onApplied: () => void this.reportProgress(jobId),
            onIdle: async (checkpoint) => {
              // The fresh tables get what the fold kept in memory, up to the checkpoint; then the takeover as ever.
              if (replay) {
                await withTransaction(this.pool, (db) => replay.settle({ db, table }));
                replay.committed();
              }
              return this.takeOverWhenFree(projection, jobId, suffix, checkpoint, log, { isStopping: () => stopping, pause: (ms) => pause.wait(ms) });
            },
          },
        );
        if (result.kind === 'failed') {
          await this.finish(jobId, 'failed', `${result.error} (at position ${result.position})`);
          log.error({ error: result.error }, 'rebuild failed');
        } else if (result.kind === 'stopped') {
          await this.finish(jobId, 'cancelled', null);
          log.info('rebuild cancelled; resume it by starting a rebuild of the same projection');
        } else {
          log.info('rebuild took over');
        }
      } catch (error) {
        log.error({ err: error }, 'rebuild interrupted');
        await this.finish(jobId, 'failed', error instanceof Error ? error.message : String(error)).catch(() => undefined);
      } finally {
        await lock.end().catch(() => undefined);
        this.options.onEnded?.({ projection: projection.name, jobId });
      }
    })();
    return {
      done,
      cancel: async () => {
        stopping = true;
        pause.interrupt();
        await stopFeed?.();
        await done;
      },
    };
  }

  private async reportProgress(jobId: string) {
    if (!this.options.onProgress) return;
    const job = await this.get(jobId).catch(() => undefined);
    if (job) this.options.onProgress({ projection: job.projection, jobId, eventsApplied: job.eventsApplied, eventsTotal: job.eventsTotal });
  }

  /**
   * The takeover, tried again after a pause while it loses to another transaction (a lock not granted within
   * TAKEOVER_LOCK_TIMEOUT_MS, a deadlock) or PostgreSQL is out of reach: none of that is the rebuild's fault, and
   * failing the job would throw its work away. `continue` when the live projection is still ahead, or on a stop.
   */
  private async takeOverWhenFree(
    projection: Projection,
    jobId: string,
    suffix: string,
    rebuilt: Position | undefined,
    log: Logger,
    control: { isStopping(): boolean; pause(ms: number): Promise<void> },
  ): Promise<'done' | 'continue'> {
    for (let attempt = 1; ; attempt++) {
      try {
        // An attempt whose COMMIT went through but whose answer was lost: the job says so.
        if (attempt > 1 && (await this.completed(jobId))) return (await this.dropOldTables(projection, suffix), 'done');
        return (await this.takeOver(projection, jobId, suffix, rebuilt)) ? 'done' : 'continue';
      } catch (error) {
        if (!takeoverMayRetry(error)) throw error;
        const pauseMs = takeoverPauseMs(attempt);
        log.warn({ err: error, attempt, pauseMs, lockTimeoutMs: TAKEOVER_LOCK_TIMEOUT_MS }, 'rebuild takeover rolled back (a lock not granted in time, a deadlock, or PostgreSQL out of reach): trying again');
        await control.pause(pauseMs);
        if (control.isStopping()) return 'continue';
      }
    }
  }

  private async completed(jobId: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ state: RebuildState }>('SELECT state FROM projection_rebuilds WHERE id = $1', [jobId]);
    return rows[0]?.state === 'completed';
  }

  private async dropOldTables(projection: Projection, suffix: string): Promise<void> {
    for (const table of projection.tables) await this.pool.query(`DROP TABLE IF EXISTS ${ident(oldTable(table, suffix))}`);
  }

  /** The atomic switch. False when the live projection is still ahead: the rebuild reads on and tries again. */
  private async takeOver(projection: Projection, jobId: string, suffix: string, rebuilt: Position | undefined): Promise<boolean> {
    // Listening from the instant of check-out (see checkOut): a connection dropped mid-takeover must not crash the process.
    const db = await checkOut(this.pool);
    let broken: Error | undefined;
    try {
      await db.query('BEGIN');
      // Every lock below (the live checkpoint row, each live table to rename) is waited for at most this long.
      await db.query(`SET LOCAL lock_timeout = ${TAKEOVER_LOCK_TIMEOUT_MS}`);
      // Holding the live checkpoint row keeps the live runner from committing until the switch is done.
      const { rows } = await db.query<{ position: string | null }>('SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE', [projection.name]);
      const live = (rows[0]?.position ?? undefined) as Position | undefined;
      let position = rebuilt;
      if (live && (!rebuilt || this.store.isAfter(live, rebuilt))) {
        // The live projection is a few events ahead (it keeps up with appends too). While its checkpoint is
        // held it cannot move: apply the gap to the fresh tables here, then switch at the live position.
        const gap = (await this.store.readAll({ ...(rebuilt ? { from: rebuilt } : {}), to: live, limit: TAKEOVER_GAP + 2 })).filter(
          (e) => (!rebuilt || this.store.isAfter(e.position, rebuilt)) && !this.store.isAfter(e.position, live),
        );
        const reachesLive = gap.at(-1)?.position === live;
        if (!reachesLive || gap.length > TAKEOVER_GAP) {
          await db.query('ROLLBACK');
          return false;
        }
        await projection.apply(gap, { db, table: (name) => freshTable(name, suffix) });
        await db.query(`UPDATE projection_rebuilds SET events_applied = events_applied + $2 WHERE id = $1`, [jobId, gap.length]);
        await db.query(`UPDATE projection_checkpoints SET events_applied = events_applied + $2 WHERE name = $1`, [rebuildCheckpoint(projection.name), gap.length]);
        position = live;
      }
      for (const table of projection.tables) {
        await db.query(`ALTER TABLE ${ident(table)} RENAME TO ${ident(oldTable(table, suffix))}`);
        await db.query(`ALTER TABLE ${ident(freshTable(table, suffix))} RENAME TO ${ident(table)}`);
      }
      const { rows: applied } = await db.query<{ events_applied: string }>('SELECT events_applied FROM projection_checkpoints WHERE name = $1', [
        rebuildCheckpoint(projection.name),
      ]);
      // A new generation, whatever the position: the owner of the old tables (even one whose checkpoint is where this
      // one is, or ahead only in memory) finds at its next write that they are gone, and starts again from here, or
      // stands down if its code is older than this version (feed.ts).
      await db.query(
        `INSERT INTO projection_checkpoints (name, position, events_applied, status, version) VALUES ($1, $2, $3, 'running', $4)
         ON CONFLICT (name) DO UPDATE SET position = $2, events_applied = $3, status = 'running', last_error = NULL, error_position = NULL,
                                          version = $4, generation = projection_checkpoints.generation + 1, updated_at = now()`,
        [projection.name, position ?? null, applied[0]?.events_applied ?? 0, projection.version],
      );
      await db.query('DELETE FROM projection_checkpoints WHERE name = $1', [rebuildCheckpoint(projection.name)]);
      // Only a job still running completes: one cancelled elsewhere while this takeover waited out its lock (another
      // process took the rebuild lock after this one's connection died) keeps its state, and nothing is switched.
      const completed = await db.query(`UPDATE projection_rebuilds SET state = 'completed', finished_at = now(), updated_at = now() WHERE id = $1 AND state = 'running'`, [jobId]);
      if (completed.rowCount !== 1) throw new Error(`the rebuild job ${jobId} is no longer running (cancelled or ended elsewhere): its takeover is abandoned`);
      await db.query('COMMIT');
    } catch (error) {
      // A connection that cannot even roll back is destroyed, not handed back to the pool.
      await db.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      db.release(broken);
    }
    await this.dropOldTables(projection, suffix);
    return true;
  }

  private async finish(jobId: string, state: RebuildState, error: string | null) {
    await this.pool.query(`UPDATE projection_rebuilds SET state = $2, error = $3, updated_at = now(), finished_at = CASE WHEN $2 = 'cancelled' THEN NULL ELSE now() END WHERE id = $1 AND state = 'running'`, [
      jobId,
      state,
      error,
    ]);
  }

  async cancel(jobId: string): Promise<RebuildJob> {
    const job = await this.get(jobId);
    if (!job) throw new NotFound('Rebuild job');
    const control = this.running.get(jobId);
    if (!control) {
      if (job.state === 'running') return this.cancelElsewhere(job);
      throw new DomainError('CONFLICT', `The job is ${job.state}; only a running job can be cancelled`);
    }
    await control.cancel();
    return (await this.get(jobId)) as RebuildJob;
  }

  /**
   * A job marked running that this process does not run: another process holds its lock (409: cancel it there), or
   * none does, its process having died (SIGKILL, a lost machine), and it is cancelled here, kept to be resumed by
   * starting a rebuild of the projection again.
   */
  private async cancelElsewhere(job: RebuildJob): Promise<RebuildJob> {
    const lock = new pg.Client(this.connectionConfig);
    lock.on('error', () => undefined);
    await lock.connect();
    try {
      const { rows } = await lock.query<{ locked: boolean }>(LOCK_SQL, [job.projection]);
      if (!rows[0]?.locked) throw new DomainError('CONFLICT', 'This job runs in another process: cancel it there');
      await this.finish(job.jobId, 'cancelled', null);
    } finally {
      await lock.end().catch(() => undefined);
    }
    return (await this.get(job.jobId)) as RebuildJob;
  }

  /** Resolves when the job is no longer running here. */
  async wait(jobId: string): Promise<RebuildJob | undefined> {
    await this.running.get(jobId)?.done;
    return this.get(jobId);
  }

  async get(jobId: string): Promise<RebuildJob | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(jobId)) return undefined;
    const { rows } = await this.pool.query(`SELECT ${JOB_COLUMNS} FROM projection_rebuilds WHERE id = $1`, [jobId]);
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async recent(limit = 20): Promise<RebuildJob[]> {
    const { rows } = await this.pool.query(`SELECT ${JOB_COLUMNS} FROM projection_rebuilds ORDER BY started_at DESC LIMIT $1`, [limit]);
    return rows.map(toJob);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => r.cancel()));
  }
}

/** Lost to another transaction, cancelled by an operator (`pg_cancel_backend`: 57014), or PostgreSQL out of reach. */
function takeoverMayRetry(error: unknown): boolean {
  return isLockContentionPgError(error) || isTransientPgError(error) || (error as { code?: unknown } | undefined)?.code === '57014';
}

/** A pause that a stop cuts short. */
function interruptiblePause() {
  let interrupted = false;
  let wake = () => undefined as void;
  return {
    wait: (ms: number) =>
      interrupted
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            wake = () => (clearTimeout(timer), resolve());
          }),
    interrupt() {
      interrupted = true;
      wake();
    },
  };
}
