/**
 * The projection runner loses its connections again and again while events keep coming: every event is
 * still applied exactly once. Its own file, so the connection killing touches no other test.
 */
import test from 'ava';
import pg from 'pg';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { Position } from '../../domain/ports/event-store.ts';
import { ProjectionRunner } from '../../projections/runner.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { numberOf } from '../support/numbered-events.ts';

let database: TestDatabase;

test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

test('connections killed while events keep coming: nothing lost, nothing applied twice', async (t) => {
  await database.pool.query('CREATE TABLE crash_counts (stream text PRIMARY KEY, count int NOT NULL, total bigint NOT NULL)');
  const writer = new PostgresEventStore(database.pool, { connectionString: database.url });
  // Everything the runner uses connects as 'victim', so only its connections are killed.
  const victimConfig = { connectionString: database.url, application_name: 'victim' };
  const victimPool = new pg.Pool({ ...victimConfig, max: 5 });
  victimPool.on('error', () => undefined);
  const victimStore = new PostgresEventStore(victimPool, victimConfig, { pollIntervalMs: 100 });
  const runner = new ProjectionRunner(
    victimPool,
    victimConfig,
    victimStore,
    [
      {
        name: 'crash',
        tables: ['crash_counts'],
        version: 1,
        eventTypes: ['Counted'],
        async apply(events, { db, table }) {
          for (const event of events) {
            if (event.type !== 'Counted') continue;
            await db.query(
              `INSERT INTO ${table('crash_counts')} (stream, count, total) VALUES ($1, 1, $2)
               ON CONFLICT (stream) DO UPDATE SET count = crash_counts.count + 1, total = crash_counts.total + $2`,
              [event.stream, numberOf(event)],
            );
          }
        },
      },
    ],
    pino({ level: 'silent' }),
    { standbyRetryMs: 50, maxBatch: 7 },
  );
  runner.start();
  // Kills land at varied moments (mid-batch, while idle, while reconnecting); the seed makes a failure reproducible.
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);
  t.log(`seed ${seed} (rerun with CRASH_SEED=${seed})`);
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let totalKilled = 0;
  let expectedTotal = 0;
  let last: Position | undefined;
  const kills = 40;
  for (let round = 0; round < kills; round++) {
    const numbers = [round + 1, round + 2, round + 3];
    expectedTotal += numbers.reduce((a, b) => a + b, 0);
    last = (await writer.append(`crash-${round % 4}`, numbers.map((n) => ({ id: uuid(), type: 'Counted', data: { n } })), 'any')).position;
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 40)));
    const killed = await database.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'`);
    totalKilled += killed.rowCount ?? 0;
    if (round % 5 === 4) t.true(await runner.waitForPosition(last, 30_000));
  }
  t.true(await runner.waitForPosition(last!, 30_000));
  const { rows } = await database.pool.query<{ count: number; total: string }>('SELECT sum(count)::int AS count, sum(total)::text AS total FROM crash_counts');
  t.log(`${totalKilled} runner connections killed in ${kills} rounds`);
  t.true(totalKilled >= 20, 'the runner really lost its connections, again and again');
  t.deepEqual({ count: rows[0]?.count, total: Number(rows[0]?.total) }, { count: kills * 3, total: expectedTotal });
  await runner.stop();
  await victimStore.close();
  await victimPool.end();
  await writer.close();
});
