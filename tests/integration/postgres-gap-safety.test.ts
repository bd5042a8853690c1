/**
 * The sequence-gap bug: a transaction takes a lower position, later appends commit first, and a subscriber
 * that already moved past them never sees the late one. The PostgreSQL adapter must hold the later events
 * back until the earlier transaction ends, then deliver everything once, in order.
 */
import test, { type ExecutionContext } from 'ava';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';
import { take } from './event-store.contract.ts';
import { appendInOpenTransaction, numberedEvent } from '../support/numbered-events.ts';
import { eventually, until } from '../support/eventually.ts';

let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

const event = numberedEvent;

test('a subscriber never skips an event whose transaction commits after later events became visible', async (t) => {
  const prefix = `gap-${uuid().slice(0, 8)}`;
  const subscription = store.subscribeToAll({ filter: { streamPrefixes: [prefix] } });
  try {
    await store.append(`${prefix}-a`, [event(0)], 'no_stream');
    t.deepEqual((await take(subscription, 1)).events.map((e) => e.data), [{ n: 0 }]);

    // An append that takes its transaction id (and a position) first, but commits last.
    const slow = await database.pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query('SELECT pg_current_xact_id()');
      const late = event(1);
      await appendInOpenTransaction(slow, `${prefix}-slow`, late);

      for (let n = 2; n <= 4; n++) await store.append(`${prefix}-fast-${n}`, [event(n)], 'no_stream');
      // The later events are committed and visible to plain SQL...
      const visible = await database.pool.query(`SELECT count(*)::int AS n FROM events WHERE stream_name LIKE $1`, [`${prefix}-fast%`]);
      t.is(visible.rows[0].n, 3);
      // ...but the subscriber must not run ahead of the open transaction.
      await t.throwsAsync(take(subscription, 1, 500), { message: /gave 0\/1 events/ });

      await slow.query('COMMIT');
    } finally {
      slow.release();
    }

    const after = await take(subscription, 4);
    t.deepEqual(after.events.map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    await store.append(`${prefix}-a`, [event(5)], 0);
    t.deepEqual((await take(subscription, 1)).events.map((e) => e.data), [{ n: 5 }], 'nothing is repeated');
  } finally {
    await subscription.stop();
  }
});

/**
 * A subscriber on a store that polls only once a minute, caught up and asleep, and a second store standing for another
 * process: its appends reach the subscriber only through NOTIFY. `between` runs after the catch-up; then an append
 * by the other process must be delivered long before the poll would.
 */
async function wokenByNotify(t: ExecutionContext, prefix: string, between: () => Promise<void> = async () => undefined) {
  const other = new PostgresEventStore(database.pool, { connectionString: database.url });
  const slowPolling = new PostgresEventStore(database.pool, { connectionString: database.url }, { pollIntervalMs: 60_000 });
  const subscription = slowPolling.subscribeToAll({ filter: { streamPrefixes: [prefix] } });
  try {
    const iterator = subscription[Symbol.asyncIterator]();
    t.is((await iterator.next()).value?.kind, 'caught-up');
    // Asked for its next item, the caught-up subscription joins the store's shared reader, which looks once and sleeps:
    // the other process appends once that first look is over, so only NOTIFY can bring its event before the poll.
    const pending = iterator.next();
    await until(async () => slowPolling.sharedFeed.stats.pages, (pages) => pages >= 1, { timeoutMs: 20_000, intervalMs: 20 });
    await between();
    const started = Date.now();
    await other.append(`${prefix}-x`, [event(1)], 'no_stream');
    const next = await pending;
    t.is(next.value?.kind, 'event');
    t.true(Date.now() - started < 10_000, 'delivered long before the 60 s poll');
  } finally {
    await subscription.stop();
    await slowPolling.close();
    await other.close();
  }
}

test.serial('subscribers are woken by NOTIFY from another process, not only by polling', async (t) => {
  await wokenByNotify(t, `notify-${uuid().slice(0, 8)}`);
});

// Serial: it cuts every LISTEN connection of the database, other tests' too.
test.serial('a listener connection that is cut reconnects by itself: NOTIFY wakes subscribers again without a new subscription', async (t) => {
  const listeners = async () =>
    (await database.pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)).rows;
  await wokenByNotify(t, `relisten-${uuid().slice(0, 8)}`, async () => {
    const before = await listeners();
    t.true(before.length > 0);
    // What a database restart or a network cut does to the listener: its backend goes away.
    await database.pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before.map((r) => r.pid)]);
    const isNew = (r: { pid: number }) => !before.some((b) => b.pid === r.pid);
    const back = await eventually(listeners, (rows) => rows.some(isNew), { timeoutMs: 15_000 });
    t.true(back.some(isNew), 'a new LISTEN connection came up within 15 s');
  });
});

test('the global order compares transaction ids as numbers, also across a power of ten (999 < 1000)', async (t) => {
  const prefix = `digits-${uuid().slice(0, 8)}`;
  await store.append(`${prefix}-s`, [event(1)], 'no_stream');
  const current = BigInt((await database.pool.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x);
  const digits = current.toString().length;
  const boundary = 10n ** BigInt(digits);
  // Burn transaction ids until the next append's id has one more digit than the first one's.
  const toBurn = Number(boundary - current);
  // A young cluster (the embedded one) crosses the boundary in seconds; an old shared server may be too far from it.
  if (toBurn <= 200_000) {
    await database.pool.query(`DO $$ BEGIN FOR i IN 1..${toBurn + 1} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`);
  } else {
    t.log(`transaction ids are ${toBurn} away from ${boundary}: ordering checked without crossing a digit boundary`);
  }
  await store.append(`${prefix}-s`, [event(2)], 0);
  const all = await store.readAll({ filter: { streamPrefixes: [prefix] } });
  t.deepEqual(all.map((e) => e.data), [{ n: 1 }, { n: 2 }]);
  const backwards = await store.readAll({ direction: 'backwards', filter: { streamPrefixes: [prefix] } });
  t.deepEqual(backwards.map((e) => e.data), [{ n: 2 }, { n: 1 }]);
});
