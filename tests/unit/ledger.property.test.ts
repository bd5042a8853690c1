/**
 * Property tests of the ledger: for any interleaving, duplication and reordering of webhooks, polls and
 * refunds for a set of payments, the wallets end where one clean in-order delivery leaves them; and no
 * sequence of redemptions ever overdraws a wallet.
 */
import test from 'ava';
import fc from 'fast-check';
import { ingestionService, type IngestionFact } from '../../domain/payments/ingestion.ts';
import type { SquarePayment, SquareRefund } from '../../domain/ports/square.ts';
import { walletDecider, walletStream, type WalletCommand } from '../../domain/wallets/wallet.ts';
import { walletCreditsReactor } from '../../projections/reactors/wallet-credits.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';
import { DomainError } from '../../domain/shared/errors.ts';

const TENANT = 'tenant-1';
const CUSTOMERS: Record<string, { email: string | null; phone: string | null }> = {
  'cust-ann': { email: 'ann@example.com', phone: null },
  'cust-bob': { email: null, phone: '+1-212-555-4240' },
  'cust-stranger': { email: 'who@example.com', phone: null },
};
const CONSUMER_BY_HASH: Record<string, string> = { 'email:ann@example.com': 'ann', 'phone:+12125554240': 'bob' };

type Fact = { kind: 'payment'; payment: SquarePayment; source: string } | { kind: 'refund'; refund: SquareRefund; source: string };

const paymentArb = fc.record({
  amount: fc.integer({ min: 0, max: 50_000 }),
  tip: fc.integer({ min: 0, max: 5_000 }),
  customer: fc.constantFrom<string | null>('cust-ann', 'cust-bob', 'cust-stranger', null),
  refunds: fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 3 }),
});

function factsFor(index: number, p: { amount: number; tip: number; customer: string | null; refunds: number[] }): Fact[] {
  const id = `pay-${index}`;
  const base: SquarePayment = {
    id,
    status: 'APPROVED',
    amountMinor: p.amount,
    tipMinor: p.tip,
    totalMinor: p.amount + p.tip,
    currency: 'USD',
    customerId: p.customer,
    locationId: 'L1',
    orderId: null,
    createdAt: '2026-11-01T10:00:00.000Z',
    updatedAt: '2026-11-01T10:00:00.000Z',
  };
  const completed = { ...base, status: 'COMPLETED', updatedAt: '2026-11-01T10:00:05.000Z' };
  const facts: Fact[] = [
    { kind: 'payment', payment: base, source: `webhook:created-${id}` },
    { kind: 'payment', payment: completed, source: `webhook:updated-${id}` },
    { kind: 'payment', payment: completed, source: `poll:${id}` },
  ];
  // Refund shares (percent of the total) are scaled so that together they never exceed the total.
  const shares = p.refunds.slice(0, 3);
  const sum = shares.reduce((a, b) => a + b, 0);
  shares.forEach((share, r) => {
    const amountMinor = Math.floor(((p.amount + p.tip) * share) / Math.max(100, sum));
    if (amountMinor <= 0) return;
    const refund: SquareRefund = {
      id: `ref-${index}-${r}`,
      paymentId: id,
      status: 'COMPLETED',
      amountMinor,
      currency: 'USD',
      createdAt: '2026-11-02T10:00:00.000Z',
      updatedAt: '2026-11-02T10:00:00.000Z',
      locationId: 'L1',
    };
    facts.push({ kind: 'refund', refund: { ...refund, status: 'PENDING' }, source: `webhook:refund-created-${refund.id}` });
    facts.push({ kind: 'refund', refund, source: `webhook:refund-updated-${refund.id}` });
  });
  return facts;
}

/**
 * Delivers the facts one at a time (`batches` omitted) or in consecutive batches of the given sizes (cycled),
 * with wallet effects appended inline (atomic multi-stream append) or by the reactor.
 */
async function deliver(facts: Fact[], options: { batches?: readonly number[]; inline?: boolean } = {}): Promise<Map<string, number>> {
  const store = new InMemoryEventStore();
  let next = 0;
  const newId = () => `00000000-0000-4000-8000-${String(++next).padStart(12, '0')}`;
  const commands = testCommandPath();
  const ingestion = ingestionService({
    store,
    runtime: { now: () => new Date('2026-11-03T00:00:00Z'), newId },
    hasher: { hashEmail: (e) => `email:${e}`, hashPhone: (p) => `phone:${p}`, hashVerificationCode: (u, p, c) => `code:${u}:${p}:${c}` },
    catchUp: async () => undefined,
    activeRule: async () => ({ ruleId: 'rule-1', version: 1, rule: { kind: 'spend', points: 1, per: 100, basis: 'amount', minimumSpend: 0 } }),
    customerContacts: async (_tenant, customerId) => CUSTOMERS[customerId] ?? null,
    consumersByIdentity: async (sets) => sets.map((hashes) => hashes.map((h) => CONSUMER_BY_HASH[h]).find(Boolean)),
    walletIdFor: (tenantId, consumerId) => `${tenantId}:${consumerId}`,
    inlineWalletEffects: options.inline ?? false,
    wallets: commands,
  });
  const asFact = (fact: Fact): IngestionFact =>
    fact.kind === 'payment'
      ? { kind: 'payment', tenantId: TENANT, merchantId: 'M1', payment: fact.payment, source: fact.source, metadata: {} }
      : { kind: 'refund', tenantId: TENANT, refund: fact.refund, source: fact.source, metadata: {} };
  if (!options.batches?.length) {
    for (const fact of facts) {
      if (fact.kind === 'payment') await ingestion.ingestPayment(TENANT, 'M1', fact.payment, fact.source, {});
      else await ingestion.ingestRefund(TENANT, fact.refund, fact.source, {});
    }
  } else {
    for (let at = 0, b = 0; at < facts.length; b++) {
      const size = Math.max(1, options.batches[b % options.batches.length] ?? 1);
      const results = await ingestion.ingestBatch(facts.slice(at, at + size).map(asFact));
      if (results.some((r) => !r.ok)) throw new Error('a fact of the batch failed');
      at += size;
    }
  }
  // The reactor may see the feed more than once (a crash before its checkpoint): run it twice.
  const reactor = walletCreditsReactor(store, newId, commands);
  const feed = [...store.all];
  // It reads no read model: a query would be a mistake.
  const context = { db: { query: () => Promise.reject(new Error('wallet_credits reads no read model')) } };
  await reactor.handle(feed, context);
  await reactor.handle(feed, context);
  const balances = new Map<string, number>();
  for (const consumer of ['ann', 'bob']) {
    const walletId = `${TENANT}:${consumer}`;
    const events = await store.readStream(walletStream(walletId));
    const state = events.reduce((s, e) => walletDecider.evolve(s, walletDecider.codec.decode(e)), walletDecider.initialState);
    balances.set(consumer, state.balance);
  }
  return balances;
}

test('any interleaving, duplication and reordering of webhooks, polls and refunds ends at the clean balances', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(paymentArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.infiniteStream(fc.nat()),
      async (payments, duplicates, shuffleSeeds) => {
        runs++;
        const clean = payments.flatMap((p, i) => factsFor(i, p));
        const noisy = [...clean, ...duplicates.map((d) => clean[d % clean.length]!)];
        // Fisher–Yates with generated randomness, so a failure shrinks and replays.
        const seeds = shuffleSeeds[Symbol.iterator]();
        for (let i = noisy.length - 1; i > 0; i--) {
          const j = (seeds.next().value as number) % (i + 1);
          [noisy[i], noisy[j]] = [noisy[j]!, noisy[i]!];
        }
        const expected = await deliver(clean);
        const actual = await deliver(noisy);
        return actual.get('ann') === expected.get('ann') && actual.get('bob') === expected.get('bob');
      },
    ),
    { numRuns: 150 },
  );
  t.log(`${runs} generated deliveries`);
  t.true(runs >= 150);
});

test('batched decisions, with wallet effects inline or by the reactor, equal one-at-a-time decisions for any interleaving', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(paymentArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.infiniteStream(fc.nat()),
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
      fc.boolean(),
      async (payments, duplicates, shuffleSeeds, batches, inline) => {
        runs++;
        const clean = payments.flatMap((p, i) => factsFor(i, p));
        const noisy = [...clean, ...duplicates.map((d) => clean[d % clean.length]!)];
        const seeds = shuffleSeeds[Symbol.iterator]();
        for (let i = noisy.length - 1; i > 0; i--) {
          const j = (seeds.next().value as number) % (i + 1);
          [noisy[i], noisy[j]] = [noisy[j]!, noisy[i]!];
        }
        const oneAtATime = await deliver(noisy);
        const batched = await deliver(noisy, { batches, inline });
        return batched.get('ann') === oneAtATime.get('ann') && batched.get('bob') === oneAtATime.get('bob');
      },
    ),
    { numRuns: 150 },
  );
  t.true(runs >= 150);
});

test('the clean balance is the rule applied to each payment, less the refunded share', async (t) => {
  const facts = [
    ...factsFor(0, { amount: 1099, tip: 200, customer: 'cust-ann', refunds: [] }),
    ...factsFor(1, { amount: 5000, tip: 0, customer: 'cust-ann', refunds: [50] }),
    ...factsFor(2, { amount: 700, tip: 0, customer: 'cust-stranger', refunds: [] }),
  ];
  const balances = await deliver(facts);
  // 10 points for $10.99, 50 for $50 less half refunded (25), nothing for the stranger (held, not credited).
  t.is(balances.get('ann'), 10 + 50 - 25);
  t.is(balances.get('bob'), 0);
});

test('no sequence of credits, reversals and redemptions ever lets a redemption overdraw', (t) => {
  const op = fc.oneof(
    fc.record({ type: fc.constant('credit' as const), points: fc.integer({ min: 1, max: 500 }) }),
    fc.record({ type: fc.constant('reverse' as const), points: fc.integer({ min: 1, max: 500 }) }),
    fc.record({ type: fc.constant('redeem' as const), points: fc.integer({ min: 1, max: 500 }) }),
  );
  let refused = 0;
  let redeemed = 0;
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      let state = walletDecider.initialState;
      ops.forEach((o, i) => {
        const command: WalletCommand =
          o.type === 'credit'
            ? { type: 'CreditPoints', walletId: 'w', tenantId: 't', consumerId: 'c', paymentId: `p${i}`, points: o.points, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: o.points * 100, via: 'purchase' }
            : o.type === 'reverse'
              ? { type: 'ReversePoints', walletId: 'w', tenantId: 't', consumerId: 'c', paymentId: `p${i}`, refundId: `r${i}`, points: o.points }
              : { type: 'RedeemPoints', walletId: 'w', points: o.points, idempotencyKey: `k${i}`, reference: null, by: 'm' };
        try {
          const before = state.balance;
          const events = walletDecider.decide(command, state);
          state = events.reduce(walletDecider.evolve, state);
          if (o.type === 'redeem' && events.length) {
            redeemed++;
            if (state.balance < 0) throw new Error(`overdrawn from ${before}`);
          }
        } catch (error) {
          if (!(error instanceof DomainError) || !['INSUFFICIENT_POINTS', 'NOT_FOUND'].includes(error.code)) throw error;
          refused++;
        }
      });
    }),
    { numRuns: 500 },
  );
  t.log(`${redeemed} redemptions accepted, ${refused} refused`);
  t.true(redeemed > 0 && refused > 0, 'both sides of the rule were exercised');
});
