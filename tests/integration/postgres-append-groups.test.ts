/**
 * Group commit of one-event appends in the PostgreSQL event store (adapters/eventstore/append-groups.ts): appends
 * issued together (in one turn of the event loop), or while a statement is under way, are written together by one
 * statement, each answered with its own result. Each store here allows one statement in flight, so that which
 * appends share a statement is decided by the calls alone: those issued together go in the first statement, as far
 * as they may (one append per stream, `maxAppends`), the rest in the next ones, in order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import pg from 'pg';
import { v4 as uuid } from 'uuid';
import { NOTIFY_INTERVAL_MS, PostgresEventStore, decodePosition } from '../../adapters/eventstore/postgres.ts';
import { ConcurrencyConflict, type AppendResult, type NewEvent } from '../../domain/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
test.before(async () => (database = await createTestDatabase()));
test.after.always(async () => database?.drop());

const event = (n: number, id = uuid()): NewEvent => ({ id, type: 'Counted', data: { n } });

/**
 * A pool of the test's own. Its idle connections end with the database (dropped `WITH (FORCE)` after the tests): an
 * error then is expected, not the test's (CI once saw "terminating connection due to administrator command" here).
 */
function testPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: database.url, max: 8 });
  pool.on('error', () => undefined);
  return pool;
}

/** A store over a pool of its own whose statements are recorded, one statement in flight, groups of up to `maxAppends`. */
async function countedStore(t: { teardown(fn: () => Promise<void>): void }, maxAppends = 64) {
  const pool = testPool();
  const statements: string[] = [];
  const query = pool.query.bind(pool);
  (pool as { query: unknown }).query = (...args: Parameters<typeof query>) => {
    const [first] = args as unknown as [string | { text: string }];
    statements.push(typeof first === 'string' ? first : first.text);
    return query(...args);
  };
  const store = new PostgresEventStore(pool, { connectionString: database.url }, { appendGroups: { statementsInFlight: 1, maxAppends } });
  t.teardown(async () => {
    await store.close();
    await pool.end();
  });
  return { store, statements, kinds: () => statements.map(kindOf) };
}

const kindOf = (sql: string) => (sql.includes('unnest($1::text[]') ? 'group' : sql.includes('append_events(') ? 'function' : sql.includes('INSERT INTO events') ? 'one' : 'other');
const transactionOf = (result: AppendResult) => decodePosition(result.position).tx;

test('appends to distinct streams issued together go in one statement, each answered with its own result; one alone goes alone', async (t) => {
  const { store, kinds } = await countedStore(t);
  const alone = await store.append(`group-first-${uuid()}`, [event(0)], 'no_stream');
  const streams = Array.from({ length: 10 }, () => `group-${uuid()}`);
  const grouped = await Promise.all(streams.map((stream, i) => store.append(stream, [event(i)], 'no_stream')));
  t.deepEqual(kinds(), ['one', 'group'], 'the first alone, the ten issued together in one statement');
  t.deepEqual(grouped.map((r) => r.nextExpectedRevision), streams.map(() => 0));
  t.is(new Set(grouped.map(transactionOf)).size, 1, 'one transaction for the group');
  t.not(transactionOf(grouped[0]!), transactionOf(alone));
  t.is(new Set(grouped.map((r) => r.position)).size, 10, 'each its own position');
  const read = await store.readStreams(streams);
  t.deepEqual(streams.map((s) => read.get(s)!.map((e) => e.position)), grouped.map((r) => [r.position]), 'each answer is where its event is');
  t.deepEqual(stats(store), { groups: 1, appendsInGroups: 10 });
});

test('appends issued while a statement is under way wait for the next one; a statement writes at most maxAppends', async (t) => {
  const { store, kinds } = await countedStore(t, 3);
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => store.append(`group-max-${uuid()}`, [event(i)], 'no_stream')));
  t.deepEqual(kinds(), ['group', 'group'], 'three, then the two that waited');
  const transactions = results.map(transactionOf);
  t.is(transactions[0], transactions[2]);
  t.is(transactions[3], transactions[4]);
  t.true(transactions[3]! > transactions[0]!, 'the second statement committed after the first');
});

const stats = (store: PostgresEventStore) => store.appendGroupStats();

test('a member whose expected revision does not hold fails alone; the others are written, and a retried member gets its original result', async (t) => {
  const { store, kinds } = await countedStore(t);
  const taken = `group-taken-${uuid()}`;
  await store.append(taken, [event(0)], 'no_stream');
  await store.append(taken, [event(1)], 0);
  const retried = event(7);
  const retriedStream = `group-retried-${uuid()}`;
  const original = await store.append(retriedStream, [retried], 'no_stream');
  const before = kinds().length;

  const [a, stale, again, b] = await Promise.allSettled([
    store.append(`group-a-${uuid()}`, [event(1)], 'no_stream'),
    store.append(taken, [event(2)], 0),
    store.append(retriedStream, [retried], 'no_stream'),
    store.append(`group-b-${uuid()}`, [event(3)], 'no_stream'),
  ]);
  t.deepEqual(kinds().slice(before), ['group', 'function', 'function'], 'one group; the two it did not write settled alone');
  t.is(a.status, 'fulfilled');
  t.is(b.status, 'fulfilled');
  if (a.status !== 'fulfilled' || b.status !== 'fulfilled') return;
  t.is(transactionOf(a.value), transactionOf(b.value), 'written together');
  t.is(stale.status, 'rejected');
  if (stale.status === 'rejected') {
    t.true(stale.reason instanceof ConcurrencyConflict);
    t.regex(String(stale.reason.message), /actual 1/);
  }
  t.deepEqual(again.status === 'fulfilled' ? again.value : again.reason, original, 'the retry is answered with the original result');
  t.is((await store.readStream(taken)).length, 2, 'nothing written for the conflict');
  t.is((await store.readStream(retriedStream)).length, 1, 'nothing written twice');
});

test('appends to one stream in one window are written in the order they came, never in one statement', async (t) => {
  const { store, kinds } = await countedStore(t);
  const stream = `group-same-${uuid()}`;
  const other = `group-other-${uuid()}`;
  const events = [event(0), event(1), event(2)];
  const results = await Promise.allSettled([
    store.append(stream, [events[0]!], 'no_stream'),
    store.append(stream, [events[1]!], 0),
    store.append(other, [event(5)], 'no_stream'),
    store.append(stream, [events[2]!], 1),
    store.append(stream, [event(3)], 1),
  ]);
  t.deepEqual(kinds(), ['group', 'one', 'one', 'one', 'function'], 'the stream\'s first append grouped with the other stream, then one at a time');
  t.deepEqual(results.slice(0, 4).map((r) => (r.status === 'fulfilled' ? r.value.nextExpectedRevision : r.reason)), [0, 1, 0, 2]);
  const last = results[4]!;
  t.true(last.status === 'rejected' && last.reason instanceof ConcurrencyConflict, 'a second append at revision 1 conflicts, as it would alone');
  t.deepEqual((await store.readStream(stream)).map((e) => e.id), events.map((e) => e.id));
});

test('an error in the group statement fails only the append it belongs to: the others are written again alone', async (t) => {
  const { store, kinds } = await countedStore(t);
  const reused = event(0);
  await store.append(`group-owner-${uuid()}`, [reused], 'no_stream');
  const before = kinds().length;
  const streams = [`group-x-${uuid()}`, `group-bad-${uuid()}`, `group-y-${uuid()}`];
  const [x, bad, y] = await Promise.allSettled([
    store.append(streams[0]!, [event(1)], 'no_stream'),
    // The same event id in another stream: the unique event id refuses it, and with it the whole statement.
    store.append(streams[1]!, [reused], 'no_stream'),
    store.append(streams[2]!, [event(2)], 'no_stream'),
  ]);
  t.is(kinds().slice(before).filter((k) => k === 'group').length, 1, 'the group was tried');
  t.is(x.status, 'fulfilled');
  t.is(y.status, 'fulfilled');
  t.is(bad.status, 'rejected');
  if (bad.status === 'rejected') t.regex(String(bad.reason.message), /events_event_id_unique|duplicate key/);
  const read = await store.readStreams(streams);
  t.deepEqual(streams.map((s) => read.get(s)!.length), [1, 0, 1]);
  if (x.status === 'fulfilled' && y.status === 'fulfilled') t.not(transactionOf(x.value), transactionOf(y.value), 'each written again alone');
});

test('group commit off: each append is its own statement, as before, also when issued together', async (t) => {
  const pool = testPool();
  const store = new PostgresEventStore(pool, { connectionString: database.url }, { appendGroups: false });
  t.teardown(async () => {
    await store.close();
    await pool.end();
  });
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.append(`ungrouped-${uuid()}`, [event(i)], 'no_stream')));
  t.is(new Set(results.map(transactionOf)).size, 6);
  t.deepEqual(stats(store), { groups: 0, appendsInGroups: 0 });
});

test('a store closed before its scheduled notification opens no connection for it', async (t) => {
  const pool = testPool();
  const name = `closed-store-${uuid().slice(0, 8)}`;
  // The notifier connects with the store's own connection settings: named so that pg_stat_activity shows it.
  const store = new PostgresEventStore(pool, { connectionString: `${database.url}${database.url.includes('?') ? '&' : '?'}application_name=${name}` });
  await store.append(`closed-${uuid()}`, [event(0)], 'no_stream');
  await store.close();
  await pool.end();
  // What is asserted is an absence once the notification was due (NOTIFY_INTERVAL_MS after the append): nothing
  // signals that, so the test waits well past it (the store opened the connection within it before close cancelled it).
  await sleep(NOTIFY_INTERVAL_MS * 20);
  const { rows } = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [name]);
  t.is(rows[0]!.n, 0);
});
