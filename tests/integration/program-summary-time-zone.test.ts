/**
 * The program summary read in a process whose time zone is east of UTC (a host with TZ=Europe/Paris running `npm
 * start`): node-postgres reads a `date` column as local midnight, which there is the previous day in UTC, and no day
 * of the read model matched its interval: every figure came back 0. This file's process runs in Paris time.
 */
process.env.TZ = 'Europe/Paris';
import test from 'ava';
import { programSummary } from '../../projections/read/program.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

test('east of UTC, the summary finds its days: earned, redeemed and outstanding by day and by month', async (t) => {
  t.is(new Date(2026, 0, 1).getTimezoneOffset(), -60, 'the process runs an hour east of UTC');
  await database.pool.query(
    `INSERT INTO program_days (tenant_id, day, earned, redeemed, net) VALUES
       ('t-paris', '2026-03-01', 100, 0, 100), ('t-paris', '2026-03-02', 50, 30, 20), ('t-paris', '2026-04-01', 10, 0, 10)`,
  );
  const byDay = await programSummary(database.pool, 't-paris', { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-02T00:00:00Z'), interval: 'day' });
  t.deepEqual(
    byDay.intervals.map((i) => [i.from, i.earned, i.redeemed]),
    [
      ['2026-03-01', 100, 0],
      ['2026-03-02', 50, 30],
    ],
  );
  const byMonth = await programSummary(database.pool, 't-paris', { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-04-30T00:00:00Z'), interval: 'month' });
  t.deepEqual(
    byMonth.intervals.map((i) => [i.from, i.earned]),
    [
      ['2026-03-01', 150],
      ['2026-04-01', 10],
    ],
  );
  t.is(byMonth.totals.outstandingAtEnd, 130);
});
