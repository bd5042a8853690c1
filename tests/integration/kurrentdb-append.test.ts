/**
 * The event store contract against the KurrentDB adapter, through the real client to the in-process protocol
 * server not advertising `Streams/BatchAppend`, so the client falls back to `Streams/Append` (servers before 21.10).
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
  server = await startKurrentDbTestServer({ advertiseBatchAppend: false });
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
