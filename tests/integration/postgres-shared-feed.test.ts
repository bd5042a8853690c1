/**
 * The PostgreSQL store's subscriptions share one reader of the feed (adapters/eventstore/postgres-feed.ts): each
 * catches up by itself, then joins the reader, which scans each event once and hands every subscription the events
 * its filter selects. Serial, each test on its own store: the reader's counts are the store's.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { NewEvent, RecordedEvent, Subscription, SubscriptionItem } from '../../domain/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually, until } from '../support/eventually.ts';
import { numberOf, appendInOpenTransaction } from '../support/numbered-events.ts';

let database: TestDatabase;
test.before(async () => (database = await createTestDatabase()));
test.after.always(async () => database?.drop());

const event = (type: string, n: number): NewEvent => ({ id: uuid(), type, data: { n } });
const numbers = (events: readonly RecordedEvent[]) => events.map(numberOf);
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

/** A subscription read without pause in the background, from `iterator` (with a `next` already in flight, if any). */
function consume(sub: Subscription, iterator = sub[Symbol.asyncIterator](), first?: Promise<IteratorResult<SubscriptionItem>>) {
  const seen = { events: [] as RecordedEvent[], caughtUp: false, error: undefined as unknown };
  const done = (async () => {
    try {
      for (let next = await (first ?? iterator.next()); !next.done; next = await iterator.next()) {
        if (next.value.kind === 'caught-up') seen.caughtUp = true;
        else seen.events.push(next.value.event);
      }
    } catch (error) {
      seen.error = error;
    }
  })();
  return { seen, done };
}

/** Reads a subscription until it says it has caught up: the next `next` joins it to the reader. */
async function untilCaughtUp(iterator: AsyncIterator<SubscriptionItem>): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for (;;) {
    const next = await iterator.next();
    if (next.done) throw new Error('the subscription ended before catching up');
    if (next.value.kind === 'caught-up') return events;
    events.push(next.value.event);
  }
}

const attached = (store: PostgresEventStore, count: number) => eventually(async () => store.sharedFeed.attached, (n) => n === count, { timeoutMs: 20_000, intervalMs: 20 });
/** Waits for `count` events; a subscription that failed meanwhile fails the test with its own error, at once. */
async function received(seen: { events: readonly RecordedEvent[]; error: unknown }, count: number) {
  const reading = await eventually(async () => ({ n: seen.events.length, failed: seen.error !== undefined }), ({ n, failed }) => failed || n >= count, { timeoutMs: 30_000, intervalMs: 20 });
  if (seen.error !== undefined) throw seen.error;
  return reading.n;
}

function newStore(pollIntervalMs = 1000) {
  return new PostgresEventStore(database.pool, { connectionString: database.url }, { pollIntervalMs });
}

test.serial('every subscription receives only its event types, in order, from one scan of each event', async (t) => {
  const store = newStore();
  const p = `fan-${uuid().slice(0, 8)}`;
  const head = await store.append(`${p}-0`, [event('Start', 0)], 'no_stream');
  const subs = {
    a: store.subscribeToAll({ from: head.position, filter: { eventTypes: ['A'] } }),
    b: store.subscribeToAll({ from: head.position, filter: { eventTypes: ['B'] } }),
    ab: store.subscribeToAll({ from: head.position, filter: { eventTypes: ['A', 'B'], streamPrefixes: [`${p}-1`] } }),
    all: store.subscribeToAll({ from: head.position }),
  };
  const readers = Object.fromEntries(Object.entries(subs).map(([name, sub]) => [name, consume(sub)])) as Record<keyof typeof subs, ReturnType<typeof consume>>;
  try {
    t.is(await attached(store, 4), 4, 'all four joined the reader');
    const rowsBefore = store.sharedFeed.stats.rows;
    // 60 events over two streams, types A, B and C in turn, in 12 appends.
    for (let i = 0; i < 60; i += 5) await store.append(`${p}-${(i / 5) % 2}`, range(i, 5).map((n) => event(['A', 'B', 'C'][n % 3]!, n)), 'any');
    await received(readers.all.seen, 60);
    await received(readers.a.seen, 20);
    await received(readers.b.seen, 20);
    t.deepEqual(numbers(readers.all.seen.events), range(0, 60));
    t.deepEqual(numbers(readers.a.seen.events), range(0, 60).filter((n) => n % 3 === 0));
    t.deepEqual(numbers(readers.b.seen.events), range(0, 60).filter((n) => n % 3 === 1));
    const inStream1 = range(0, 60).filter((n) => Math.floor(n / 5) % 2 === 1 && n % 3 !== 2);
    await received(readers.ab.seen, inStream1.length);
    t.deepEqual(numbers(readers.ab.seen.events), inStream1);
    t.true(readers.a.seen.events.every((e) => e.type === 'A' && numberOf(e) % 3 === 0), 'with their data');
    // Each event was scanned once by the reader, whatever the number of subscriptions.
    t.is(store.sharedFeed.stats.rows - rowsBefore, 60);
    for (const reader of Object.values(readers)) t.true(reader.seen.caughtUp);
  } finally {
    await Promise.all(Object.values(subs).map((s) => s.stop()));
    await Promise.all(Object.values(readers).map((r) => r.done));
    t.is(store.sharedFeed.attached, 0, 'the reader stops with its last subscription');
    await store.close();
  }
});

test.serial('a subscription that does not keep up holds nobody back: it is let go, reads on by itself, and joins again', async (t) => {
  const store = newStore();
  const p = `slow-${uuid().slice(0, 8)}`;
  const head = await store.append(`${p}-0`, [event('Start', -1)], 'no_stream');
  const fastSub = store.subscribeToAll({ from: head.position, filter: { streamPrefixes: [p] } });
  const slowSub = store.subscribeToAll({ from: head.position, filter: { streamPrefixes: [p] } });
  const fast = consume(fastSub);
  const slowIterator = slowSub[Symbol.asyncIterator]();
  let slow: ReturnType<typeof consume> | undefined;
  let late: Subscription | undefined;
  try {
    t.deepEqual(await untilCaughtUp(slowIterator), []);
    // One `next` in flight: it joins, receives event 0 and then reads no more.
    const slowFirst = slowIterator.next();
    t.is(await attached(store, 2), 2);
    // 1,500 events: the reader hands them out in two pages, and then has no room left for the slow one's sake alone.
    for (let i = 0; i < 1500; i += 500) await store.append(`${p}-1`, range(i, 500).map((n) => event('E', n)), 'any');
    await received(fast.seen, 1500);
    // A late subscription catches up from the start by itself, in pages of 300, then joins the reader.
    late = store.subscribeToAll({ filter: { streamPrefixes: [p] }, pageSize: 300 });
    const lateReader = consume(late);
    await received(lateReader.seen, 1501);
    t.is(await attached(store, 3), 3);
    // 4,000 more: far more than the slow one may have waiting. The others receive them all the same.
    for (let i = 1500; i < 5500; i += 1000) await store.append(`${p}-2`, range(i, 1000).map((n) => event('E', n)), 'any');
    await received(fast.seen, 5500);
    await received(lateReader.seen, 5501);
    t.deepEqual(numbers(fast.seen.events), range(0, 5500));
    t.deepEqual(numbers(lateReader.seen.events), range(-1, 5501), 'the late one: its catch-up and the reader, nothing twice');
    t.is(await attached(store, 2), 2, 'the slow one was let go');
    // The slow one now reads: what it was handed, then the rest by itself, in order; then it joins again.
    slow = consume(slowSub, slowIterator, slowFirst);
    await received(slow.seen, 5500);
    t.deepEqual(numbers(slow.seen.events), range(0, 5500));
    t.is(await attached(store, 3), 3, 'it joined again');
    t.true(store.sharedFeed.stats.releases >= 1);
    await store.append(`${p}-3`, [event('E', 5500)], 'no_stream');
    for (const seen of [fast.seen, slow.seen]) await received(seen, 5501);
    await received(lateReader.seen, 5502);
    t.deepEqual([fast.seen.events.at(-1), slow.seen.events.at(-1), lateReader.seen.events.at(-1)].map((e) => e && numberOf(e)), [5500, 5500, 5500]);
    t.is(fast.seen.events.length + slow.seen.events.length + lateReader.seen.events.length, 5501 * 3 + 1, 'nothing handed out twice');
  } finally {
    await Promise.all([fastSub.stop(), slowSub.stop(), late?.stop()]);
    await Promise.all([fast.done, slow?.done]);
    await store.close();
  }
});

test.serial('a subscription that joins behind the reader first reads the events in between, once', async (t) => {
  const store = newStore();
  const p = `gap-${uuid().slice(0, 8)}`;
  const head = await store.append(`${p}-0`, [event('Start', -1)], 'no_stream');
  const leadSub = store.subscribeToAll({ from: head.position, filter: { streamPrefixes: [p] } });
  const lead = consume(leadSub);
  const behindSub = store.subscribeToAll({ from: head.position, filter: { streamPrefixes: [p] } });
  const behindIterator = behindSub[Symbol.asyncIterator]();
  let behind: ReturnType<typeof consume> | undefined;
  try {
    await attached(store, 1);
    t.deepEqual(await untilCaughtUp(behindIterator), []);
    // Caught up at the head, but not yet joined: the reader moves on without it.
    await store.append(`${p}-1`, range(0, 10).map((n) => event('E', n)), 'no_stream');
    await received(lead.seen, 10);
    behind = consume(behindSub, behindIterator);
    t.is(await attached(store, 2), 2);
    await store.append(`${p}-1`, range(10, 5).map((n) => event('E', n)), 9);
    await received(behind.seen, 15);
    t.deepEqual(numbers(behind.seen.events), range(0, 15));
    await received(lead.seen, 15);
    t.deepEqual(numbers(lead.seen.events), range(0, 15));
  } finally {
    await Promise.all([leadSub.stop(), behindSub.stop()]);
    await Promise.all([lead.done, behind?.done]);
    await store.close();
  }
});

test.serial('the shared reader holds later events back while an earlier append is in progress, for every subscription', async (t) => {
  const store = newStore();
  const p = `held-${uuid().slice(0, 8)}`;
  const head = await store.append(`${p}-0`, [event('Start', -1)], 'no_stream');
  const subs = [store.subscribeToAll({ from: head.position, filter: { streamPrefixes: [p] } }), store.subscribeToAll({ from: head.position, filter: { eventTypes: ['E'] } })];
  const readers = subs.map((s) => consume(s));
  const slow = await database.pool.connect();
  try {
    await attached(store, 2);
    await slow.query('BEGIN');
    const late = event('E', 0);
    // An append that takes its place first and commits last.
    await appendInOpenTransaction(slow, `${p}-slow`, late);
    for (let n = 1; n <= 3; n++) await store.append(`${p}-fast-${n}`, [event('E', n)], 'no_stream');
    // The reader has looked at the feed since the fast appends committed (two pages: one may have begun before).
    const pagesBefore = store.sharedFeed.stats.pages;
    await until(async () => store.sharedFeed.stats.pages, (pages) => pages >= pagesBefore + 2, { timeoutMs: 20_000, intervalMs: 20 });
    t.deepEqual(readers.map((r) => r.seen.events.length), [0, 0], 'nothing passes the append in progress');
    await slow.query('COMMIT');
    for (const reader of readers) {
      await received(reader.seen, 4);
      t.deepEqual(numbers(reader.seen.events), [0, 1, 2, 3]);
    }
  } finally {
    await slow.query('ROLLBACK').catch(() => undefined);
    slow.release();
    await Promise.all(subs.map((s) => s.stop()));
    await Promise.all(readers.map((r) => r.done));
    await store.close();
  }
});
