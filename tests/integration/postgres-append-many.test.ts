/**
 * What the PostgreSQL adapter adds to the contract's appendMany: every conflicting stream reported, the
 * `inTransaction` hook and the `alongside` statement that commit an adapter's own rows with the events (or nothing), and the gap-safe feed
 * holding later events back while a multi-stream transaction is still open.
 */
import test from 'ava';
import { numberedEvent } from '../support/numbered-events.ts';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { MultiStreamConflict } from '../../domain/ports/event-store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { take } from './event-store.contract.ts';

let database: TestDatabase;
let store: PostgresEventStore;

test.before(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore(database.pool, { connectionString: database.url });
  await database.pool.query('CREATE TABLE settled (name text PRIMARY KEY)');
});
test.after.always(async () => {
  await store?.close();
  await database?.drop();
});

const event = numberedEvent;
const prefix = () => `many-${uuid().slice(0, 8)}`;
const settled = async (name: string) => (await database.pool.query('SELECT 1 FROM settled WHERE name = $1', [name])).rowCount === 1;
const streamLength = async (stream: string) => (await store.readStream(stream)).length;

test('a conflict names every conflicting stream, with its actual revision', async (t) => {
  const p = prefix();
  await store.append(`${p}-stale`, [event(0), event(1)], 'no_stream');
  await store.append(`${p}-taken`, [event(0)], 'no_stream');
  const conflict = await t.throwsAsync(
    store.appendMany([
      { stream: `${p}-fine`, events: [event(2)], expected: 'no_stream' },
      { stream: `${p}-taken`, events: [event(3)], expected: 'no_stream' },
      { stream: `${p}-missing`, events: [event(4)], expected: 'stream_exists' },
      { stream: `${p}-stale`, events: [event(5)], expected: 0 },
    ]),
    { instanceOf: MultiStreamConflict },
  );
  t.deepEqual(conflict?.conflicts, [
    { stream: `${p}-taken`, expected: 'no_stream', actual: 0 },
    { stream: `${p}-missing`, expected: 'stream_exists', actual: 'no_stream' },
    { stream: `${p}-stale`, expected: 0, actual: 1 },
  ]);
  t.is(await streamLength(`${p}-fine`), 0);
  const rows = await database.pool.query('SELECT 1 FROM event_streams WHERE stream_name = ANY($1)', [[`${p}-fine`, `${p}-missing`]]);
  t.is(rows.rowCount, 0, 'no stream row is left behind by a failed call');
});

test('inTransaction work commits with the events', async (t) => {
  const p = prefix();
  let seen: string | undefined;
  const result = await store.appendMany([{ stream: `${p}-a`, events: [event(1)], expected: 'no_stream' }], {
    inTransaction: async (client, written) => {
      seen = written.position;
      await client.query('INSERT INTO settled (name) VALUES ($1)', [p]);
    },
  });
  t.is(seen, result.position);
  t.true(await settled(p));
  t.is(await streamLength(`${p}-a`), 1);
});

test('inTransaction work that fails leaves neither its rows nor the events', async (t) => {
  const p = prefix();
  await t.throwsAsync(
    store.appendMany([{ stream: `${p}-a`, events: [event(1)], expected: 'no_stream' }], {
      inTransaction: async (client) => {
        await client.query('INSERT INTO settled (name) VALUES ($1)', [p]);
        throw new Error('settling failed');
      },
    }),
    { message: 'settling failed' },
  );
  t.false(await settled(p));
  t.is(await streamLength(`${p}-a`), 0);
});

test('inTransaction work does not run when the events conflict, and runs alone for an empty list', async (t) => {
  const p = prefix();
  await store.append(`${p}-a`, [event(0)], 'no_stream');
  let ran = false;
  await t.throwsAsync(
    store.appendMany([{ stream: `${p}-a`, events: [event(1)], expected: 'no_stream' }], { inTransaction: async () => void (ran = true) }),
    { instanceOf: MultiStreamConflict },
  );
  t.false(ran);
  const empty = await store.appendMany([], { inTransaction: async (client) => void (await client.query('INSERT INTO settled (name) VALUES ($1)', [p])) });
  t.deepEqual(empty, { streams: [] });
  t.true(await settled(p));
});

const settleAlongside = (name: string) => ({ name: 'test_settle', text: 'INSERT INTO settled (name) VALUES ($1) RETURNING name', values: [name] });

test('a statement alongside commits with the events, in the same statement, and answers its rows', async (t) => {
  const p = prefix();
  const result = await store.appendMany(
    [
      { stream: `${p}-a`, events: [event(1), event(2)], expected: 'no_stream' },
      { stream: `${p}-b`, events: [event(3)], expected: 'no_stream' },
    ],
    { alongside: settleAlongside(p) },
  );
  t.deepEqual(result.alongside, [{ name: p }]);
  t.deepEqual(
    result.streams.map((s) => [s.stream, s.nextExpectedRevision]),
    [
      [`${p}-a`, 1],
      [`${p}-b`, 0],
    ],
  );
  t.true(await settled(p));
  t.is(await streamLength(`${p}-a`), 2);
  t.is((await store.readStream(`${p}-b`))[0]?.position, result.position);
});

test('a statement alongside does not commit when the events conflict, fails the append when it fails, and runs alone for an empty list', async (t) => {
  const p = prefix();
  await store.append(`${p}-a`, [event(0)], 'no_stream');
  await t.throwsAsync(store.appendMany([{ stream: `${p}-a`, events: [event(1)], expected: 'no_stream' }], { alongside: settleAlongside(p) }), { instanceOf: MultiStreamConflict });
  t.false(await settled(p));
  // Its own failure (here a duplicate key) rolls the events back.
  await database.pool.query('INSERT INTO settled (name) VALUES ($1)', [`${p}-taken`]);
  await t.throwsAsync(store.appendMany([{ stream: `${p}-b`, events: [event(1)], expected: 'no_stream' }], { alongside: settleAlongside(`${p}-taken`) }));
  t.is(await streamLength(`${p}-b`), 0);
  const empty = await store.appendMany([], { alongside: settleAlongside(p) });
  t.deepEqual(empty, { streams: [], alongside: [{ name: p }] });
  t.true(await settled(p));
});

test('while a multi-stream transaction is open the feed holds later events back, then delivers the batch first', async (t) => {
  const p = prefix();
  const subscription = store.subscribeToAll({ filter: { streamPrefixes: [p] } });
  try {
    await store.append(`${p}-before`, [event(0)], 'no_stream');
    t.deepEqual((await take(subscription, 1)).events.map((e) => e.data), [{ n: 0 }]);

    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const eventsWritten = new Promise<void>((resolve) => (written = resolve));
    const batch = store.appendMany(
      [
        { stream: `${p}-x`, events: [event(1), event(2)], expected: 'no_stream' },
        { stream: `${p}-y`, events: [event(3)], expected: 'no_stream' },
      ],
      {
        inTransaction: async () => {
          written();
          await gate;
        },
      },
    );
    await eventsWritten;
    await store.append(`${p}-after`, [event(4)], 'no_stream');
    await t.throwsAsync(take(subscription, 1, 500), { message: /gave 0\/1 events/ }, 'nothing passes the open transaction');
    release();
    await batch;
    t.deepEqual((await take(subscription, 4)).events.map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  } finally {
    await subscription.stop();
  }
});
