/**
 * The Square customer cache: answers kept for their time to live and up to a size, one lookup in flight per
 * customer, failures not kept, and a customer dropped when Square says it changed.
 */
import test from 'ava';
import { customerCache, type CustomerContacts } from '../../domain/payments/customer-cache.ts';

function world(options: { ttlMs?: number; maxEntries?: number } = {}) {
  let now = 0;
  const calls: string[] = [];
  const gates = new Map<string, () => void>();
  let failNext = false;
  const cache = customerCache(
    async (tenantId, customerId) => {
      calls.push(`${tenantId}/${customerId}`);
      await new Promise<void>((resolve) => (gates.has(customerId) ? gates.set(customerId, resolve) : resolve()));
      if (failNext) {
        failNext = false;
        throw new Error('Square answered 500');
      }
      return { email: `${customerId}@example.com`, phone: null } satisfies CustomerContacts;
    },
    { ttlMs: options.ttlMs ?? 1000, maxEntries: options.maxEntries ?? 10, now: () => now },
  );
  return {
    cache,
    calls,
    advance: (ms: number) => (now += ms),
    hold: (customerId: string) => gates.set(customerId, () => undefined),
    release: (customerId: string) => {
      const open = gates.get(customerId);
      gates.delete(customerId);
      open?.();
    },
    failNext: () => (failNext = true),
  };
}

test('a customer is looked up once within its time to live, and again after it', async (t) => {
  const w = world({ ttlMs: 1000 });
  t.deepEqual(await w.cache.get('t1', 'c1'), { email: 'c1@example.com', phone: null });
  await w.cache.get('t1', 'c1');
  w.advance(999);
  await w.cache.get('t1', 'c1');
  t.deepEqual(w.calls, ['t1/c1']);
  w.advance(1);
  await w.cache.get('t1', 'c1');
  t.deepEqual(w.calls, ['t1/c1', 't1/c1']);
  t.like(w.cache.stats(), { hits: 2, misses: 2 });
});

test('tenants do not share entries: the same Square customer id at two tenants is two lookups', async (t) => {
  const w = world();
  await w.cache.get('t1', 'c1');
  await w.cache.get('t2', 'c1');
  t.deepEqual(w.calls, ['t1/c1', 't2/c1']);
});

test('concurrent payments of one customer share one lookup in flight', async (t) => {
  const w = world();
  w.hold('c1');
  const all = Promise.all(Array.from({ length: 20 }, () => w.cache.get('t1', 'c1')));
  await new Promise((resolve) => setImmediate(resolve));
  w.release('c1');
  const answers = await all;
  t.is(w.calls.length, 1);
  t.true(answers.every((a) => a?.email === 'c1@example.com'));
  t.like(w.cache.stats(), { misses: 1, shared: 19 });
});

test('a failed lookup is not kept: the retried webhook asks Square again', async (t) => {
  const w = world();
  w.failNext();
  await t.throwsAsync(w.cache.get('t1', 'c1'), { message: /500/ });
  t.truthy(await w.cache.get('t1', 'c1'));
  t.is(w.calls.length, 2);
});

test('the least recently used entry goes first when the cache is full', async (t) => {
  const w = world({ maxEntries: 2 });
  await w.cache.get('t1', 'a');
  await w.cache.get('t1', 'b');
  await w.cache.get('t1', 'a');
  await w.cache.get('t1', 'c');
  await w.cache.get('t1', 'a');
  await w.cache.get('t1', 'b');
  t.deepEqual(w.calls, ['t1/a', 't1/b', 't1/c', 't1/b']);
  t.is(w.cache.stats().size, 2);
});

test('forget drops the customer, and an answer in flight when it changed is not kept', async (t) => {
  const w = world();
  await w.cache.get('t1', 'c1');
  w.cache.forget('t1', 'c1');
  await w.cache.get('t1', 'c1');
  t.is(w.calls.length, 2);
  w.hold('c2');
  const early = w.cache.get('t1', 'c2');
  await new Promise((resolve) => setImmediate(resolve));
  w.cache.forget('t1', 'c2');
  w.release('c2');
  await early;
  await w.cache.get('t1', 'c2');
  t.is(w.calls.filter((c) => c === 't1/c2').length, 2, 'the answer that started before the change was not cached');
});
