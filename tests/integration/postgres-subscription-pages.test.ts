/**
 * The PostgreSQL subscription reads the next page of the history while the current one is handed out (rebuilds
 * read pages of 20,000 that way). A page read ahead can be stale by the time it is handed out: an append made
 * meanwhile woke nobody (the subscription was not asleep), so the subscription must look again at once instead of
 * sleeping until its poll.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { NewEvent } from '../../domain/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { take } from './event-store.contract.ts';

let database: TestDatabase;
test.before(async () => (database = await createTestDatabase()));
test.after.always(async () => database?.drop());

const event = (n: number): NewEvent => ({ id: uuid(), type: 'Paged', data: { n } });

test('an append made while a page read ahead was pending is handed out at once, not after the poll', async (t) => {
  // A poll far longer than the test's bound: only looking again at once can deliver the late event in time.
  const store = new PostgresEventStore(database.pool, { connectionString: database.url }, { pollIntervalMs: 60_000 });
  const writer = new PostgresEventStore(database.pool, { connectionString: database.url });
  const stream = `paged-${uuid()}`;
  const { position: before } = await writer.append(`${stream}-marker`, [event(0)], 'no_stream');
  await writer.append(stream, [event(1), event(2)], 'no_stream');
  // Pages of 2: the first page is full, so the next one is read ahead while event 1 is being handled.
  const sub = store.subscribeToAll({ from: before, filter: { streamPrefixes: [stream] }, pageSize: 2 });
  try {
    t.deepEqual((await take(sub, 1)).events.map((e) => e.data), [{ n: 1 }]);
    // The page read ahead (after event 2) has long come back empty; this append wakes nobody: the subscription is busy.
    await new Promise((resolve) => setTimeout(resolve, 200)); // pacing: lets the read-ahead finish before the append
    await writer.append(`${stream}-late`, [event(3)], 'no_stream');
    await new Promise((resolve) => setTimeout(resolve, 300)); // pacing: its NOTIFY arrives while nobody sleeps
    const started = performance.now();
    const { events } = await take(sub, 2, 10_000);
    t.deepEqual(events.map((e) => e.data), [{ n: 2 }, { n: 3 }]);
    t.true(performance.now() - started < 5_000, `took ${Math.round(performance.now() - started)} ms`);
  } finally {
    await sub.stop();
    await store.close();
    await writer.close();
  }
});
