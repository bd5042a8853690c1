/**
 * Runs projections from the event store's global feed into PostgreSQL.
 *
 * - Each batch of events and the projection's checkpoint are committed in one transaction, so a crash at
 *   any point neither loses nor double-applies an event.
 * - One runner owns a projection at a time across processes (a session advisory lock); the others stand by.
 *   The checkpoint row is also locked and compared inside every batch transaction, so even a runner that
 *   lost its lock without noticing cannot apply a batch twice.
 * - A projection that throws stops with the failing event's position and error recorded; it never skips.
 * - Each subscription is filtered to the event types its projection or reactor handles. A projection whose
 *   checkpoint is behind a position still covers it when no event it handles lies in between (read-your-writes).
 * - A reactor is handed a batch only once the read models it reads have applied that batch.
 * - Code older than a projection's live tables never feeds them: when a rebuild by a newer instance (a rolling deploy)
 *   has taken over at a higher version, this runner stands down (releases the lock, status `superseded`, a warning).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { EventStoreUnavailable, type EventStore, type Position } from '../domain/ports/event-store.ts';
import { isTransientPgError } from '../adapters/postgres/errors.ts';
import { isReactor, type FeedReader } from './projection.ts';
import { CheckpointMoved, feed, FeedStopped, ProjectionSuperseded, readCheckpoint, type FeedTarget } from './feed.ts';

/** `superseded`: the live tables were rebuilt at a version above this code's; an instance running that version feeds them. */
export type ProjectionState = 'starting' | 'running' | 'standby' | 'stopped' | 'failed' | 'superseded';

export interface ProjectionStatus {
  name: string;
  kind: 'projection' | 'reactor';
  /** What its subscription is filtered to. */
  eventTypes: readonly string[] | 'all';
  state: ProjectionState;
  position: Position | undefined;
  lastError: string | undefined;
  errorPosition: Position | undefined;
  /** How far the feed has nothing left for it: its checkpoint, or beyond it when no event of its types follows. */
  upTo: Position | undefined;
  /** Since this process started feeding it: events its filtered subscription delivered, and those it handled. */
  eventsRead: number;
  eventsApplied: number;
}

export interface RunnerOptions {
  /** Most events applied in one transaction. */
  maxBatch?: number;
  /** How often a standby runner tries to take over a projection (ms). */
  standbyRetryMs?: number;
  /** See `FeedOptions.checkpointIdleMs` and `checkpointEveryMs` (feed.ts). */
  checkpointIdleMs?: number;
  checkpointEveryMs?: number;
  /** How often a filtered projection's `upTo` is brought to the head when it has nothing to apply (ms, default 1000). */
  coverageEveryMs?: number;
  /** Longest a try for a projection's lock may take (ms, default 5000): a kept connection gone silent is dropped. */
  lockQueryTimeoutMs?: number;
}


/** A stable 64-bit advisory-lock key per projection name. */
const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtextextended('tally.projection:' || $1, 0)) AS locked`;

interface Worker {
  projection: FeedReader;
  status: ProjectionStatus;
  stop: () => Promise<void>;
  /** Ends a wait between attempts now (a failure was cleared). */
  wake: () => void;
  done: Promise<void>;
}

export class ProjectionRunner {
  private readonly workers = new Map<string, Worker>();
  private readonly positionWaiters = new Set<() => void>();
  private readonly maxBatch: number;
  private readonly standbyRetryMs: number;
  private readonly lockQueryTimeoutMs: number;
  private readonly checkpointTiming: { checkpointIdleMs?: number; checkpointEveryMs?: number };
  private readonly coverageEveryMs: number;
  private coverageTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly connectionConfig: pg.ClientConfig,
    private readonly store: EventStore,
    private readonly projections: readonly FeedReader[],
    private readonly log: Logger,
    options: RunnerOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.standbyRetryMs = options.standbyRetryMs ?? 2000;
    this.lockQueryTimeoutMs = options.lockQueryTimeoutMs ?? 5000;
    this.coverageEveryMs = options.coverageEveryMs ?? 1000;
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
    this.coverageTimer ??= setInterval(() => void this.refreshCoverage().catch(() => undefined), this.coverageEveryMs);
    this.coverageTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.coverageTimer) clearInterval(this.coverageTimer);
    this.coverageTimer = undefined;
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    this.workers.clear();
  }

  status(): ProjectionStatus[] {
    return [...this.workers.values()].map((w) => ({ ...w.status, upTo: this.upTo(w) }));
  }

  /** The checkpoints stored for `names` (those another instance feeds: its worker here knows none). */
  async storedCheckpoints(names: readonly string[]): Promise<Map<string, Position | undefined>> {
    if (!names.length) return new Map();
    const { rows } = await this.pool.query<{ name: string; position: string | null }>('SELECT name, position FROM projection_checkpoints WHERE name = ANY($1)', [names]);
    return new Map(rows.map((r) => [r.name, (r.position ?? undefined) as Position | undefined]));
  }

  /** Where a worker's read model is as good as: its checkpoint, or further when nothing of its types lies between. */
  private upTo(worker: Worker): Position | undefined {
    const at = worker.status.position;
    const idle = this.idleThrough.get(worker.projection.name);
    return idle && (!at || this.store.isAfter(idle, at)) ? idle : at;
  }

  /**
   * A filtered projection's checkpoint stays at its own last event while the feed moves on: now and then, find how
   * far it has nothing to apply (the gauges and the admin status read `upTo`). Each look scans only the events since
   * the last one.
   */
  private async refreshCoverage(): Promise<void> {
    const head = await this.store.headPosition();
    if (!head) return;
    let settled: Promise<boolean> | undefined;
    const isSettled = () => (settled ??= this.feedShows(head));
    for (const worker of this.workers.values()) {
      if (worker.status.state !== 'running') continue;
      const upTo = this.upTo(worker);
      if (!upTo || this.store.isAfter(head, upTo)) await this.nothingToApply(worker.projection, worker.status.position, head, isSettled);
    }
  }

  /**
   * Clears a failure recorded for a projection or reactor, so that its owner (this instance or another) feeds it
   * again from its checkpoint: the event it failed on first. For a cause fixed outside the code (a row edited, a
   * remote service back); a failure that persists is recorded again. Undefined when it has not failed.
   */
  async retryFailed(name: string): Promise<{ position: Position | undefined } | undefined> {
    const { rows } = await this.pool.query<{ position: string | null }>(
      `UPDATE projection_checkpoints SET status = 'running', last_error = NULL, error_position = NULL, updated_at = now()
        WHERE name = $1 AND status = 'failed' RETURNING position`,
      [name],
    );
    const row = rows[0];
    if (!row) return undefined;
    this.workers.get(name)?.wake();
    return { position: (row.position ?? undefined) as Position | undefined };
  }

  /** The names this runner feeds. */
  names(): string[] {
    return this.projections.map((p) => p.name);
  }

  /** True when every projection is running here or owned by another instance. */
  healthy(): boolean {
    return [...this.workers.values()].every((w) => w.status.state === 'running' || w.status.state === 'standby');
  }

  /**
   * Resolves true once every projection (of `names`, or all) has applied `position` or the feed past it, or has
   * nothing to apply up to it (no event of a type it handles in between); false on timeout. Read-your-writes for
   * HTTP readers, and the wait of a reactor for the read models it reads.
   */
  async waitForPosition(position: Position, timeoutMs: number, names?: readonly string[]): Promise<boolean> {
    const readers = names ? this.projections.filter((p) => names.includes(p.name)) : this.projections;
    const covers = (at: Position | null | undefined) => at !== null && at !== undefined && !this.store.isAfter(position, at);
    const reached = async () => {
      // Whether the feed shows `position` yet is one question for every reader: asked once a round, when one needs it.
      let settled: Promise<boolean> | undefined;
      const isSettled = () => (settled ??= this.feedShows(position));
      // A projection fed here is where its worker says: its checkpoint row may lag (written lazily, see feed.ts).
      const here = new Map([...this.workers.values()].filter((w) => w.status.state === 'running').map((w) => [w.projection.name, w.status.position]));
      const elsewhere = readers.filter((p) => !covers(here.get(p.name)) && !here.has(p.name));
      const stored = await this.storedCheckpoints(elsewhere.map((p) => p.name));
      for (const reader of readers) {
        const at = here.has(reader.name) ? here.get(reader.name) : stored.get(reader.name);
        if (!here.has(reader.name) && !stored.has(reader.name)) return false;
        if (!covers(at) && !(await this.nothingToApply(reader, at, position, isSettled))) return false;
      }
      return true;
    };
    const deadline = Date.now() + timeoutMs;
    const reachedOrRetry = async () => {
      try {
        return await reached();
      } catch (error) {
        if (isTransientPgError(error) || error instanceof EventStoreUnavailable) return false;
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

  /** The furthest position each filtered reader is known to have nothing to apply up to (see `nothingToApply`). */
  private readonly idleThrough = new Map<string, Position>();

  /** True when the feed hands out the event at `position` (a position no write returned is never shown). */
  private async feedShows(position: Position): Promise<boolean> {
    const [settled] = await this.store.readAll({ from: position, to: position, limit: 1 });
    return settled?.position === position;
  }

  /** True when no event of a type the reader handles lies after `at` up to `position`: it is as good as there. */
  private async nothingToApply(reader: FeedReader, at: Position | undefined, position: Position, feedShowsPosition: () => Promise<boolean>): Promise<boolean> {
    const eventTypes = reader.eventTypes;
    if (eventTypes === 'all') return false;
    const known = this.idleThrough.get(reader.name);
    const from = known && (!at || this.store.isAfter(known, at)) ? known : at;
    if (from && !this.store.isAfter(position, from)) return true;
    // Only once the feed shows `position` itself is everything up to it readable (PostgreSQL's feed holds back
    // transactions that may still commit below it): until then nothing can be said.
    if (!(await feedShowsPosition())) return false;
    const pending = await this.store.readAll({ ...(from ? { from } : {}), to: position, limit: 2, filter: { eventTypes } });
    if (pending.some((e) => !from || this.store.isAfter(e.position, from))) return false;
    this.idleThrough.set(reader.name, position);
    return true;
  }

  // Over 80 lines because a worker's status, its loop and its stop share one closure; the loop's steps are methods of the runner.
  private startWorker(projection: FeedReader): Worker {
    const status: ProjectionStatus = {
      name: projection.name,
      kind: isReactor(projection) ? 'reactor' : 'projection',
      eventTypes: projection.eventTypes,
      state: 'starting',
      position: undefined,
      lastError: undefined,
      errorPosition: undefined,
      upTo: undefined,
      eventsRead: 0,
      eventsApplied: 0,
    };
    let stopping = false;
    let wakeStandby: (() => void) | undefined;
    let stopSubscription: (() => Promise<void>) | undefined;
    const log = this.log.child({ projection: projection.name });

    const pause = () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.standbyRetryMs);
        wakeStandby = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    // A standby keeps its connection and asks for the lock on it again (a new session every standbyRetryMs per
    // projection, on every standby instance, was churn for nothing); the owner's ends when it lets the lock go.
    let standbyClient: pg.Client | undefined;
    const loop = async () => {
      while (!stopping) {
        // Once superseded, compete for the lock no more while the tables stay at the newer version.
        if (status.state === 'superseded' && (await this.stillSuperseded(projection).catch(() => true))) {
          await pause();
          continue;
        }
        let keep = false;
        let held = false;
        // Keepalives, and a bound on the try: a kept connection whose peer went silent (a failover, a dropped NAT
        // entry) is given up in seconds, not after the kernel's retransmissions (about 15 minutes).
        const lockClient = standbyClient ?? new pg.Client({ ...this.connectionConfig, keepAlive: true, keepAliveInitialDelayMillis: 10_000, query_timeout: this.lockQueryTimeoutMs });
        const fresh = lockClient !== standbyClient;
        standbyClient = undefined;
        // Losing this connection releases the lock: stop feeding, and compete for the lock again.
        if (fresh) lockClient.on('error', () => void stopSubscription?.());
        try {
          if (fresh) await lockClient.connect();
          const { rows } = await lockClient.query<{ locked: boolean }>(LOCK_SQL, [projection.name]);
          if (!rows[0]?.locked) {
            status.state = 'standby';
            keep = true;
          } else {
            held = true;
            await this.ensureCheckpointRow(projection);
            // A failed projection keeps its lock and looks again now and then: a rebuild (maybe by another
            // process) clears the failure, and feeding resumes from the rebuilt checkpoint.
            while (!stopping && (await this.runOwned(projection, status, log, (stop) => (stopSubscription = stop), () => stopping)) === 'failed') {
              await pause();
            }
          }
        } catch (error) {
          if (stopping) return;
          if (error instanceof ProjectionSuperseded) {
            // A newer instance's rebuild took over while this one fed: not one more write (the lock goes below).
            this.standDown(status, log, error.storedVersion, error.version);
          } else if (error instanceof CheckpointMoved) {
            // A rebuild took over (or another owner moved it): resume from the stored checkpoint at once.
            log.info('checkpoint moved; resuming from the stored one');
            await lockClient.end().catch(() => undefined);
            continue;
          } else {
            status.lastError = error instanceof Error ? error.message : String(error);
            log.warn({ err: error }, 'projection interrupted; will resume from its checkpoint');
          }
        } finally {
          if (keep && !stopping) standbyClient = lockClient;
          // The owner's connection is closed before it competes again; one holding no lock is left to close.
          else if (held) await lockClient.end().catch(() => undefined);
          else void lockClient.end().catch(() => undefined);
        }
        if (stopping) return;
        await pause();
      }
    };

    const done = loop().finally(() => {
      void standbyClient?.end().catch(() => undefined);
      standbyClient = undefined;
      if (status.state !== 'failed') status.state = 'stopped';
    });
    return {
      projection,
      status,
      done,
      wake: () => wakeStandby?.(),
      stop: async () => {
        stopping = true;
        wakeStandby?.();
        await stopSubscription?.();
        await done;
      },
    };
  }

  /** True while the projection's live tables stay at a version above this code's (never for a reactor). */
  private async stillSuperseded(reader: FeedReader): Promise<boolean> {
    const row = await readCheckpoint(this.pool, reader.name);
    return !isReactor(reader) && row !== undefined && row.version > reader.version;
  }

  /** Stops feeding a projection whose live tables are newer than this code, and says so once. */
  private standDown(status: ProjectionStatus, log: Logger, storedVersion: number, version: number): void {
    const message = `its live tables were rebuilt at version ${storedVersion}, above this instance's version ${version}: an instance running version ${storedVersion} feeds it`;
    if (status.state !== 'superseded') log.warn({ storedVersion, version }, `projection superseded, standing down: ${message}`);
    Object.assign(status, { state: 'superseded', lastError: message });
  }

  /** A projection fed for the first time is built from the start at its declared version. */
  private async ensureCheckpointRow(reader: FeedReader): Promise<void> {
    await this.pool.query(`INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [
      reader.name,
      isReactor(reader) ? 1 : reader.version,
    ]);
  }

  /** What the feed drives: a projection's apply, or a reactor's handle once the read models it reads are there. */
  private feedTarget(reader: FeedReader, isStopping: () => boolean): FeedTarget {
    const common = { checkpointName: reader.name, table: (name: string) => name, eventTypes: reader.eventTypes };
    if (!isReactor(reader)) return { ...common, version: reader.version, apply: (events, context) => reader.apply(events, context) };
    return {
      ...common,
      apply: async (events) => {
        const last = events.at(-1);
        if (last && reader.reads.length) {
          while (!(await this.waitForPosition(last.position, 1000, reader.reads))) if (isStopping()) throw new FeedStopped(`${reader.name} stopped`);
        }
        await reader.handle(events, { db: this.pool });
      },
    };
  }

  /** Feeds the projection until stopped, failed, superseded, or the connection to PostgreSQL is lost. */
  private async runOwned(
    projection: FeedReader,
    status: ProjectionStatus,
    log: Logger,
    exposeStop: (stop: () => Promise<void>) => void,
    isStopping: () => boolean,
  ): Promise<'stopped' | 'failed' | 'superseded'> {
    const row = await readCheckpoint(this.pool, projection.name);
    if (row && !isReactor(projection) && row.version > projection.version) {
      // Rebuilt by a newer instance (a rolling deploy): this code must not feed the new tables.
      this.standDown(status, log, row.version, projection.version);
      return 'superseded';
    }
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
      this.feedTarget(projection, isStopping),
      {
        pool: this.pool,
        store: this.store,
        log,
        maxBatch: this.maxBatch,
        isStopping,
        exposeStop,
        lazyCheckpoints: true,
        ...this.checkpointTiming,
        onApplied: (checkpoint, counts) => {
          status.position = checkpoint;
          status.eventsRead += counts.read;
          status.eventsApplied += counts.applied;
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
