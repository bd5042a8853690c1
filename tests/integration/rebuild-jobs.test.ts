/**
 * Rebuild jobs across versions and locks: a cancelled job is resumed only by code of its own version (another
 * version starts anew, dropping the old job's tables, and so does the job after a failed one); the takeover waits a
 * bounded time for its locks, so readers of the live table are never queued behind it for longer, and it tries again
 * rather than failing the job; a start-up rebuild that another instance has just made needless does not begin.
 */
import test from 'ava';
import pg from 'pg';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import type { Projection } from '../../projections/projection.ts';
import { ProjectionRebuilds, TAKEOVER_LOCK_TIMEOUT_MS } from '../../projections/rebuild.ts';
import { eventStoreForTests } from '../support/database.ts';
import { until } from '../support/eventually.ts';

const silent = pino({ level: 'silent' });
const suite = eventStoreForTests(test);

/**
 * One row per event, saying which version of the code wrote it. `pauseAfter`: once that many events were applied,
 * the fold waits for `resume()` (the test cancels the job meanwhile). Below 100, that is in the run's first batch
 * (a page of 100), before any takeover can be tried.
 */
function recording(name: string, version: number, pauseAfter?: number) {
  let applied = 0;
  let paused!: () => void;
  let resume!: () => void;
  const reached = new Promise<void>((resolve) => (paused = resolve));
  const resumed = new Promise<void>((resolve) => (resume = resolve));
  const projection: Projection = {
    name,
    version,
    tables: [`${name}_rows`],
    eventTypes: [`${name}.Happened`],
    async apply(events, { db, table }) {
      for (const event of events) {
        if (++applied === pauseAfter) {
          paused();
          await resumed;
        }
        await db.query(`INSERT INTO ${table(`${name}_rows`)} (id, written_by) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [event.id, version]);
      }
    },
  };
  return { projection, reached, resume };
}

/**
 * The live table, `events` events, and the live projection's checkpoint at the last of them, at version 1 (so a
 * takeover before the rebuild has read them all applies the rest itself).
 */
async function setUp(name: string, events: number) {
  const { database, store } = suite;
  await database.pool.query(`CREATE TABLE ${name}_rows (id text PRIMARY KEY, written_by int NOT NULL)`);
  let last = '';
  for (let i = 0; i < events; i++) last = (await store.append(`${name}-${uuid()}`, [{ id: uuid(), type: `${name}.Happened`, data: {} }], 'no_stream')).position;
  await database.pool.query(`INSERT INTO projection_checkpoints (name, position, events_applied, status, version) VALUES ($1, $2, $3, 'running', 1)`, [
    name,
    last,
    events,
  ]);
}

function rebuildsOf(projection: Projection, pool: pg.Pool = suite.database.pool) {
  return new ProjectionRebuilds(pool, { connectionString: suite.database.url }, suite.store, [projection], silent, uuid, { maxBatch: 100 });
}

const writtenBy = async (name: string) =>
  (await suite.database.pool.query<{ written_by: number; n: number }>(`SELECT written_by, count(*)::int AS n FROM ${name}_rows GROUP BY 1 ORDER BY 1`)).rows;
const freshTables = async (name: string) =>
  (await suite.database.pool.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE tablename LIKE $1 ORDER BY 1`, [`${name}\\_rows\\_\\_rb\\_%`])).rows.map(
    (r) => r.tablename,
  );

/** Starts a rebuild that pauses after `pauseAfter` events and cancels it there. */
async function startAndCancel(projection: ReturnType<typeof recording>) {
  const rebuilds = rebuildsOf(projection.projection);
  const job = await rebuilds.start(projection.projection.name);
  await projection.reached;
  const cancelling = rebuilds.cancel(job.jobId);
  projection.resume();
  return { jobId: job.jobId, state: (await cancelling).state };
}

test('a cancelled job is resumed by its own version only: another version rebuilds from the first event, and the old tables go', async (t) => {
  const name = 'rb_versions';
  await setUp(name, 300);
  const first = await startAndCancel(recording(name, 2, 50));
  // The same version resumes it, under its id, from its checkpoint.
  t.is(first.state, 'cancelled');
  const again = await startAndCancel(recording(name, 2, 20));
  t.is(again.jobId, first.jobId, 'code of the same version resumes the job');
  t.is(again.state, 'cancelled');
  // A job that failed earlier, with its fresh tables still there.
  const failedJob = uuid();
  await suite.database.pool.query(`INSERT INTO projection_rebuilds (id, projection, state, suffix, version) VALUES ($1, $2, 'failed', 'feedfacecafe', 2)`, [failedJob, name]);
  await suite.database.pool.query(`CREATE TABLE ${name}_rows__rb_feedfacecafe (LIKE ${name}_rows)`);
  t.is((await freshTables(name)).length, 2);

  // Release Y, version 3, starts.
  const rebuilds = rebuildsOf(recording(name, 3).projection);
  const job = await rebuilds.start(name);
  t.not(job.jobId, first.jobId, 'a job of another version is not resumed');
  t.is((await rebuilds.wait(job.jobId))?.state, 'completed');
  t.deepEqual(await writtenBy(name), [{ written_by: 3, n: 300 }], 'every row written by version 3');
  const replaced = await rebuilds.get(first.jobId);
  t.is(replaced?.state, 'failed');
  t.regex(replaced?.error ?? '', /replaced by a rebuild at version 3/);
  t.deepEqual(await freshTables(name), [], "the replaced and the failed job's fresh tables are dropped");
});

test('the takeover waits at most its lock timeout for a long reader of the live table, then tries again and completes once the reader is done', async (t) => {
  const name = 'rb_locked';
  await setUp(name, 20);
  const holder = new pg.Client({ connectionString: suite.database.url });
  await holder.connect();
  t.teardown(() => holder.end());
  await holder.query('BEGIN');
  await holder.query(`SELECT count(*) FROM ${name}_rows`);

  const rebuilds = rebuildsOf(recording(name, 1).projection);
  t.teardown(() => rebuilds.stop());
  const job = await rebuilds.start(name);
  const renameWaiting = async () =>
    (await suite.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE relation = $1::regclass AND NOT granted`, [`${name}_rows`])).rows[0]?.n ?? 0;
  await until(renameWaiting, (n) => n > 0);

  // A read arriving now queues behind the waiting rename; it gets through once the rename gives up.
  const began = Date.now();
  const read = suite.database.pool.query(`SELECT count(*) FROM ${name}_rows`).then(() => 'read' as const);
  const bound = new Promise<'still queued'>((resolve) => setTimeout(() => resolve('still queued'), 3 * TAKEOVER_LOCK_TIMEOUT_MS).unref());
  t.is(await Promise.race([read, bound]), 'read', 'the read is not held until the long reader ends');
  t.log(`read waited ${Date.now() - began} ms behind the takeover`);
  t.is((await rebuilds.get(job.jobId))?.state, 'running', 'the job is still running, to try again');

  await holder.query('COMMIT');
  t.is((await rebuilds.wait(job.jobId))?.state, 'completed');
  t.deepEqual(await writtenBy(name), [{ written_by: 1, n: 20 }]);
});

test('a start-up rebuild does not begin when another instance took over between reading the version and taking the lock', async (t) => {
  const name = 'rb_raced';
  await setUp(name, 5);
  // Another instance's rebuild to version 2 takes over right after this one read the versions.
  const pool = suite.database.pool;
  const racing = new Proxy(pool, {
    get(target, property) {
      if (property === 'query') {
        return async (text: string, values?: unknown[]) => {
          const result = await target.query(text, values);
          if (text.startsWith('SELECT name, version FROM projection_checkpoints')) {
            await target.query(`UPDATE projection_checkpoints SET version = 2, generation = generation + 1 WHERE name = $1`, [name]);
          }
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const rebuilds = rebuildsOf(recording(name, 2).projection, racing);
  t.teardown(() => rebuilds.stop());
  t.deepEqual(await rebuilds.rebuildOutdated(), [], 'no second rebuild');
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM projection_rebuilds WHERE projection = $1', [name]);
  t.is(rows[0]?.n, 0);
});
