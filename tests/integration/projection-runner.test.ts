/**
 * The projection runner against real PostgreSQL: exactly-once application across restarts and dropped
 * connections, one owner across runners, and a visible stop on a failing event.
 */
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { EventStoreUnavailable } from '../../domain/ports/event-store.ts';
import { StreamContended } from '../../domain/shared/errors.ts';
import type { Projection } from '../../projections/projection.ts';
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

/** Counts events per stream; not idempotent on purpose, so a double application would show. */
function counter(name: string, failOn?: (n: number) => boolean): Projection {
  return {
    name,
    tables: [`${name}_counts`],
    version: 1,
    eventTypes: ['Counted'],
    async apply(events, { db, table }) {
      for (const event of events) {
        if (event.type !== 'Counted' || !event.stream.startsWith(`${name}-`)) continue;
        const n = numberOf(event);
        if (failOn?.(n)) throw new Error(`cannot count ${n}`);
        await db.query(
          `INSERT INTO ${table(`${name}_counts`)} (stream, count, total) VALUES ($1, 1, $2)
           ON CONFLICT (stream) DO UPDATE SET count = ${table(`${name}_counts`)}.count + 1, total = ${table(`${name}_counts`)}.total + $2`,
          [event.stream, n],
        );
      }
    },
  };
}

async function createCounterTable(name: string) {
  await database.pool.query(`CREATE TABLE ${name}_counts (stream text PRIMARY KEY, count int NOT NULL, total bigint NOT NULL)`);
}

async function appendCounted(stream: string, numbers: number[]) {
  const result = await store.append(
    stream,
    numbers.map((n) => ({ id: uuid(), type: 'Counted', data: { n } })),
    'any',
  );
  return result.position;
}

async function totals(name: string) {
  const { rows } = await database.pool.query<{ count: number; total: string }>(`SELECT sum(count)::int AS count, sum(total)::text AS total FROM ${name}_counts`);
  return { count: rows[0]?.count ?? 0, total: Number(rows[0]?.total ?? 0) };
}

function runnerFor(t: ExecutionContext, projections: Projection[], options = {}) {
  const runner = new ProjectionRunner(database.pool, { connectionString: database.url }, store, projections, silent, options);
  t.teardown(() => runner.stop());
  return runner;
}

/** A counter projection `name` on a started runner, with 1, 2 and 3 appended to `<name>-a` and applied. */
async function countingOneTwoThree(t: ExecutionContext, name: string) {
  await createCounterTable(name);
  const runner = runnerFor(t, [counter(name)]);
  runner.start();
  t.true(await runner.waitForPosition(await appendCounted(`${name}-a`, [1, 2, 3]), 10_000));
  t.deepEqual(await totals(name), { count: 3, total: 6 });
  return runner;
}

test('applies every event once, and resumes from its checkpoint after a restart', async (t) => {
  const name = 'p_restart';
  const first = await countingOneTwoThree(t, name);
  await first.stop();

  const last = await appendCounted(`${name}-a`, [4, 5]);
  const second = runnerFor(t, [counter(name)]);
  second.start();
  t.true(await second.waitForPosition(last, 10_000));
  t.deepEqual(await totals(name), { count: 5, total: 15 });
  const [status] = second.status();
  t.is(status?.state, 'running');
  t.false(store.isAfter(last, status!.position!), 'the checkpoint is at or past the last event');
  await second.stop();
});

test('a checkpoint moved under a running projection (a takeover) is seen by its next batch, which resumes from the stored one', async (t) => {
  const name = 'p_moved';
  const runner = await countingOneTwoThree(t, name);
  // What a takeover does: a fresh table, and the checkpoint where that table stands (nothing applied).
  await database.pool.query(`TRUNCATE ${name}_counts`);
  await database.pool.query(`UPDATE projection_checkpoints SET position = NULL WHERE name = $1`, [name]);
  t.true(await runner.waitForPosition(await appendCounted(`${name}-a`, [4]), 10_000));
  t.deepEqual(await totals(name), { count: 4, total: 10 }, 'every event applied again from the stored checkpoint, not only the new one');
  await runner.stop();
});

test.serial('two runners side by side: one owns the projection, the other stands by and takes over', async (t) => {
  const name = 'p_owner';
  await createCounterTable(name);
  const a = runnerFor(t, [counter(name)], { standbyRetryMs: 100 });
  const b = runnerFor(t, [counter(name)], { standbyRetryMs: 100 });
  a.start();
  let last = await appendCounted(`${name}-x`, [1]);
  t.true(await a.waitForPosition(last, 10_000));
  b.start();
  for (let i = 0; i < 20; i++) last = await appendCounted(`${name}-x`, [1]);
  t.true(await a.waitForPosition(last, 10_000));
  const states = [a.status()[0]?.state, b.status()[0]?.state].sort();
  t.deepEqual(states, ['running', 'standby']);
  // The standby asks for the lock again every 100 ms on the connection it keeps: the same two sessions throughout,
  // one of them seen asking several times (its query_start moves on; a new session per retry would never show that).
  const asked = new Map<number, Set<string>>();
  const lockSessions = async () => {
    const { rows } = await database.pool.query<{ pid: number; started: string }>(
      `SELECT pid, query_start::text AS started FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE 'SELECT pg_try_advisory_lock(hashtextextended(''tally.projection:''%' ORDER BY pid`,
    );
    for (const r of rows) asked.set(r.pid, (asked.get(r.pid) ?? new Set()).add(r.started));
    return rows.map((r) => r.pid);
  };
  const before = await lockSessions();
  t.is(before.length, 2, 'the owner and the standby each hold a connection');
  const after = await eventually(lockSessions, () => [...asked.values()].some((times) => times.size >= 3), { timeoutMs: 5_000, intervalMs: 20 });
  t.true([...asked.values()].some((times) => times.size >= 3), 'the standby asked again on its session');
  t.deepEqual(after, before, 'no new session per retry');
  await a.stop();
  last = await appendCounted(`${name}-x`, [1]);
  t.true(await b.waitForPosition(last, 10_000));
  t.deepEqual(await totals(name), { count: 22, total: 22 });
  t.is(b.status()[0]?.state, 'running');
  await b.stop();
});

/** A TCP relay to PostgreSQL that can go silent for the connections it carries (a failover, a dropped NAT entry). */
async function silenceableRelay(t: ExecutionContext) {
  const target = new URL(database.url);
  const carried: { silent: boolean }[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    const link = { silent: false };
    carried.push(link);
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.push(client, upstream);
    client.on('data', (chunk) => void (link.silent || upstream.write(chunk)));
    upstream.on('data', (chunk) => void (link.silent || client.write(chunk)));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const url = new URL(database.url);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return { url: url.toString(), silenceAll: () => carried.forEach((link) => (link.silent = true)) };
}

test.serial('a standby whose kept connection goes silent gives it up within the lock timeout and takes over', async (t) => {
  const name = 'p_silent';
  await createCounterTable(name);
  const relay = await silenceableRelay(t);
  const a = runnerFor(t, [counter(name)], { standbyRetryMs: 50 });
  const b = new ProjectionRunner(database.pool, { connectionString: relay.url }, store, [counter(name)], silent, { standbyRetryMs: 50, lockQueryTimeoutMs: 300 });
  a.start();
  let last = await appendCounted(`${name}-x`, [1]);
  t.true(await a.waitForPosition(last, 10_000));
  b.start();
  await eventually(async () => b.status()[0]?.state, (state) => state === 'standby', { timeoutMs: 5_000, intervalMs: 20 });
  relay.silenceAll();
  await a.stop();
  last = await appendCounted(`${name}-x`, [1]);
  t.true(await b.waitForPosition(last, 10_000), 'the standby took over through a new connection');
  t.is(b.status()[0]?.state, 'running');
  t.deepEqual(await totals(name), { count: 2, total: 2 });
  await b.stop();
});

test('a projection that throws stops at that event, with the position and error recorded', async (t) => {
  const name = 'p_fail';
  await createCounterTable(name);
  const runner = runnerFor(t, [counter(name, (n) => n === 13)]);
  const before = await appendCounted(`${name}-a`, [1, 2]);
  const failing = await store.append(`${name}-b`, [{ id: uuid(), type: 'Counted', data: { n: 13 } }], 'any');
  await appendCounted(`${name}-a`, [3]);
  runner.start();
  t.false(await runner.waitForPosition(failing.position, 3000));
  // Already there (it stopped after them): the bound only keeps a broken runner from hanging the test.
  t.true(await runner.waitForPosition(before, 10_000), 'the events before the failure are applied');
  const [status] = runner.status();
  t.is(status?.state, 'failed');
  t.is(status?.errorPosition, failing.position);
  t.regex(status?.lastError ?? '', /cannot count 13/);
  t.false(runner.healthy());
  const { rows } = await database.pool.query('SELECT status, error_position, last_error FROM projection_checkpoints WHERE name = $1', [name]);
  t.like(rows[0], { status: 'failed', error_position: failing.position });
  t.deepEqual(await totals(name), { count: 2, total: 3 }, 'the event after the failure is not applied either');
  await runner.stop();

  const restarted = runnerFor(t, [counter(name)]);
  restarted.start();
  t.false(await restarted.waitForPosition(failing.position, 500), 'a failed projection stays stopped after a restart');
  t.is(restarted.status()[0]?.state, 'failed');
  await restarted.stop();
});

for (const [why, failure] of [
  ['stays contended', () => new StreamContended(5)],
  ['meets the event store unavailable (a leader election, a store out of connections)', () => new EventStoreUnavailable('KurrentDB event store unavailable')],
] as const) {
  test(`a reactor whose command ${why} is retried from its checkpoint, not failed: every event is applied once`, async (t) => {
    const name = `p_retried_${why.split(' ')[1]}`;
    await createCounterTable(name);
    let failing = 3;
    const base = counter(name);
    const flaky: Projection = {
      ...base,
      async apply(events, context) {
        if (failing > 0) {
          failing--;
          throw failure();
        }
        return base.apply(events, context);
      },
    };
    const runner = runnerFor(t, [flaky], { standbyRetryMs: 50 });
    const last = await appendCounted(`${name}-a`, [1, 2, 3]);
    runner.start();
    // Whether it gets there, not how fast: a loaded machine (eight test files at once) took more than 10 s.
    t.true(await runner.waitForPosition(last, 30_000));
    t.is(failing, 0, 'it failed three times');
    t.deepEqual(await totals(name), { count: 3, total: 6 });
    t.is(runner.status()[0]?.state, 'running');
    await runner.stop();
  });
}

test('a batch the projection writes nothing for commits nothing; its checkpoint is written once the feed is idle, and exactly once still holds', async (t) => {
  const name = 'p_lazy';
  await createCounterTable(name);
  const checkpoint = async () =>
    (await database.pool.query<{ position: string | null; events_applied: string }>('SELECT position, events_applied FROM projection_checkpoints WHERE name = $1', [name])).rows[0];
  // Every write of the checkpoint row, as PostgreSQL sees it.
  await database.pool.query(`CREATE TABLE ${name}_writes (position text)`);
  await database.pool.query(`CREATE FUNCTION ${name}_log() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.name = '${name}' THEN INSERT INTO ${name}_writes VALUES (NEW.position); END IF; RETURN NEW; END $$`);
  await database.pool.query(`CREATE TRIGGER ${name}_log AFTER UPDATE ON projection_checkpoints FOR EACH ROW EXECUTE FUNCTION ${name}_log()`);
  const writes = async () => Number((await database.pool.query(`SELECT count(*) AS n FROM ${name}_writes`)).rows[0].n);

  // Long enough that nothing is written while the test looks (a real service writes after 100 ms idle, 1 s at most).
  const runner = runnerFor(t, [counter(name)], { checkpointIdleMs: 3000, checkpointEveryMs: 60_000 });
  runner.start();
  let last = await appendCounted(`${name}-mine`, [1]);
  t.true(await runner.waitForPosition(last, 10_000));
  // That event was written: its batch committed with the checkpoint before the runner reported the position.
  // Events of other streams, one append at a time as traffic comes: nothing to count, so no batch transaction.
  const before = await writes();
  for (let i = 0; i < 60; i++) last = await appendCounted(`elsewhere-${name}-${i}`, [100]);
  t.true(await runner.waitForPosition(last, 10_000), 'read-your-writes sees the checkpoint advanced in memory');
  t.is((await writes()) - before, 0, 'no checkpoint write, so no transaction, for batches with nothing to write');
  // Other tests append to the same database meanwhile: the row must reach `last`, it may go further.
  const reached = (position: string | null | undefined) => Boolean(position) && !store.isAfter(last, position as typeof last);
  const row = await eventually(checkpoint, (r) => reached(r?.position), { timeoutMs: 10_000, intervalMs: 50 });
  t.true(reached(row?.position), 'written once the feed went idle');
  t.true((await writes()) - before <= 2, `then written once (${(await writes()) - before})`);

  // A batch that writes after lazily skipped ones commits against the checkpoint last written: no conflict, no loss.
  await appendCounted(`elsewhere-${name}-x`, [100]);
  last = await appendCounted(`${name}-mine`, [2, 3]);
  t.true(await runner.waitForPosition(last, 10_000));
  t.deepEqual(await totals(name), { count: 3, total: 6 });
  await runner.stop();

  // Restarted, it resumes from the row: nothing counted twice.
  last = await appendCounted(`${name}-mine`, [4]);
  const again = runnerFor(t, [counter(name)]);
  again.start();
  t.true(await again.waitForPosition(last, 10_000));
  t.deepEqual(await totals(name), { count: 4, total: 10 });
  t.is(Number((await checkpoint())?.events_applied) >= 65, true, 'events_applied counts the skipped events too');
});
