/**
 * What the runner hands a projection: only the event types it declares (a filtered subscription, shown as events
 * read vs applied), read-your-writes for positions of events it does not handle, reactors held back until the
 * read models they read have caught up, and a raised projection version rebuilt at start-up beside the live one.
 */
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { Position } from '../../domain/ports/event-store.ts';
import type { FeedReader, Projection, Reactor } from '../../projections/projection.ts';
import { ProjectionRebuilds } from '../../projections/rebuild.ts';
import { ProjectionRunner } from '../../projections/runner.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { numberOf } from '../support/numbered-events.ts';

const silent = pino({ level: 'silent' });
let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

/** Sums `n` of its own type per stream; version `version` doubles nothing, it only says which code wrote the rows. */
function summing(name: string, type: string, version = 1): Projection {
  return {
    name,
    version,
    tables: [`${name}_sums`],
    eventTypes: [type],
    async apply(events, { db, table }) {
      for (const event of events) {
        if (event.type !== type) continue;
        const n = numberOf(event);
        await db.query(
          `INSERT INTO ${table(`${name}_sums`)} (stream, total) VALUES ($1, $2) ON CONFLICT (stream) DO UPDATE SET total = ${table(`${name}_sums`)}.total + $2`,
          [event.stream, n],
        );
      }
    },
  };
}

async function createSumTable(name: string) {
  await database.pool.query(`CREATE TABLE ${name}_sums (stream text PRIMARY KEY, total bigint NOT NULL)`);
}

async function append(stream: string, type: string, numbers: number[]): Promise<Position> {
  return (await store.append(stream, numbers.map((n) => ({ id: uuid(), type, data: { n } })), 'any')).position;
}

const total = async (name: string) => Number((await database.pool.query<{ total: string | null }>(`SELECT sum(total)::text AS total FROM ${name}_sums`)).rows[0]?.total ?? 0);

function runnerFor(t: ExecutionContext, readers: FeedReader[]) {
  const runner = new ProjectionRunner(database.pool, { connectionString: database.url }, store, readers, silent, { standbyRetryMs: 100, coverageEveryMs: 100 });
  t.teardown(() => runner.stop());
  return runner;
}

test('a projection reads only the event types it declares, and a write of another type is read-your-writes at once', async (t) => {
  const name = 'f_sums';
  const type = `Summed_${uuid().slice(0, 8)}`;
  await createSumTable(name);
  const runner = runnerFor(t, [summing(name, type)]);
  runner.start();
  const own = await append(`${name}-a`, type, [1, 2, 3]);
  for (let i = 0; i < 5; i++) await append(`${name}-noise`, `Noise_${uuid().slice(0, 8)}`, [100, 100, 100, 100]);
  const noise = await append(`${name}-noise`, 'Noise', [100]);
  t.true(await runner.waitForPosition(own, 10_000));
  t.true(await runner.waitForPosition(noise, 2_000), 'nothing of its types lies between its checkpoint and the noise: it is as good as there');
  t.is(await total(name), 6);
  const [status] = runner.status();
  t.like(status, { name, kind: 'projection', eventsRead: 3, eventsApplied: 3 }, '21 other events were never read');
  t.true(store.isAfter(noise, status!.position!), 'its checkpoint stays at its own last event');
  const covered = await eventually(
    async () => runner.status()[0]?.upTo,
    (upTo) => upTo !== undefined && !store.isAfter(noise, upTo),
  );
  t.false(covered === undefined || store.isAfter(noise, covered), 'its upTo (gauges, admin status) moves on to the head');
  const later = await append(`${name}-a`, type, [4]);
  t.true(await runner.waitForPosition(later, 10_000));
  t.is(await total(name), 10);
});

test('a reactor is handed an event only once the read model it reads has applied it', async (t) => {
  const name = 'f_model';
  const type = `Fact_${uuid().slice(0, 8)}`;
  await createSumTable(name);
  const seen: number[] = [];
  let gate: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (gate = resolve));
  const slow: Projection = { ...summing(name, type), apply: async (events, context) => (await opened, summing(name, type).apply(events, context)) };
  const reactor: Reactor = {
    name: 'f_reactor',
    eventTypes: [type],
    reads: [name],
    async handle(_events, { db }) {
      seen.push(Number((await db.query<{ total: string }>(`SELECT COALESCE(sum(total), 0)::text AS total FROM ${name}_sums`)).rows[0]?.total));
    },
  };
  const runner = runnerFor(t, [slow, reactor]);
  runner.start();
  const position = await append(`${name}-a`, type, [5]);
  t.false(await runner.waitForPosition(position, 500, ['f_reactor']), 'held back while the read model has not applied the event');
  t.deepEqual(seen, []);
  gate();
  t.true(await runner.waitForPosition(position, 10_000));
  t.deepEqual(seen, [5], 'the reactor saw the read model with its event applied');
  const rebuilds = new ProjectionRebuilds(database.pool, { connectionString: database.url }, store, [slow, reactor], silent, uuid);
  await t.throwsAsync(rebuilds.start('f_reactor'), { message: /reactor/ });
  t.deepEqual(rebuilds.names(), [name]);
});

test('raising a projection version rebuilds it at start-up beside the live one, and records the new version', async (t) => {
  const name = 'f_versioned';
  const type = `Versioned_${uuid().slice(0, 8)}`;
  await createSumTable(name);
  const v1 = runnerFor(t, [summing(name, type, 1)]);
  v1.start();
  const last = await append(`${name}-a`, type, [1, 2, 3, 4]);
  t.true(await v1.waitForPosition(last, 10_000));
  await v1.stop();
  const versionOf = async () => (await database.pool.query<{ version: number }>('SELECT version FROM projection_checkpoints WHERE name = $1', [name])).rows[0]?.version;
  t.is(await versionOf(), 1);

  const unchanged = new ProjectionRebuilds(database.pool, { connectionString: database.url }, store, [summing(name, type, 1)], silent, uuid);
  t.deepEqual(await unchanged.rebuildOutdated(), [], 'the same version rebuilds nothing');

  const v2 = summing(name, type, 2);
  const runner = runnerFor(t, [v2]);
  runner.start();
  const rebuilds = new ProjectionRebuilds(database.pool, { connectionString: database.url }, store, [v2], silent, uuid);
  t.teardown(() => rebuilds.stop());
  const [job] = await rebuilds.rebuildOutdated();
  t.is(job?.projection, name);
  const done = await eventually(
    () => rebuilds.get(job!.jobId),
    (j) => j?.state !== 'running',
  );
  t.is(done?.state, 'completed');
  t.is(await versionOf(), 2);
  t.is(await total(name), 10, 'the rebuilt tables hold the same sums');
  t.deepEqual(await rebuilds.rebuildOutdated(), [], 'once rebuilt, a restart rebuilds nothing');
});
