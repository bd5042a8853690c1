/**
 * The event store contract against the KurrentDB adapter, through the real client to the in-process protocol
 * server not advertising `Streams/BatchAppend`, so the client falls back to `Streams/Append` (servers before 21.10),
 * nor the v2 append session: `appendMany` falls back to one append per stream, and says it is not atomic.
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
  server = await startKurrentDbTestServer({ advertiseBatchAppend: false, multiStreamAppend: false });
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

test('appends go through Streams/Append', async (t) => {
  await t.context.store.append(`path-${uuid()}`, [{ id: uuid(), type: 'Probed', data: {} }], 'no_stream');
  t.true(server.appendsServed.append > 0);
  t.is(server.appendsServed.batchAppend, 0);
});

test('without the v2 append session, appendMany appends stream by stream and says it is not atomic', async (t) => {
  // A server of its own: the contract's tests append concurrently and would move the counters.
  const server = await startKurrentDbTestServer({ advertiseBatchAppend: false, multiStreamAppend: false });
  const store = createKurrentDbEventStore(server.connectionString);
  t.teardown(async () => {
    await store.close();
    await server.stop();
  });
  t.false(await store.supportsAtomicMultiStream());
  const before = server.appendsServed.append;
  const p = `fallback-${uuid()}`;
  const result = await store.appendMany([
    { stream: `${p}-a`, events: [{ id: uuid(), type: 'Probed', data: {} }], expected: 'no_stream' },
    { stream: `${p}-b`, events: [{ id: uuid(), type: 'Probed', data: {} }], expected: 'no_stream' },
  ]);
  t.is(server.appendsServed.append - before, 2);
  t.is(server.appendsServed.appendSession, 0);
  t.true(store.isAfter(result.streams[1]!.position, result.streams[0]!.position));
  t.is(result.position, result.streams[1]!.position);
});
