/**
 * One poll run at a time (adapters/postgres/poll-run-lock.ts) against real PostgreSQL: a second run while one holds
 * the lock runs nothing, and the lock's connection lost mid-run (a restart, `pg_terminate_backend`) is reported and
 * does not end the process.
 */
import test from 'ava';
import { exclusivePollRun } from '../../adapters/postgres/poll-run-lock.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';

let database: TestDatabase;
test.before(async () => (database = await createTestDatabase()));
test.after.always(async () => database?.drop());

const holderPid = async () =>
  (
    await database.pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_try_advisory_lock(hashtextextended(''tally.square-poll''%'`,
    )
  ).rows[0]?.pid;

test.serial('a run while another holds the lock runs nothing', async (t) => {
  let release!: () => void;
  const first = exclusivePollRun(database.pool, () => new Promise<string>((resolve) => (release = () => resolve('first'))));
  await eventually(holderPid, (pid) => pid !== undefined, { timeoutMs: 5_000, intervalMs: 20 });
  let ran = false;
  t.deepEqual(await exclusivePollRun(database.pool, async () => (ran = true)), { ran: false });
  t.false(ran);
  release();
  t.deepEqual(await first, { ran: true, result: 'first' });
  t.like(await exclusivePollRun(database.pool, async () => 'next'), { ran: true, result: 'next' });
});

test.serial('the lock’s connection lost mid-run is reported, the run ends, and the next run takes the lock', async (t) => {
  const lost: Error[] = [];
  let release!: () => void;
  const run = exclusivePollRun(database.pool, () => new Promise<string>((resolve) => (release = () => resolve('done'))), (error) => lost.push(error));
  const pid = await eventually(holderPid, (p) => p !== undefined, { timeoutMs: 5_000, intervalMs: 20 });
  await database.pool.query('SELECT pg_terminate_backend($1)', [pid]);
  await eventually(async () => lost.length, (n) => n === 1, { timeoutMs: 5_000, intervalMs: 20 });
  release();
  t.deepEqual(await run, { ran: true, result: 'done' }, 'the run went on to its end');
  t.like(await exclusivePollRun(database.pool, async () => 'after'), { ran: true, result: 'after' });
});
