/**
 * The KurrentDB adapter beyond the shared contract (which kurrentdb-batch.test.ts and kurrentdb-append.test.ts
 * run against the in-process protocol server): skipping system events, paging filtered reads, and behaviour
 * under the failures the test server can inject. When EVENTSTORE_URL is set, the contract also runs here
 * against that real KurrentDB, which the test server cannot stand in for (see PROTOCOL.md).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { v4 as uuid } from 'uuid';
import { createKurrentDbEventStore, type KurrentDbEventStore } from '../../adapters/eventstore/kurrentdb.ts';
import { EventStoreUnavailable, type NewEvent } from '../../domain/ports/event-store.ts';
import { startKurrentDbTestServer, type KurrentDbTestServerOptions } from '../support/kurrentdb-server.ts';
import { eventStoreContract, take, type ContractContext } from './event-store.contract.ts';

const test = anyTest as TestFn<ContractContext>;

const realServer = process.env.EVENTSTORE_URL;
if (realServer) {
  let store: KurrentDbEventStore;
  test.before(() => {
    store = createKurrentDbEventStore(realServer);
  });
  // Only the contract's tests read the context; the tests below bring their own server.
  test.beforeEach((t) => {
    t.context.store = store;
  });
  test.after.always(async () => {
    await store?.close();
  });
  eventStoreContract(test, '[KurrentDB] ');
}

// Each test below gets its own server, so an injected fault hits only that test.

const event = (n: number, type = 'Counted'): NewEvent => ({
  id: uuid(),
  type,
  data: { n },
  metadata: { actor: 'test' },
});

async function isolated(t: ExecutionContext<ContractContext>, options: KurrentDbTestServerOptions = {}) {
  const server = await startKurrentDbTestServer(options);
  const store = createKurrentDbEventStore(server.connectionString);
  t.teardown(async () => {
    await store.close();
    await server.stop();
  });
  return { server, store };
}

test('system events in $all never reach readers, subscribers or the head position', async (t) => {
  // The server writes a `$statsCollected` event after every append, on top of the ones it starts with.
  const { store } = await isolated(t, { systemEventEvery: 1 });
  const first = await store.append('order-1', [event(1)], 'no_stream');
  const second = await store.append('order-1', [event(2)], 0);

  t.deepEqual((await store.readAll()).map((e) => e.data), [{ n: 1 }, { n: 2 }]);
  t.deepEqual((await store.readAll({ direction: 'backwards', limit: 1 })).map((e) => e.data), [{ n: 2 }]);
  t.is(await store.headPosition(), second.position);

  const sub = store.subscribeToAll();
  try {
    const { events } = await take(sub, 2);
    t.deepEqual(events.map((e) => e.position), [first.position, second.position]);
  } finally {
    await sub.stop();
  }
});

test('a limited $all read pages past events the server cannot filter out', async (t) => {
  // Stream prefixes go to the server and event types are checked here, so the first page the server
  // sends can hold no wanted event at all.
  const { store } = await isolated(t);
  await store.append('shop-1', Array.from({ length: 150 }, (_, n) => event(n, 'Noise')), 'no_stream');
  await store.append('shop-1', [event(1000, 'Wanted'), event(1001, 'Wanted')], 149);

  const wanted = await store.readAll({ filter: { streamPrefixes: ['shop-'], eventTypes: ['Wanted'] }, limit: 2 });
  t.deepEqual(wanted.map((e) => e.data), [{ n: 1000 }, { n: 1001 }]);
  const newest = await store.readAll({
    direction: 'backwards',
    filter: { streamPrefixes: ['shop-'], eventTypes: ['Noise'] },
    limit: 1,
  });
  t.deepEqual(newest.map((e) => e.data), [{ n: 149 }]);
});

for (const advertiseBatchAppend of [true, false]) {
  const path = advertiseBatchAppend ? 'BatchAppend' : 'Append';

  test(`[${path}] an append that meets an unavailable server fails as EventStoreUnavailable; the retry succeeds`, async (t) => {
    const { server, store } = await isolated(t, { advertiseBatchAppend });
    const batch = [event(1), event(2)];
    server.failNext('unavailable');
    await t.throwsAsync(store.append('order-7', batch, 'no_stream'), { instanceOf: EventStoreUnavailable });

    // The adapter does not retry by itself: the caller may, with the same event ids.
    t.is((await store.append('order-7', batch, 'no_stream')).nextExpectedRevision, 1);
    t.deepEqual((await store.readStream('order-7')).map((e) => e.data), [{ n: 1 }, { n: 2 }]);
  });

  test(`[${path}] an append that meets a follower fails as EventStoreUnavailable; the client then finds the leader`, async (t) => {
    const { server, store } = await isolated(t, { advertiseBatchAppend });
    await store.append('order-8', [event(1)], 'no_stream');
    server.failNext('not-leader');
    await t.throwsAsync(store.append('order-8', [event(2)], 0), { instanceOf: EventStoreUnavailable });
    t.is((await store.append('order-8', [event(2)], 0)).nextExpectedRevision, 1);
  });
}

for (const reason of ['not-ready', 'busy', 'no-leader-info'] as const) {
  test(`[BatchAppend] an append the server did not handle (${reason}) fails as EventStoreUnavailable; the retry succeeds`, async (t) => {
    const { server, store } = await isolated(t);
    const batch = [event(1), event(2)];
    server.failNext(reason);
    await t.throwsAsync(store.append('order-11', batch, 'no_stream'), { instanceOf: EventStoreUnavailable });
    t.is((await store.append('order-11', batch, 'no_stream')).nextExpectedRevision, 1);
    t.is(server.appendsServed.batchAppend, 1, 'the first append was not handled');
  });
}

test('reads that meet an unavailable server or a follower fail as EventStoreUnavailable', async (t) => {
  const { server, store } = await isolated(t);
  await store.append('order-9', [event(1)], 'no_stream');
  server.failNext('unavailable');
  await t.throwsAsync(store.readStream('order-9'), { instanceOf: EventStoreUnavailable });
  server.failNext('not-leader');
  await t.throwsAsync(store.readAll(), { instanceOf: EventStoreUnavailable });
  t.is((await store.readStream('order-9')).length, 1);
});

test('an append session that meets an unavailable server fails as EventStoreUnavailable, writes nothing, and can be retried', async (t) => {
  const { server, store } = await isolated(t);
  t.true(await store.supportsAtomicMultiStream());
  const requests = [
    { stream: 'order-20', events: [event(1)], expected: 'no_stream' as const },
    { stream: 'wallet-20', events: [event(2)], expected: 'no_stream' as const },
  ];
  server.failNext('unavailable');
  await t.throwsAsync(store.appendMany(requests), { instanceOf: EventStoreUnavailable });
  t.deepEqual([...(await store.readStreams(['order-20', 'wallet-20'])).values()].map((events) => events.length), [0, 0]);
  const retried = await store.appendMany(requests);
  t.deepEqual(retried.streams.map((s) => s.nextExpectedRevision), [0, 0]);
});

test('an append session that meets a follower fails as EventStoreUnavailable; the next one goes to the leader it names', async (t) => {
  const leader = await startKurrentDbTestServer();
  t.teardown(() => leader.stop());
  const { server: follower, store } = await isolated(t);
  t.true(await store.supportsAtomicMultiStream(), 'asked before the fault, which the probe would otherwise meet');
  const requests = [
    { stream: 'order-21', events: [event(1)], expected: 'no_stream' as const },
    { stream: 'wallet-21', events: [event(2)], expected: 'no_stream' as const },
  ];
  // KurrentDB 25.1's v2 answer: FAILED_PRECONDITION with NotLeaderNodeErrorDetails, which the client does not act on.
  follower.failNext('not-leader', { leader: { host: '127.0.0.1', port: leader.port } });
  await t.throwsAsync(store.appendMany(requests), { instanceOf: EventStoreUnavailable });

  const retried = await store.appendMany(requests);
  t.deepEqual(retried.streams.map((s) => s.nextExpectedRevision), [0, 0]);
  t.is(leader.appendsServed.appendSession, 1, 'written on the leader');
  t.is(follower.appendsServed.appendSession, 0, 'nothing written on the follower');
  t.deepEqual((await store.readStream('wallet-21')).map((e) => e.data), [{ n: 2 }], 'read back from the leader');
});

test('the multi-stream capability is asked again after a transient failure, not remembered as absent', async (t) => {
  const { server, store } = await isolated(t);
  server.failNext('unavailable');
  await t.throwsAsync(store.supportsAtomicMultiStream(), { instanceOf: EventStoreUnavailable });
  t.true(await store.supportsAtomicMultiStream());
  t.is(server.appendsServed.appendSession, 0, 'the probe writes nothing');
});

test('ping and appends fail as EventStoreUnavailable once the server is gone', async (t) => {
  const { server, store } = await isolated(t);
  await t.notThrowsAsync(store.ping());
  await server.stop();
  await t.throwsAsync(store.ping(), { instanceOf: EventStoreUnavailable });
  await t.throwsAsync(store.append('order-10', [event(1)], 'any'), { instanceOf: EventStoreUnavailable });
});

test('a dropped subscription resumes after the last event it handed out: nothing skipped, nothing repeated', async (t) => {
  const { server, store } = await isolated(t);
  await store.append('cart-1', [event(1), event(2), event(3)], 'no_stream');
  const sub = store.subscribeToAll({ filter: { streamPrefixes: ['cart-'] } });
  try {
    const before = await take(sub, 3);
    t.deepEqual(before.events.map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }]);

    server.dropSubscriptions();
    // Written while the subscription is down: the resubscription has to pick these up as history.
    await store.append('cart-1', [event(4), event(5)], 2);
    const during = await take(sub, 2);
    t.deepEqual(during.events.map((e) => e.data), [{ n: 4 }, { n: 5 }]);

    server.dropSubscriptions();
    const afterwards = take(sub, 1);
    await store.append('cart-2', [event(6)], 'no_stream');
    const live = await afterwards;
    t.deepEqual(live.events.map((e) => e.data), [{ n: 6 }]);
    t.is(live.caughtUpAfter, undefined, 'caught-up is announced once, not after every resubscription');
  } finally {
    await sub.stop();
  }
});
