/**
 * The head and backwards reads of the PostgreSQL store while an append stays open below a newer commit: the feed
 * holds the newer event back (gap safety), and a backwards read answers the newest settled events, a full page of
 * them, without waiting out its bound again and again. A reader that must see everything committed before it asked
 * (ingestion's view) gets a retryable error instead of a stale head.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { oldestAppendInFlight } from '../../adapters/eventstore/postgres-horizon.ts';
import { EventStoreUnavailable, type Position } from '../../domain/ports/event-store.ts';
import { IngestionState } from '../../domain/payments/ingestion-state.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';
import { until } from '../support/eventually.ts';
import { appendInOpenTransaction, numberedEvent } from '../support/numbered-events.ts';

let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

const event = numberedEvent;
/**
 * The timed reads' settle bound: a read that waits it out takes 10 s, twice the 5 s they are allowed, and the 5 s
 * are more than a loaded machine takes for the two or three queries an answer at once makes.
 */
const SETTLE_MS = 10_000;
const ANSWER_MS = 5_000;

test.serial('an append open past the settle bound below a newer commit: the head is the newest settled event, at once, and backwards pages are full', async (t) => {
  const prefix = `head-${uuid().slice(0, 8)}`;
  const settled: Position[] = [];
  for (let n = 1; n <= 3; n++) settled.push((await store.append(`${prefix}-before-${n}`, [event(n)], 'no_stream')).position);
  t.is(await store.headPosition(), settled[2]);

  const slow = await database.pool.connect();
  try {
    await slow.query('BEGIN');
    await appendInOpenTransaction(slow, `${prefix}-slow`, event(4));
    const newer = await store.append(`${prefix}-after`, [event(5)], 'no_stream');
    // The open append has been open longer than a forwards read of this reader waits for one (readAllSettleMs).
    const reader = new PostgresEventStore(database.pool, { connectionString: database.url }, { readAllSettleMs: SETTLE_MS });
    t.teardown(() => reader.close());
    await until(() => oldestAppendInFlight(database.pool), (oldest) => (oldest?.ageSeconds ?? 0) >= SETTLE_MS / 1000 + 0.2, { timeoutMs: SETTLE_MS + 10_000 });

    let started = Date.now();
    t.is(await reader.headPosition(), settled[2], 'the newest settled event, never undefined');
    t.true(Date.now() - started < ANSWER_MS, `answered in ${Date.now() - started} ms, not after the ${SETTLE_MS} ms settle bound`);
    started = Date.now();
    const page = await reader.readAll({ direction: 'backwards', limit: 3 });
    t.true(Date.now() - started < ANSWER_MS, `answered in ${Date.now() - started} ms, not after the ${SETTLE_MS} ms settle bound`);
    t.deepEqual(
      page.map((e) => e.position),
      [...settled].reverse(),
      'a full page of the newest settled events, not the newest rows less those held back',
    );
    const mine = await store.readAll({ direction: 'backwards', filter: { streamPrefixes: [prefix] } });
    t.deepEqual(mine.map((e) => e.data), [{ n: 3 }, { n: 2 }, { n: 1 }], 'without a limit too: nothing held back, nothing missing');

    // A reader that must see everything committed before it asked is told to retry, not handed a stale head.
    await t.throwsAsync(store.headPosition({ complete: true }), { instanceOf: EventStoreUnavailable, message: /held back/ });
    await t.throwsAsync(new IngestionState(store).catchUp(), { instanceOf: EventStoreUnavailable });

    await slow.query('COMMIT');
    t.is(await store.headPosition(), newer.position);
    t.is(await store.headPosition({ complete: true }), newer.position);
    await t.notThrowsAsync(new IngestionState(store).catchUp());
  } finally {
    await slow.query('ROLLBACK').catch(() => undefined);
    slow.release();
  }
});

test.serial('a brief append below a newer commit is waited for: the head after one’s own append includes it', async (t) => {
  const prefix = `brief-${uuid().slice(0, 8)}`;
  const slow = await database.pool.connect();
  try {
    await slow.query('BEGIN');
    await appendInOpenTransaction(slow, `${prefix}-slow`, event(1));
    const mine = await store.append(`${prefix}-mine`, [event(2)], 'no_stream');
    const head = store.headPosition();
    // The append ends within the bound: the head waits for it and includes the newer commit.
    setTimeout(() => void slow.query('COMMIT'), 200);
    t.is(await head, mine.position);
  } finally {
    await slow.query('ROLLBACK').catch(() => undefined);
    slow.release();
  }
});
