/**
 * The event store contract against the KurrentDB adapter, through the real client to the in-process protocol
 * server advertising `Streams/BatchAppend`, the path real servers (21.10+) offer and the client prefers.
 */
import anyTest, { type TestFn } from 'ava';
import { v4 as uuid } from 'uuid';
import { createKurrentDbEventStore, type KurrentDbEventStore } from '../../adapters/eventstore/kurrentdb.ts';
import { startKurrentDbTestServer, type KurrentDbTestServer } from '../support/kurrentdb-server.ts';
import { eventStoreContract, type ContractContext } from './event-store.contract.ts';

const test = anyTest as TestFn<ContractContext>;
let server: KurrentDbTestServer;
let store: KurrentDbEventStore;

test.before(async () => {
  server = await startKurrentDbTestServer({ advertiseBatchAppend: true });
  store = createKurrentDbEventStore(server.connectionString);
});
test.beforeEach((t) => {
  t.context.store = store;
});
test.after.always(async () => {
  await store?.close();
  await server?.stop();
});

eventStoreContract(test);

test('appends go through Streams/BatchAppend', async (t) => {
  await t.context.store.append(`path-${uuid()}`, [{ id: uuid(), type: 'Probed', data: {} }], 'no_stream');
  t.true(server.appendsServed.batchAppend > 0);
  t.is(server.appendsServed.append, 0);
});

test('appendMany goes through one v2 append session, atomically', async (t) => {
  // A server of its own: the contract's tests append concurrently and would move the counters.
  const server = await startKurrentDbTestServer();
  const store = createKurrentDbEventStore(server.connectionString);
  t.teardown(async () => {
    await store.close();
    await server.stop();
  });
  t.true(await store.supportsAtomicMultiStream());
  const before = { ...server.appendsServed };
  const p = `session-${uuid()}`;
  await store.appendMany([
    { stream: `${p}-a`, events: [{ id: uuid(), type: 'Probed', data: {}, metadata: { actor: 'test', schemaVersion: 2, nested: { n: [1] } } }], expected: 'no_stream' },
    { stream: `${p}-b`, events: [{ id: uuid(), type: 'Probed', data: {} }], expected: 'no_stream' },
  ]);
  t.is(server.appendsServed.appendSession - before.appendSession, 1);
  t.is(server.appendsServed.batchAppend, before.batchAppend);
  const [written] = await store.readStream(`${p}-a`);
  t.deepEqual(written?.metadata, { actor: 'test', schemaVersion: 2, nested: { n: [1] } }, 'metadata round-trips through record properties');
});
