import anyTest, { type TestFn } from 'ava';
import { InMemoryEventStore } from '../support/memory-event-store.ts';
import { eventStoreContract, type ContractContext } from '../integration/event-store.contract.ts';

const test = anyTest as TestFn<ContractContext>;
const store = new InMemoryEventStore();
test.beforeEach((t) => {
  t.context.store = store;
});
eventStoreContract(test);
