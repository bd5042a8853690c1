/**
 * The Square customer cache: answers kept for their time to live and up to a size, one lookup in flight per
 * customer, failures not kept, and a customer dropped when Square says it changed; the look-ups of one turn of the
 * event loop sent in bulk, per merchant.
 */
import test from 'ava';
import { customerCache, lookupsInBulk, type CustomerContacts } from '../../domain/payments/customer-cache.ts';

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

test('a get after forget does not join the look-up that was in flight before the change: it asks Square again', async (t) => {
  let version = 'old';
  const calls: string[] = [];
  let open: (() => void) | undefined;
  const cache = customerCache(
    async (_tenant, customerId) => {
      const seen = version; // what Square answers when the request is served
      calls.push(`${customerId}@${seen}`);
      if (calls.length === 1) await new Promise<void>((resolve) => (open = resolve));
      return { email: seen === 'old' ? null : 'ann@example.com', phone: null } satisfies CustomerContacts;
    },
    { ttlMs: 60_000, maxEntries: 10, now: () => 0 },
  );
  const lookAhead = cache.get('t1', 'c1'); // the look-ahead at acknowledgement reads Square before the change
  await new Promise((resolve) => setImmediate(resolve));
  version = 'new'; // the barista adds Ann's email; Square sends customer.updated, processed:
  cache.forget('t1', 'c1');
  const batch = cache.get('t1', 'c1'); // the payment's batch, after the change
  const third = cache.get('t1', 'c1'); // joins the new look-up, not the old
  open?.();
  t.deepEqual(await lookAhead, { email: null, phone: null });
  t.deepEqual(await batch, { email: 'ann@example.com', phone: null });
  t.deepEqual(await third, { email: 'ann@example.com', phone: null });
  t.deepEqual(calls, ['c1@old', 'c1@new']);
  t.deepEqual(await cache.get('t1', 'c1'), { email: 'ann@example.com', phone: null }, 'the fresh answer is kept');
  t.is(calls.length, 2);
});

// --- In bulk ------------------------------------------------------------------------------------------------------

/** `lookupsInBulk` over a bulk call that records each call's ids, answering ids starting with `gone` null and `bad` an error. */
function bulkWorld(maxBatch: number) {
  const calls: string[] = [];
  let failNext = false;
  const lookup = lookupsInBulk<string | null>(async (tenantId, ids) => {
    calls.push(`${tenantId}: ${ids.join(',')}`);
    if (failNext) {
      failNext = false;
      throw new Error('Square answered 500');
    }
    return new Map(ids.map((id) => [id, id.startsWith('gone') ? null : id.startsWith('bad') ? new Error(`refused ${id}`) : `contacts of ${id}`]));
  }, maxBatch);
  return { lookup, calls, failNext: () => (failNext = true) };
}

test('look-ups asked for in one turn go to Square in one call per merchant, at most maxBatch ids each', async (t) => {
  const w = bulkWorld(3);
  const answers = await Promise.all([w.lookup('t1', 'a'), w.lookup('t2', 'x'), w.lookup('t1', 'b'), w.lookup('t1', 'c'), w.lookup('t1', 'd'), w.lookup('t1', 'gone-e')]);
  t.deepEqual(answers, ['contacts of a', 'contacts of x', 'contacts of b', 'contacts of c', 'contacts of d', null]);
  t.deepEqual(w.calls.sort(), ['t1: a,b,c', 't1: d,gone-e', 't2: x']);
  // A later turn is another call: answers are kept by the cache, not here.
  t.is(await w.lookup('t1', 'a'), 'contacts of a');
  t.is(w.calls.length, 4);
});

test('an id Square refused fails its own look-up only; a call that fails fails the look-ups it carried', async (t) => {
  const w = bulkWorld(100);
  const [good, bad] = await Promise.allSettled([w.lookup('t1', 'a'), w.lookup('t1', 'bad-b')]);
  t.deepEqual(good, { status: 'fulfilled', value: 'contacts of a' });
  t.is(bad.status === 'rejected' && (bad.reason as Error).message, 'refused bad-b');
  w.failNext();
  const failed = await Promise.allSettled([w.lookup('t1', 'a'), w.lookup('t1', 'c')]);
  t.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected']);
  t.is(await w.lookup('t1', 'c'), 'contacts of c', 'and is asked again next time');
});

test('the cache over bulk look-ups: customers of one turn in one call, each kept, one in flight per customer', async (t) => {
  const w = bulkWorld(100);
  const cache = customerCache(async (tenantId, id) => {
    const answer = await w.lookup(tenantId, id);
    return answer === null ? null : { email: answer, phone: null };
  }, { ttlMs: 1000, maxEntries: 10, now: () => 0 });
  await Promise.all([cache.get('t1', 'a'), cache.get('t1', 'b'), cache.get('t1', 'a'), cache.get('t1', 'gone-c')]);
  t.deepEqual(w.calls, ['t1: a,b,gone-c']);
  t.deepEqual(await cache.get('t1', 'b'), { email: 'contacts of b', phone: null });
  t.is(await cache.get('t1', 'gone-c'), null);
  t.is(w.calls.length, 1);
});
