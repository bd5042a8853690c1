/**
 * The PostgreSQL append path without stream rows (migrations/0150, issue 16 item 5): a stream's writers serialise
 * on an advisory lock and its head revision comes from the events themselves. A one-event append at an exact place
 * is one prepared INSERT; everything else goes through append_events / append_events_many. Both paths race here on
 * the same streams, with every kind of expectation, and must never share a revision, skip one, or lose an event.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { ConcurrencyConflict, type ExpectedRevision, type NewEvent } from '../../domain/ports/event-store.ts';
import type { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

const event = (n: number): NewEvent => ({ id: uuid(), type: 'Counted', data: { n } });

test.serial('appends write no stream row: the revision comes from the events, and a one-event exact append is one statement', async (t) => {
  const stream = `path-${uuid()}`;
  const statements: string[] = [];
  const query = database.pool.query.bind(database.pool);
  // Count what the store sends for the next appends (the store goes through pool.query).
  (database.pool as { query: unknown }).query = (...args: Parameters<typeof query>) => {
    const [first] = args as unknown as [string | { text: string }];
    statements.push(typeof first === 'string' ? first : first.text);
    return query(...args);
  };
  try {
    t.is((await store.append(stream, [event(0)], 'no_stream')).nextExpectedRevision, 0);
    t.is((await store.append(stream, [event(1)], 0)).nextExpectedRevision, 1);
  } finally {
    (database.pool as { query: unknown }).query = query;
  }
  t.is(statements.length, 2, 'one statement per one-event append');
  t.true(statements.every((sql) => sql.includes('INSERT INTO events') && !sql.includes('append_events')));
  t.is((await store.append(stream, [event(2), event(3)], 'any')).nextExpectedRevision, 3, 'a batch goes through append_events');
  const rows = await database.pool.query('SELECT 1 FROM event_streams WHERE stream_name = $1', [stream]);
  t.is(rows.rowCount, 0, 'no stream row written');
  await t.throwsAsync(store.append(stream, [event(9)], 1), { instanceOf: ConcurrencyConflict, message: /actual 3/ });
  await t.throwsAsync(store.append(stream, [event(9)], 'no_stream'), { instanceOf: ConcurrencyConflict });
  // A retried one-event append (its reply was lost) is answered with the original result, and writes nothing.
  const retried = event(4);
  const first = await store.append(stream, [retried], 3);
  t.deepEqual(await store.append(stream, [retried], 3), first);
  t.is((await store.readStream(stream)).length, 5);
});

test.serial('both append paths racing on the same streams: every revision taken once, in order, no event lost', async (t) => {
  const streams = Array.from({ length: 3 }, () => `race-${uuid()}`);
  const written: string[] = [];
  const worker = async (w: number) => {
    for (let i = 0; i < 40; i++) {
      const stream = streams[(w + i) % streams.length]!;
      for (;;) {
        const head = (await store.readStream(stream, { direction: 'backwards', limit: 1 }))[0]?.revision;
        const expected: ExpectedRevision = i % 4 === 0 ? 'any' : head === undefined ? 'no_stream' : head;
        const events = i % 5 === 0 ? [event(i), event(i + 1000)] : [event(i)];
        try {
          if (i % 7 === 0) await store.appendMany([{ stream, events, expected }]);
          else await store.append(stream, events, expected);
          written.push(...events.map((e) => e.id));
          break;
        } catch (error) {
          if (!(error instanceof ConcurrencyConflict)) throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
  let total = 0;
  for (const stream of streams) {
    const events = await store.readStream(stream);
    t.deepEqual(events.map((e) => e.revision), events.map((_, i) => i), `${stream}: revisions 0..n, none skipped or shared`);
    total += events.length;
  }
  t.is(total, written.length, 'every acknowledged event is there, once');
});
