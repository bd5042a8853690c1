/**
 * Property tests of the ledger: for any interleaving, duplication and reordering of webhooks, polls and
 * refunds for a set of payments, the wallets end where one clean in-order delivery leaves them; and no
 * sequence of redemptions ever overdraws a wallet.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { ingestionService, type IngestionFact } from '../../domain/payments/ingestion.ts';
import type { SquarePayment, SquareRefund } from '../../domain/ports/square.ts';
import type { RuleSetState } from '../../domain/rewards/rule-set.ts';
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

/**
 * The workspace's rules: none before 2026-10-01 (a payment created then is `before_program`), 1 point per $1 of the
 * amount from then, 2 points per $1 of the total from 2026-11-01 09:00. The workspace counts in USD.
 */
const RULE_1 = { ruleId: 'rule-1', version: 1, rule: { kind: 'spend' as const, points: 1, per: 100, basis: 'amount' as const, minimumSpend: 0 }, createdAt: '2026-09-30T00:00:00.000Z' };
const RULE_2 = { ruleId: 'rule-2', version: 2, rule: { kind: 'spend' as const, points: 2, per: 100, basis: 'total' as const, minimumSpend: 0 }, createdAt: '2026-10-30T00:00:00.000Z' };
const RULE_SET: RuleSetState = {
  versions: [RULE_1, RULE_2],
  activeRuleIds: ['rule-2'],
  retiredThrough: 0,
  history: [
    { at: '2026-10-01T00:00:00.000Z', ruleIds: ['rule-1'] },
    { at: '2026-11-01T09:00:00.000Z', ruleIds: ['rule-2'] },
  ],
};
/** When the customer paid: before the program, under rule 1, or under rule 2. */
const PAID_AT = { before: '2026-09-15T10:00:00.000Z', first: '2026-10-20T10:00:00.000Z', second: '2026-11-01T10:00:00.000Z' } as const;

const paymentArb = fc.record({
  amount: fc.integer({ min: 0, max: 50_000 }),
  tip: fc.integer({ min: 0, max: 5_000 }),
  customer: fc.constantFrom<string | null>('cust-ann', 'cust-bob', 'cust-stranger', null),
  refunds: fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 3 }),
  // Mostly the workspace's currency; sometimes another one (`currency_mismatch`: no credit, no reversal).
  currency: fc.constantFrom('USD', 'USD', 'USD', 'JPY'),
  paidAt: fc.constantFrom<keyof typeof PAID_AT>('first', 'first', 'second', 'before'),
});

/**
 * `late`: Square names the payment's customer only in a second completed update (it fills `customer_id`
 * asynchronously); the first completed update, the creation and the poll carry none.
 */
type PaymentSpec = { amount: number; tip: number; customer: string | null; refunds: number[]; currency?: string; paidAt?: keyof typeof PAID_AT; late?: boolean };

function factsFor(index: number, p: PaymentSpec): Fact[] {
  const id = `pay-${index}`;
  const currency = p.currency ?? 'USD';
  const createdAt = PAID_AT[p.paidAt ?? 'second'];
  const base: SquarePayment = {
    id,
    status: 'APPROVED',
    amountMinor: p.amount,
    tipMinor: p.tip,
    totalMinor: p.amount + p.tip,
    currency,
    customerId: p.late ? null : p.customer,
    buyerEmail: null,
    locationId: 'L1',
    orderId: null,
    createdAt,
    updatedAt: createdAt,
  };
  // Completed later, when rule 2 is active whenever the payment was made: the rule of its creation still counts.
  const completed = { ...base, status: 'COMPLETED', updatedAt: '2026-11-01T10:00:05.000Z' };
  const facts: Fact[] = [
    { kind: 'payment', payment: base, source: `webhook:created-${id}` },
    { kind: 'payment', payment: completed, source: `webhook:updated-${id}` },
    { kind: 'payment', payment: completed, source: `poll:${id}` },
  ];
  if (p.late) facts.push({ kind: 'payment', payment: { ...completed, customerId: p.customer, updatedAt: '2026-11-01T10:00:06.000Z' }, source: `webhook:customer-${id}` });
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
      currency,
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
async function deliver(
  facts: Fact[],
  options: { batches?: readonly number[]; inline?: boolean; ruleSet?: RuleSetState; purchases?: string[] } = {},
): Promise<Map<string, number>> {
  const store = new InMemoryEventStore();
  let next = 0;
  const newId = () => `00000000-0000-4000-8000-${String(++next).padStart(12, '0')}`;
  const commands = testCommandPath();
  const ingestion = ingestionService({
    store,
    runtime: { now: () => new Date('2026-11-03T00:00:00Z'), newId },
    hasher: { hashEmail: (e) => `email:${e}`, hashPhone: (p) => `phone:${p}`, hashVerificationCode: (u, p, c) => `code:${u}:${p}:${c}` },
    catchUp: async () => undefined,
    ruleSet: () => options.ruleSet ?? RULE_SET,
    workspace: () => ({ currency: 'USD', country: 'US' }),
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
  // What each purchase stream holds, for a caller comparing decisions beyond the balances (a link credits nothing inline).
  for (const e of store.all) {
    if (!e.stream.startsWith('payment-')) continue;
    const data = e.data as { outcome?: string; customerId?: string | null; identityHashes?: string[] };
    options.purchases?.push(`${e.stream} ${e.type} ${data.outcome ?? ''} ${data.customerId ?? ''} ${data.identityHashes?.join(',') ?? ''}`);
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
      // Some payments get their customer only in a later update (linked to the purchase held for nobody, or not).
      fc.array(fc.record({ spec: paymentArb, late: fc.boolean() }).map(({ spec, late }) => ({ ...spec, late })), { minLength: 1, maxLength: 5 }),
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
        const [alone, together]: [string[], string[]] = [[], []];
        const oneAtATime = await deliver(noisy, { purchases: alone });
        const batched = await deliver(noisy, { batches, inline, purchases: together });
        const sameDecisions = JSON.stringify([...alone].sort()) === JSON.stringify([...together].sort());
        return sameDecisions && batched.get('ann') === oneAtATime.get('ann') && batched.get('bob') === oneAtATime.get('bob');
      },
    ),
    { numRuns: 150 },
  );
  t.true(runs >= 150);
});

test('the clean balance is the rule in force when each payment was made, less the refunded share; nothing before the program or in another currency', async (t) => {
  const facts = [
    ...factsFor(0, { amount: 1099, tip: 200, customer: 'cust-ann', refunds: [], paidAt: 'first' }),
    ...factsFor(1, { amount: 5000, tip: 0, customer: 'cust-ann', refunds: [50], paidAt: 'first' }),
    ...factsFor(2, { amount: 700, tip: 0, customer: 'cust-stranger', refunds: [] }),
    ...factsFor(3, { amount: 1000, tip: 100, customer: 'cust-bob', refunds: [], paidAt: 'second' }),
    ...factsFor(4, { amount: 8000, tip: 0, customer: 'cust-bob', refunds: [30], paidAt: 'before' }),
    ...factsFor(5, { amount: 8000, tip: 0, customer: 'cust-bob', refunds: [30], currency: 'JPY' }),
  ];
  const balances = await deliver(facts);
  // Rule 1: 10 points for $10.99 (amount), 50 for $50 less half refunded (25); nothing for the stranger (held).
  t.is(balances.get('ann'), 10 + 50 - 25);
  // Rule 2: 2 per $1 of the total $11.00 = 22; the payment before the program and the one in yen earn (and lose) nothing.
  t.is(balances.get('bob'), 22);
});

test('no sequence of credits, reversals, redemptions, rewards and expiries ever lets a redemption or a reward overdraw', (t) => {
  const op = fc.oneof(
    fc.record({ type: fc.constant('credit' as const), points: fc.integer({ min: 1, max: 500 }) }),
    fc.record({ type: fc.constant('reverse' as const), points: fc.integer({ min: 1, max: 500 }) }),
    fc.record({ type: fc.constant('redeem' as const), points: fc.integer({ min: 1, max: 500 }) }),
    fc.record({ type: fc.constant('issue' as const), points: fc.integer({ min: 1, max: 500 }), reward: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ type: fc.constant('redeemReward' as const), reward: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ type: fc.constant('void' as const), reward: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ type: fc.constant('expireReward' as const), reward: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ type: fc.constant('expirePoints' as const), points: fc.integer({ min: 1, max: 800 }), day: fc.integer({ min: 1, max: 4 }) }),
  );
  const spending = new Set(['redeem', 'issue']);
  let refused = 0;
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      let state = walletDecider.initialState;
      ops.forEach((o, i) => {
        const now = '2026-11-10T12:00:00.000Z';
        const later = '2026-12-10T12:00:00.000Z';
        const command: WalletCommand =
          o.type === 'credit'
            ? { type: 'CreditPoints', walletId: 'w', tenantId: 't', consumerId: 'c', paymentId: `p${i}`, points: o.points, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: o.points * 100, via: 'purchase' }
            : o.type === 'reverse'
              ? { type: 'ReversePoints', walletId: 'w', tenantId: 't', consumerId: 'c', paymentId: `p${i}`, refundId: `r${i}`, points: o.points }
              : o.type === 'redeem'
                ? { type: 'RedeemPoints', walletId: 'w', points: o.points, idempotencyKey: `k${i}`, reference: null, by: 'm' }
                : o.type === 'issue'
                  ? { type: 'IssueReward', walletId: 'w', issuedRewardId: `ir${o.reward}`, reward: { rewardId: 'rw', version: 1, name: 'n', points: o.points }, idempotencyKey: `k${i}`, by: 'm', now, expiresAt: later }
                  : o.type === 'redeemReward'
                    ? { type: 'RedeemReward', walletId: 'w', issuedRewardId: `ir${o.reward}`, idempotencyKey: `k${i}`, by: 'm', now }
                    : o.type === 'void'
                      ? { type: 'VoidReward', walletId: 'w', issuedRewardId: `ir${o.reward}`, reason: null, by: 'm' }
                      : o.type === 'expireReward'
                        ? { type: 'ExpireReward', walletId: 'w', issuedRewardId: `ir${o.reward}`, now: later }
                        : { type: 'ExpirePoints', walletId: 'w', period: `2027-01-0${o.day}`, points: o.points, rule: 'earned', policyVersion: 1, asOf: later, atEventCount: state.eventCount };
        try {
          const before = state.balance - state.locked;
          const events = walletDecider.decide(command, state);
          state = events.reduce(walletDecider.evolve, state);
          if (events.length && spending.has(o.type)) {
            accepted++;
            if (state.balance - state.locked < 0) throw new Error(`overdrawn from ${before} available`);
          }
          if (state.locked < 0) throw new Error('more points unlocked than were locked');
          if (o.type === 'expirePoints' && events.length && state.balance - state.locked < 0) throw new Error('expiry took locked points');
        } catch (error) {
          if (!(error instanceof DomainError) || !['INSUFFICIENT_POINTS', 'NOT_FOUND', 'REWARD_NOT_ISSUED', 'IDEMPOTENCY_KEY_REUSED', 'CONFLICT'].includes(error.code)) throw error;
          if (spending.has(o.type)) refused++;
        }
      });
    }),
    { numRuns: 500 },
  );
  t.log(`${accepted} redemptions and rewards accepted, ${refused} refused`);
  t.true(accepted > 0 && refused > 0, 'both sides of the rule were exercised');
});

/** A visit rule (10 points, at least `minimumSpend`) in force from 2026-10-01: one visit per order, however it is paid. */
const visitRules = (minimumSpend: number): RuleSetState => ({
  versions: [{ ruleId: 'rule-visit', version: 1, rule: { kind: 'visit', points: 10, minimumSpend }, createdAt: '2026-09-30T00:00:00.000Z' }],
  activeRuleIds: ['rule-visit'],
  retiredThrough: 0,
  history: [{ at: '2026-10-01T00:00:00.000Z', ruleIds: ['rule-visit'] }],
});
const VISIT_RULES = visitRules(0);

const orderArb = fc.record({
  customer: fc.constantFrom<string | null>('cust-ann', 'cust-bob', 'cust-stranger'),
  tenders: fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 1, maxLength: 3 }),
  currency: fc.constantFrom('USD', 'USD', 'USD', 'JPY'),
  refunded: fc.constantFrom(false, false, true),
});

/**
 * Each tender of an order is a payment with the order's id: approved, then completed, then seen again by a poll;
 * with `refunded`, each tender is then refunded in full.
 */
function orderFacts(index: number, o: { customer: string | null; tenders: number[]; currency: string; refunded?: boolean }): Fact[] {
  return o.tenders.flatMap((amount, t) => {
    const base: SquarePayment = {
      id: `pay-${index}-${t}`,
      status: 'APPROVED',
      amountMinor: amount,
      tipMinor: 0,
      totalMinor: amount,
      currency: o.currency,
      customerId: o.customer,
      buyerEmail: null,
      locationId: 'L1',
      orderId: `order-${index}`,
      createdAt: '2026-11-01T10:00:00.000Z',
      updatedAt: '2026-11-01T10:00:00.000Z',
    };
    const completed = { ...base, status: 'COMPLETED', updatedAt: '2026-11-01T10:00:05.000Z' };
    const refund: SquareRefund = {
      id: `ref-${base.id}`,
      paymentId: base.id,
      status: 'COMPLETED',
      amountMinor: amount,
      currency: o.currency,
      createdAt: '2026-11-02T10:00:00.000Z',
      updatedAt: '2026-11-02T10:00:00.000Z',
      locationId: 'L1',
    };
    return [
      { kind: 'payment' as const, payment: base, source: `webhook:created-${base.id}` },
      { kind: 'payment' as const, payment: completed, source: `webhook:updated-${base.id}` },
      { kind: 'payment' as const, payment: completed, source: `poll:${base.id}` },
      ...(o.refunded ? [{ kind: 'refund' as const, refund, source: `webhook:refund-updated-${refund.id}` }] : []),
    ];
  });
}

/**
 * Any interleaving, duplication and batching of split tenders credits each order in the workspace's currency whose
 * tenders reach `minimumSpend` together once (`same_order` for the rest), whichever tender completes first (a shuffled
 * completion may come before the other tenders' approvals, as on the poll path); refunding every tender takes the
 * visit back, batched or one at a time.
 */
async function oneVisitPerOrder(t: ExecutionContext, minimumSpend: number): Promise<void> {
  let runs = 0;
  let belowMinimum = 0;
  const ruleSet = visitRules(minimumSpend);
  await fc.assert(
    fc.asyncProperty(
      fc.array(orderArb, { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.infiniteStream(fc.nat()),
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
      fc.boolean(),
      async (orders, duplicates, shuffleSeeds, batches, inline) => {
        runs++;
        const clean = orders.flatMap((o, i) => orderFacts(i, o));
        const noisy = [...clean, ...duplicates.map((d) => clean[d % clean.length]!)];
        const seeds = shuffleSeeds[Symbol.iterator]();
        for (let i = noisy.length - 1; i > 0; i--) {
          const j = (seeds.next().value as number) % (i + 1);
          [noisy[i], noisy[j]] = [noisy[j]!, noisy[i]!];
        }
        // Orders in the workspace's currency at the minimum count once each for their customer, unless refunded;
        // yen orders not at all.
        const reaches = (o: (typeof orders)[number]) => o.tenders.reduce((a, b) => a + b, 0) >= minimumSpend;
        belowMinimum += orders.filter((o) => !reaches(o)).length;
        const visits = (customer: string) => 10 * orders.filter((o) => o.customer === customer && o.currency === 'USD' && reaches(o) && !o.refunded).length;
        const oneAtATime = await deliver(noisy, { ruleSet });
        const batched = await deliver(noisy, { ruleSet, batches, inline });
        return (
          oneAtATime.get('ann') === visits('cust-ann') &&
          oneAtATime.get('bob') === visits('cust-bob') &&
          batched.get('ann') === visits('cust-ann') &&
          batched.get('bob') === visits('cust-bob')
        );
      },
    ),
    { numRuns: 100 },
  );
  t.true(runs >= 100);
  if (minimumSpend > 0) t.true(belowMinimum > 0, 'orders below the minimum were generated too');
}

test('one visit per order: any interleaving, duplication and batching of split tenders credits each order once (same_order for the rest)', async (t) => {
  await oneVisitPerOrder(t, 0);
});

test('one visit per order at a minimum: split tenders reach it together, whichever completes first, and count one visit', async (t) => {
  // Tenders are 1–5,000 minor units: one alone is often below 6,000, two or three together often reach it.
  await oneVisitPerOrder(t, 6_000);
});
