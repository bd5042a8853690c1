/**
 * The event store contract: one suite, run against every adapter (PostgreSQL, KurrentDB through the
 * protocol-level test server, and a real KurrentDB when EVENTSTORE_URL is set).
 *
 * Every test works in streams with a fresh random prefix and filters `$all` by that prefix, so the suite
 * can run against a shared, non-empty store.
 */
import type { ImplementationFn, TestFn } from 'ava';
import { v4 as uuid } from 'uuid';
import {
  ConcurrencyConflict,
  MultiStreamConflict,
  type EventStore,
  type NewEvent,
  type Position,
  type RecordedEvent,
  type Subscription,
  type SubscriptionItem,
} from '../../domain/ports/event-store.ts';

export interface ContractContext {
  store: EventStore;
}

const newEvent = (type: string, n: number, extra: Partial<NewEvent> = {}): NewEvent => ({
  id: uuid(),
  type,
  data: { n },
  metadata: { correlationId: 'corr-1', actor: 'test', schemaVersion: 1 },
  ...extra,
});

const prefix = () => `c${uuid().replaceAll('-', '').slice(0, 12)}`;

/** A `next()` still in flight when a `take` timed out; the following `take` must receive its result. */
const inFlight = new WeakMap<Subscription, Promise<IteratorResult<SubscriptionItem>>>();
const iterators = new WeakMap<Subscription, AsyncIterator<SubscriptionItem>>();

/** Reads from a subscription until `count` events arrived (or throws after `ms`, losing nothing). */
export async function take(
  sub: Subscription,
  count: number,
  ms = 10_000,
): Promise<{ events: RecordedEvent[]; caughtUpAfter: number | undefined }> {
  const events: RecordedEvent[] = [];
  let caughtUpAfter: number | undefined;
  let iterator = iterators.get(sub);
  if (!iterator) {
    iterator = sub[Symbol.asyncIterator]();
    iterators.set(sub, iterator);
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`subscription gave ${events.length}/${count} events in ${ms} ms`)), ms);
  });
  try {
    while (events.length < count) {
      const pending = inFlight.get(sub) ?? iterator.next();
      inFlight.set(sub, pending);
      const next: IteratorResult<SubscriptionItem> = await Promise.race([pending, timeout]);
      inFlight.delete(sub);
      if (next.done) break;
      if (next.value.kind === 'caught-up') caughtUpAfter ??= events.length;
      else events.push(next.value.event);
    }
  } finally {
    clearTimeout(timer);
  }
  return { events, caughtUpAfter };
}

/** `titlePrefix` keeps titles unique when one test file runs the contract against several stores. */
export function eventStoreContract(register: TestFn<ContractContext>, titlePrefix = '') {
  const test = (title: string, implementation: ImplementationFn<[], ContractContext>) =>
    register(`${titlePrefix}${title}`, implementation);

  test('appending to a new stream with no_stream starts at revision 0 and reads back in order', async (t) => {
    const { store } = t.context;
    const stream = `${prefix()}-a`;
    const result = await store.append(stream, [newEvent('Opened', 1), newEvent('Credited', 2)], 'no_stream');
    t.is(result.nextExpectedRevision, 1);
    const events = await store.readStream(stream);
    t.deepEqual(events.map((e) => [e.type, e.revision, e.data]), [
      ['Opened', 0, { n: 1 }],
      ['Credited', 1, { n: 2 }],
    ]);
    t.is(events[1]?.position, result.position);
    t.is(events[0]?.stream, stream);
    t.is(events[0]?.metadata.correlationId, 'corr-1');
    t.is(events[0]?.metadata.actor, 'test');
    t.true(events[0]!.recordedAt instanceof Date);
    t.true(Math.abs(events[0]!.recordedAt.getTime() - Date.now()) < 60_000);
  });

  test('a missing stream reads as empty in both directions', async (t) => {
    const { store } = t.context;
    t.deepEqual(await store.readStream(`${prefix()}-missing`), []);
    t.deepEqual(await store.readStream(`${prefix()}-missing`, { direction: 'backwards' }), []);
  });

  test('expected-revision rules: no_stream, stream_exists, exact revision and any', async (t) => {
    const { store } = t.context;
    const stream = `${prefix()}-rules`;
    const conflict = await t.throwsAsync(store.append(stream, [newEvent('X', 1)], 'stream_exists'), {
      instanceOf: ConcurrencyConflict,
    });
    t.is(conflict?.actual, 'no_stream');
    const exact = await t.throwsAsync(store.append(stream, [newEvent('X', 1)], 0), { instanceOf: ConcurrencyConflict });
    t.is(exact?.actual, 'no_stream');

    await store.append(stream, [newEvent('X', 1)], 'no_stream');
    const again = await t.throwsAsync(store.append(stream, [newEvent('X', 2)], 'no_stream'), {
      instanceOf: ConcurrencyConflict,
    });
    t.is(again?.actual, 0);

    t.is((await store.append(stream, [newEvent('X', 2)], 'stream_exists')).nextExpectedRevision, 1);
    t.is((await store.append(stream, [newEvent('X', 3)], 1)).nextExpectedRevision, 2);
    const stale = await t.throwsAsync(store.append(stream, [newEvent('X', 4)], 1), { instanceOf: ConcurrencyConflict });
    t.is(stale?.actual, 2);
    t.is(stale?.stream, stream);
    t.is((await store.append(stream, [newEvent('X', 4)], 'any')).nextExpectedRevision, 3);
    t.is((await store.append(`${prefix()}-fresh`, [newEvent('X', 1)], 'any')).nextExpectedRevision, 0);
    t.is((await store.readStream(stream)).length, 4);
  });

  test('a failed append writes nothing (appends are atomic)', async (t) => {
    const { store } = t.context;
    const stream = `${prefix()}-atomic`;
    await store.append(stream, [newEvent('X', 1)], 'no_stream');
    await t.throwsAsync(store.append(stream, [newEvent('X', 2), newEvent('X', 3)], 5), { instanceOf: ConcurrencyConflict });
    t.deepEqual((await store.readStream(stream)).map((e) => e.data), [{ n: 1 }]);
  });

  test('re-appending the same event ids at the same expected revision does not duplicate', async (t) => {
    const { store } = t.context;
    const stream = `${prefix()}-idem`;
    const batch = [newEvent('X', 1), newEvent('X', 2)];
    const first = await store.append(stream, batch, 'no_stream');
    const retry = await store.append(stream, batch, 'no_stream');
    t.is(retry.nextExpectedRevision, first.nextExpectedRevision);
    const next = [newEvent('X', 3)];
    await store.append(stream, next, 1);
    await store.append(stream, next, 1);
    t.deepEqual((await store.readStream(stream)).map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  test('stream reads: forwards and backwards, from a revision, with a limit', async (t) => {
    const { store } = t.context;
    const stream = `${prefix()}-read`;
    await store.append(stream, [0, 1, 2, 3, 4].map((n) => newEvent('X', n)), 'no_stream');
    const revs = (events: RecordedEvent[]) => events.map((e) => e.revision);
    t.deepEqual(revs(await store.readStream(stream, { fromRevision: 2 })), [2, 3, 4]);
    t.deepEqual(revs(await store.readStream(stream, { fromRevision: 1, limit: 2 })), [1, 2]);
    t.deepEqual(revs(await store.readStream(stream, { direction: 'backwards' })), [4, 3, 2, 1, 0]);
    t.deepEqual(revs(await store.readStream(stream, { direction: 'backwards', fromRevision: 2 })), [2, 1, 0]);
    t.deepEqual(revs(await store.readStream(stream, { direction: 'backwards', limit: 2 })), [4, 3]);
    t.deepEqual(revs(await store.readStream(stream, { fromRevision: 9 })), []);
  });

  test('$all reads: both directions, inclusive forwards and exclusive backwards, filters and limits', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-one`, [newEvent('A', 1), newEvent('B', 2)], 'no_stream');
    await store.append(`${p}-two`, [newEvent('A', 3)], 'no_stream');
    await store.append(`${p}-one`, [newEvent('C', 4)], 1);
    const mine = { streamPrefixes: [p] };

    const forwards = await store.readAll({ filter: mine });
    t.deepEqual(forwards.map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    for (let i = 1; i < forwards.length; i++) t.true(store.isAfter(forwards[i]!.position, forwards[i - 1]!.position));

    const backwards = await store.readAll({ direction: 'backwards', filter: mine });
    t.deepEqual(backwards.map((e) => e.data), [{ n: 4 }, { n: 3 }, { n: 2 }, { n: 1 }]);

    const fromSecond = await store.readAll({ from: forwards[1]!.position, filter: mine });
    t.deepEqual(fromSecond.map((e) => e.data), [{ n: 2 }, { n: 3 }, { n: 4 }], 'forwards includes its start');
    const beforeThird = await store.readAll({ direction: 'backwards', from: forwards[2]!.position, filter: mine });
    t.deepEqual(beforeThird.map((e) => e.data), [{ n: 2 }, { n: 1 }], 'backwards excludes its start');

    const upTo = await store.readAll({ from: forwards[1]!.position, to: forwards[2]!.position, filter: mine });
    t.deepEqual(upTo.map((e) => e.data), [{ n: 2 }, { n: 3 }], '`to` is an inclusive upper bound');

    const limited = await store.readAll({ filter: mine, limit: 2 });
    t.deepEqual(limited.map((e) => e.data), [{ n: 1 }, { n: 2 }]);

    const onlyA = await store.readAll({ filter: { eventTypes: ['A'], streamPrefixes: [p] } });
    t.deepEqual(onlyA.map((e) => e.data), [{ n: 1 }, { n: 3 }]);
    const aOrC = await store.readAll({ filter: { eventTypes: ['A', 'C'], streamPrefixes: [p] } });
    t.deepEqual(aOrC.map((e) => e.data), [{ n: 1 }, { n: 3 }, { n: 4 }]);

    const head = await store.headPosition();
    t.truthy(head);
    t.false(store.isAfter(forwards[3]!.position, head!));
    const fromEnd = await store.readAll({ direction: 'backwards', from: 'end', filter: mine, limit: 1 });
    t.deepEqual(fromEnd.map((e) => e.data), [{ n: 4 }]);
  });

  test('readAll leaves out the parts a reader omits: metadata reads as its schemaVersion alone, data as null, the rest as ever', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-o`, [newEvent('A', 1), newEvent('B', 2, { metadata: { correlationId: 'corr-2', schemaVersion: 2 } })], 'no_stream');
    const mine = { streamPrefixes: [p] };
    const whole = await store.readAll({ filter: mine });
    t.like(whole[0], { data: { n: 1 }, metadata: { correlationId: 'corr-1', actor: 'test' } });
    const rest = ({ data: _data, metadata: _metadata, ...event }: RecordedEvent) => event;

    const noMetadata = await store.readAll({ filter: mine, omit: ['metadata'] });
    t.deepEqual(noMetadata.map((e) => e.metadata), [{ schemaVersion: 1 }, { schemaVersion: 2 }], 'the version decoding needs is kept');
    t.deepEqual(noMetadata.map((e) => e.data), [{ n: 1 }, { n: 2 }]);
    t.deepEqual(noMetadata.map(rest), whole.map(rest), 'id, type, stream, revision, position and time are read as ever');

    const neither = await store.readAll({ filter: mine, omit: ['data', 'metadata'], from: whole[1]!.position, limit: 1 });
    t.deepEqual(neither.map((e) => [e.data, e.metadata]), [[null, { schemaVersion: 2 }]]);
    t.deepEqual(neither.map(rest), [rest(whole[1]!)]);
  });

  test('a subscription whose page size is smaller than its history hands out every event once, in order, then goes live', async (t) => {
    const { store } = t.context;
    const p = prefix();
    // Subscribed from just before these events, so the pages go over this test's events, not the whole store.
    const { position: before } = await store.append(`${p}-marker`, [newEvent('M', 0)], 'no_stream');
    await store.append(`${p}-s`, [1, 2, 3, 4, 5, 6, 7].map((n) => newEvent('A', n)), 'no_stream');
    const sub = store.subscribeToAll({ from: before, filter: { streamPrefixes: [`${p}-s`] }, pageSize: 2 });
    try {
      const history = await take(sub, 7);
      t.deepEqual(history.events.map((e) => e.data), [1, 2, 3, 4, 5, 6, 7].map((n) => ({ n })));
      await store.append(`${p}-s`, [newEvent('A', 8), newEvent('A', 9), newEvent('A', 10)], 6);
      t.deepEqual((await take(sub, 3)).events.map((e) => e.data), [{ n: 8 }, { n: 9 }, { n: 10 }]);
    } finally {
      await sub.stop();
    }
  });

  test('subscribeToAll catches up, then goes live, in order', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-s`, [newEvent('A', 1), newEvent('A', 2)], 'no_stream');
    const sub = store.subscribeToAll({ filter: { streamPrefixes: [p] } });
    try {
      const history = await take(sub, 2);
      t.deepEqual(history.events.map((e) => e.data), [{ n: 1 }, { n: 2 }]);
      await store.append(`${p}-s`, [newEvent('A', 3)], 1);
      await store.append(`${p}-t`, [newEvent('B', 4)], 'no_stream');
      const live = await take(sub, 2);
      t.deepEqual(live.events.map((e) => e.data), [{ n: 3 }, { n: 4 }]);
    } finally {
      await sub.stop();
    }
  });

  test('a subscription marks the end of its historical part', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-s`, [newEvent('A', 1)], 'no_stream');
    const sub = store.subscribeToAll({ filter: { streamPrefixes: [p] } });
    try {
      const iterator = sub[Symbol.asyncIterator]();
      const kinds: string[] = [];
      while (!kinds.includes('caught-up')) {
        const next = await iterator.next();
        if (next.done) break;
        kinds.push(next.value.kind);
      }
      t.deepEqual(kinds, ['event', 'caught-up']);
    } finally {
      await sub.stop();
    }
  });

  test('subscribeToAll resumes after any position it handed out, with a type filter', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-r`, [1, 2, 3, 4].map((n) => newEvent(n % 2 ? 'Odd' : 'Even', n)), 'no_stream');
    const first = store.subscribeToAll({ filter: { streamPrefixes: [p] } });
    let handedOut: Position;
    try {
      const { events } = await take(first, 2);
      handedOut = events[1]!.position;
    } finally {
      await first.stop();
    }
    const resumed = store.subscribeToAll({ from: handedOut, filter: { streamPrefixes: [p] } });
    try {
      t.deepEqual((await take(resumed, 2)).events.map((e) => e.data), [{ n: 3 }, { n: 4 }]);
    } finally {
      await resumed.stop();
    }
    const odd = store.subscribeToAll({ filter: { streamPrefixes: [p], eventTypes: ['Odd'] } });
    try {
      await store.append(`${p}-r`, [newEvent('Odd', 5)], 3);
      t.deepEqual((await take(odd, 3)).events.map((e) => e.data), [{ n: 1 }, { n: 3 }, { n: 5 }]);
    } finally {
      await odd.stop();
    }
  });

  test('stop ends a pending iteration', async (t) => {
    const { store } = t.context;
    const sub = store.subscribeToAll({ filter: { streamPrefixes: [prefix()] } });
    const iterator = sub[Symbol.asyncIterator]();
    const pending = (async () => {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return 'ended';
      }
    })();
    await new Promise((resolve) => setImmediate(resolve));
    await sub.stop();
    t.is(await pending, 'ended');
  });

  test('concurrent appenders on one stream: exactly one wins each revision, none lost on $all', async (t) => {
    const { store } = t.context;
    const p = prefix();
    const stream = `${p}-race`;
    await store.append(stream, [newEvent('X', -1)], 'no_stream');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => store.append(stream, [newEvent('X', i)], 0)),
    );
    t.is(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    for (const o of outcomes) if (o.status === 'rejected') t.true(o.reason instanceof ConcurrencyConflict);

    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 10; i++) await store.append(`${p}-w${w}`, [newEvent('W', w * 100 + i)], 'any');
      })(),
    );
    await Promise.all(writers);
    const all = await store.readAll({ filter: { streamPrefixes: [`${p}-w`] } });
    t.is(all.length, 80);
    t.is(new Set(all.map((e) => e.id)).size, 80);
    for (let w = 0; w < 8; w++) {
      const perStream = all.filter((e) => e.stream === `${p}-w${w}`).map((e) => e.revision);
      t.deepEqual(perStream, [...Array(10).keys()]);
    }
  });

  test('appendMany writes every stream in request order and reports each revision and position', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-b`, [newEvent('X', 0)], 'no_stream');
    const result = await store.appendMany([
      { stream: `${p}-a`, events: [newEvent('A', 1), newEvent('A', 2)], expected: 'no_stream' },
      { stream: `${p}-b`, events: [newEvent('B', 3)], expected: 0 },
      { stream: `${p}-c`, events: [newEvent('C', 4)], expected: 'any' },
    ]);
    t.deepEqual(result.streams.map((s) => [s.stream, s.nextExpectedRevision]), [
      [`${p}-a`, 1],
      [`${p}-b`, 1],
      [`${p}-c`, 0],
    ]);
    for (const written of result.streams) {
      const [last] = await store.readStream(written.stream, { direction: 'backwards', limit: 1 });
      t.is<Position | undefined, Position | undefined>(written.position, last?.position, `position of ${written.stream}'s last event`);
    }
    const feed = await store.readAll({ filter: { streamPrefixes: [p] } });
    t.deepEqual(feed.map((e) => e.data), [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    for (let i = 1; i < feed.length; i++) t.true(store.isAfter(feed[i]!.position, feed[i - 1]!.position));
    t.is<Position | undefined, Position | undefined>(result.position, feed.at(-1)?.position, "the call's position is its last event's");
  });

  test('appendMany keeps every event its metadata: read from its stream, from $all and by a subscription', async (t) => {
    const { store } = t.context;
    const p = prefix();
    const metadata = { schemaVersion: 3, correlationId: 'request:abc', causationId: 'command:1', actor: 'user:1' };
    await store.appendMany([
      { stream: `${p}-wallet`, events: [newEvent('Credited', 1, { metadata })], expected: 'no_stream' },
      { stream: `${p}-order`, events: [newEvent('Placed', 2, { metadata })], expected: 'no_stream' },
    ]);
    const mine = { streamPrefixes: [p] };
    t.deepEqual((await store.readStream(`${p}-wallet`)).map((e) => e.metadata), [metadata]);
    t.deepEqual((await store.readAll({ filter: mine })).map((e) => e.metadata), [metadata, metadata]);
    const versions = await store.readAll({ filter: mine, omit: ['metadata'] });
    t.deepEqual(versions.map((e) => e.metadata), [{ schemaVersion: 3 }, { schemaVersion: 3 }], 'decoded as version 3');
    const sub = store.subscribeToAll({ filter: mine });
    try {
      t.deepEqual((await take(sub, 2)).events.map((e) => e.metadata), [metadata, metadata]);
    } finally {
      await sub.stop();
    }
  });

  test('an event has one recorded second however it is read: from its stream, from $all, by a subscription', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-s`, [newEvent('Timed', 1)], 'no_stream');
    const [fromStream] = await store.readStream(`${p}-s`);
    const [fromAll] = await store.readAll({ filter: { streamPrefixes: [p] } });
    const sub = store.subscribeToAll({ filter: { streamPrefixes: [p] } });
    try {
      const [live] = (await take(sub, 1)).events;
      // On KurrentDB the client's stream and $all reads give whole seconds, its subscriptions milliseconds (README,
      // "KurrentDB"): the same second, whichever way it is read.
      const second = (at: Date) => Math.floor(at.getTime() / 1000);
      t.is(second(fromAll!.recordedAt), second(fromStream!.recordedAt));
      t.is(second(live!.recordedAt), second(fromStream!.recordedAt));
    } finally {
      await sub.stop();
    }
  });

  test('appendMany with a wrong expected revision: atomic stores write nothing, others stop at the conflict', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-stale`, [newEvent('X', 0)], 'no_stream');
    await store.append(`${p}-taken`, [newEvent('X', 0)], 'no_stream');
    const conflict = await t.throwsAsync(
      store.appendMany([
        { stream: `${p}-first`, events: [newEvent('A', 1)], expected: 'no_stream' },
        { stream: `${p}-stale`, events: [newEvent('A', 2)], expected: 5 },
        { stream: `${p}-last`, events: [newEvent('A', 3)], expected: 'any' },
        { stream: `${p}-taken`, events: [newEvent('A', 4)], expected: 'no_stream' },
      ]),
      { instanceOf: MultiStreamConflict },
    );
    t.true(conflict instanceof ConcurrencyConflict, 'callers that catch ConcurrencyConflict still catch it');
    t.deepEqual(conflict?.conflicts[0], { stream: `${p}-stale`, expected: 5, actual: 0 });
    t.is(conflict?.stream, `${p}-stale`);
    for (const reported of conflict?.conflicts ?? []) t.true([`${p}-stale`, `${p}-taken`].includes(reported.stream));
    const lengths = async () =>
      Object.fromEntries([...(await store.readStreams([`${p}-first`, `${p}-stale`, `${p}-last`, `${p}-taken`]))].map(([s, e]) => [s.slice(p.length + 1), e.length]));
    if (await store.supportsAtomicMultiStream()) {
      t.deepEqual(conflict?.written, []);
      t.deepEqual(await lengths(), { first: 0, stale: 1, last: 0, taken: 1 }, 'nothing written in any stream');
    } else {
      t.deepEqual(conflict?.written.map((w) => [w.stream, w.nextExpectedRevision]), [[`${p}-first`, 0]]);
      t.deepEqual(await lengths(), { first: 1, stale: 1, last: 0, taken: 1 }, 'written up to the conflict');
    }
  });

  test('appendMany retried with the same event ids writes nothing twice', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-b`, [newEvent('X', 0)], 'no_stream');
    const requests = [
      { stream: `${p}-a`, events: [newEvent('A', 1), newEvent('A', 2)], expected: 'no_stream' as const },
      { stream: `${p}-b`, events: [newEvent('B', 3)], expected: 0 },
    ];
    const first = await store.appendMany(requests);
    const retry = await store.appendMany(requests);
    t.deepEqual(retry.streams.map((s) => s.nextExpectedRevision), first.streams.map((s) => s.nextExpectedRevision));
    t.deepEqual((await store.readAll({ filter: { streamPrefixes: [p] } })).map((e) => e.data), [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
  });

  test('appendMany refuses a stream named twice or a request without events, and accepts an empty list', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await t.throwsAsync(
      store.appendMany([
        { stream: `${p}-a`, events: [newEvent('A', 1)], expected: 'any' },
        { stream: `${p}-a`, events: [newEvent('A', 2)], expected: 'any' },
      ]),
      { instanceOf: TypeError, message: /appears twice/ },
    );
    await t.throwsAsync(store.appendMany([{ stream: `${p}-a`, events: [], expected: 'any' }]), { instanceOf: TypeError });
    t.deepEqual(await store.appendMany([]), { streams: [] });
    t.deepEqual(await store.readStream(`${p}-a`), []);
  });

  test('the feed delivers the events of one appendMany in request order (contiguously where atomic)', async (t) => {
    const { store } = t.context;
    const p = prefix();
    const sub = store.subscribeToAll({ filter: { streamPrefixes: [p] } });
    try {
      const batch = [0, 1, 2].map((s) => ({
        stream: `${p}-batch${s}`,
        events: [newEvent('Batched', s * 10), newEvent('Batched', s * 10 + 1)],
        expected: 'no_stream' as const,
      }));
      // Single appends racing the batch on other streams of the same prefix.
      const racing = Array.from({ length: 6 }, (_, i) => store.append(`${p}-single${i}`, [newEvent('Single', 100 + i)], 'no_stream'));
      await Promise.all([store.appendMany(batch), ...racing]);
      const { events } = await take(sub, 12);
      const batched = events.filter((e) => e.type === 'Batched');
      t.deepEqual(batched.map((e) => e.data), [{ n: 0 }, { n: 1 }, { n: 10 }, { n: 11 }, { n: 20 }, { n: 21 }]);
      if (await store.supportsAtomicMultiStream()) {
        const first = events.findIndex((e) => e.type === 'Batched');
        t.deepEqual(events.slice(first, first + 6), batched, 'no other event in between');
      }
    } finally {
      await sub.stop();
    }
  });

  test('concurrent appendMany calls naming the same streams in opposite orders all succeed', async (t) => {
    const { store } = t.context;
    const p = prefix();
    const [x, y] = [`${p}-x`, `${p}-y`];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => {
        const pair = i % 2 ? [x, y] : [y, x];
        return store.appendMany(pair.map((stream) => ({ stream, events: [newEvent('P', i)], expected: 'any' as const })));
      }),
    );
    const read = await store.readStreams([x, y]);
    t.deepEqual(read.get(x)?.map((e) => e.revision), [...Array(8).keys()]);
    t.deepEqual(read.get(y)?.map((e) => e.revision), [...Array(8).keys()]);
  });

  test('readStreams reads several whole streams; a missing one maps to an empty list', async (t) => {
    const { store } = t.context;
    const p = prefix();
    await store.append(`${p}-one`, [newEvent('A', 1), newEvent('A', 2)], 'no_stream');
    await store.append(`${p}-two`, [newEvent('B', 3)], 'no_stream');
    await store.append(`${p}-one`, [newEvent('A', 4)], 1);
    const read = await store.readStreams([`${p}-two`, `${p}-missing`, `${p}-one`]);
    t.deepEqual([...read.keys()].sort(), [`${p}-missing`, `${p}-one`, `${p}-two`]);
    t.deepEqual(read.get(`${p}-one`)?.map((e) => [e.revision, e.data]), [
      [0, { n: 1 }],
      [1, { n: 2 }],
      [2, { n: 4 }],
    ]);
    t.deepEqual(read.get(`${p}-one`), await store.readStream(`${p}-one`));
    t.deepEqual(read.get(`${p}-two`)?.map((e) => e.data), [{ n: 3 }]);
    t.deepEqual(read.get(`${p}-missing`), []);
    t.deepEqual(await store.readStreams([]), new Map());
  });
}
