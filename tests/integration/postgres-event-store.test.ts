import anyTest, { type TestFn } from 'ava';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventStoreContract, type ContractContext } from './event-store.contract.ts';

const test = anyTest as TestFn<ContractContext>;
let database: TestDatabase;
let store: PostgresEventStore;

test.before(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore(database.pool, { connectionString: database.url });
});
test.beforeEach((t) => {
  t.context.store = store;
});
test.after.always(async () => {
  await store?.close();
  await database?.drop();
});

eventStoreContract(test);
