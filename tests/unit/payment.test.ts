/**
 * The purchase decider as a specification: statuses until completion (stale ones ignored), the one completion and
 * its outcome, refunds held until their payment completes and then applied in arrival order, reversals as the
 * floored refunded share, and the claim of held points within the claim window, once.
 */
import test from 'ava';
import { CLAIM_WINDOW_DAYS, paymentDecider, reversalFor, type PaymentFacts, type PaymentCommand, type PaymentEvent, type RefundBasis } from '../../domain/payments/payment.ts';
import { deciderSpec } from '../support/decider-spec.ts';
import { promotionPoints, type ScheduledPromotion } from '../../domain/promotions/promotion.ts';

const spec = deciderSpec(paymentDecider);
const TENANT = 't1';
const RULE = { ruleId: 'rule-1', version: 3, rule: { kind: 'spend' as const, points: 1, per: 100, basis: 'amount' as const, minimumSpend: 0 } };
const COMPLETED_AT = '2026-11-10T12:00:05.000Z';

const facts = (over: Partial<PaymentFacts> = {}): PaymentFacts => ({
  paymentId: 'pay_1',
  status: 'COMPLETED',
  amountMinor: 1099,
  tipMinor: 200,
  totalMinor: 1299,
  currency: 'USD',
  customerId: 'CUST_1',
  locationId: 'L1',
  updatedAt: COMPLETED_AT,
  createdAt: '2026-11-10T11:59:40.000Z',
  ...over,
});

const observe = (over: Partial<PaymentFacts> = {}, extra: Partial<Extract<PaymentCommand, { type: 'ObservePayment' }>> = {}): PaymentCommand => ({
  type: 'ObservePayment',
  tenantId: TENANT,
  merchantId: 'M1',
  payment: facts(over),
  identityHashes: ['h:email'],
  resolution: { kind: 'anonymous' },
  activeRule: RULE,
  source: 'webhook',
  ...extra,
});

const statusObserved = (status: string, updatedAt: string): PaymentEvent => ({
  type: 'PaymentStatusObserved',
  data: { paymentId: 'pay_1', tenantId: TENANT, merchantId: 'M1', status, updatedAt, source: 'webhook' },
});

const completed = (over: Partial<Extract<PaymentEvent, { type: 'PurchaseCompleted' }>['data']> = {}): PaymentEvent => ({
  type: 'PurchaseCompleted',
  data: {
    paymentId: 'pay_1',
    tenantId: TENANT,
    merchantId: 'M1',
    locationId: 'L1',
    amountMinor: 1099,
    tipMinor: 200,
    totalMinor: 1299,
    currency: 'USD',
    customerId: 'CUST_1',
    identityHashes: ['h:email'],
    consumerId: null,
    walletId: null,
    outcome: 'stored_anonymous',
    points: 10,
    ruleId: 'rule-1',
    ruleVersion: 3,
    basis: 'amount',
    basisAmountMinor: 1099,
    completedAt: COMPLETED_AT,
    paymentCreatedAt: '2026-11-10T11:59:40.000Z',
    source: 'webhook',
    walletEffect: 'reactor',
    orderId: null,
    refundBasis: 'amount',
    orderRead: false,
    promotion: null,
    ...over,
    contributions: over.contributions ?? contributionsOf({ ruleId: 'rule-1', ruleVersion: 3, basis: 'amount', basisAmountMinor: 1099, refundBasis: 'amount', points: 10, ...over }),
  },
});

/** The single rule's contribution a purchase of one rule records (none without a rule). */
function contributionsOf(d: { ruleId: string | null; ruleVersion: number | null; basis: 'amount' | 'total' | null; basisAmountMinor: number | null; refundBasis: RefundBasis; points: number }) {
  if (d.ruleId === null || d.ruleVersion === null || d.basis === null || d.basisAmountMinor === null) return [];
  return [{ ruleId: d.ruleId, ruleVersion: d.ruleVersion, kind: d.refundBasis === 'full_refund' ? ('visit' as const) : ('spend' as const), points: d.points, basis: d.basis, basisAmountMinor: d.basisAmountMinor, refundBasis: d.refundBasis }];
}

const refund = (refundId: string, amountMinor: number, status = 'COMPLETED', currency = 'USD'): PaymentCommand => ({
  type: 'ObserveRefund',
  tenantId: TENANT,
  refundId,
  paymentId: 'pay_1',
  status,
  amountMinor,
  currency,
  source: 'webhook',
});
const held = (refundId: string, amountMinor: number, currency: string | null = 'USD'): PaymentEvent => ({
  type: 'RefundHeld',
  data: { paymentId: 'pay_1', tenantId: TENANT, refundId, amountMinor, currency, source: 'webhook' },
});
const applied = (refundId: string, amountMinor: number, pointsReversed: number, wallet: { walletId: string; consumerId: string } | null = null, ruleId = 'rule-1'): PaymentEvent => ({
  type: 'RefundApplied',
  data: {
    paymentId: 'pay_1',
    tenantId: TENANT,
    refundId,
    amountMinor,
    pointsReversed,
    walletId: wallet?.walletId ?? null,
    consumerId: wallet?.consumerId ?? null,
    source: 'webhook',
    walletEffect: 'reactor',
    contributions: pointsReversed > 0 ? [{ ruleId, pointsReversed }] : [],
  },
});

const DAY = 24 * 3600 * 1000;
const claim = (now: string, identityHash = 'h:email'): PaymentCommand => ({ type: 'ClaimHeldPoints', consumerId: 'c9', walletId: 'w9', identityHash, now });
const claimed = (points: number, now: string): Extract<PaymentEvent, { type: 'HeldPointsClaimed' }> => ({
  type: 'HeldPointsClaimed',
  data: { paymentId: 'pay_1', tenantId: TENANT, consumerId: 'c9', walletId: 'w9', points, identityHash: 'h:email', claimedAt: now },
});
const afterCompletion = (ms: number) => new Date(Date.parse(COMPLETED_AT) + ms).toISOString();

test('a status before completion is recorded; one not newer than the last seen is stale and ignored', (t) => {
  spec(t).given().when(observe({ status: 'APPROVED', updatedAt: '2026-11-10T12:00:00.000Z' })).then([statusObserved('APPROVED', '2026-11-10T12:00:00.000Z')]);
  const seen = statusObserved('APPROVED', '2026-11-10T12:00:00.000Z');
  spec(t).given(seen).when(observe({ status: 'PENDING', updatedAt: '2026-11-10T11:59:59.000Z' })).thenNothing();
  spec(t).given(seen).when(observe({ status: 'APPROVED', updatedAt: '2026-11-10T12:00:00.000Z' })).thenNothing();
  spec(t).given(seen).when(observe({ status: 'CANCELED', updatedAt: '2026-11-10T12:00:01.000Z' })).then([statusObserved('CANCELED', '2026-11-10T12:00:01.000Z')]);
});

test('completion happens once, with its outcome; any status after it, even a newer one, changes nothing', (t) => {
  spec(t).given(statusObserved('APPROVED', '2026-11-10T12:00:00.000Z')).when(observe()).then([completed()]);
  spec(t).given(completed()).when(observe()).thenNothing();
  spec(t).given(completed()).when(observe({ status: 'FAILED', updatedAt: '2026-11-11T00:00:00.000Z' })).thenNothing();
});

test('the outcome: credited to a known consumer, held for an unknown one, nothing without a rule or for zero points', (t) => {
  const consumer = { kind: 'consumer' as const, consumerId: 'c1', walletId: 'w1' };
  spec(t).given().when(observe({}, { resolution: consumer })).then([completed({ consumerId: 'c1', walletId: 'w1', outcome: 'credited' })]);
  spec(t).given().when(observe({}, { activeRule: null })).then([completed({ outcome: 'no_rule_no_credit', points: 0, ruleId: null, ruleVersion: null, basis: null, basisAmountMinor: null, refundBasis: 'total' })]);
  spec(t).given().when(observe({ amountMinor: 99, totalMinor: 99, tipMinor: 0 })).then([completed({ outcome: 'zero_points', points: 0, amountMinor: 99, totalMinor: 99, tipMinor: 0, basisAmountMinor: 99 })]);
});

test('who appends the wallet effect is recorded as commanded: inline with batched ingestion, the reactor otherwise', (t) => {
  const consumer = { kind: 'consumer' as const, consumerId: 'c1', walletId: 'w1' };
  spec(t).given().when(observe({}, { resolution: consumer, walletEffect: 'inline' })).then([completed({ consumerId: 'c1', walletId: 'w1', outcome: 'credited', walletEffect: 'inline' })]);
  const credited = completed({ consumerId: 'c1', walletId: 'w1', outcome: 'credited', walletEffect: 'inline' });
  spec(t).given(credited).when({ ...refund('r1', 500), walletEffect: 'inline' } as PaymentCommand).then([
    { type: 'RefundApplied', data: { paymentId: 'pay_1', tenantId: TENANT, refundId: 'r1', amountMinor: 500, pointsReversed: 4, walletId: 'w1', consumerId: 'c1', source: 'webhook', walletEffect: 'inline', contributions: [{ ruleId: 'rule-1', pointsReversed: 4 }] } },
  ]);
});

test('refunds before their payment completes are held, once each, and applied in arrival order at completion', (t) => {
  spec(t).given().when(refund('r1', 500)).then([held('r1', 500)]);
  spec(t).given(held('r1', 500)).when(refund('r1', 500)).thenNothing();
  spec(t).given().when(refund('r1', 500, 'PENDING')).thenNothing();
  // 10 points on the amount 10.99: 3.00 refunded reverses floor(10 × 300 / 1099) = 2; with 5.00 more, floor(10 × 800 / 1099) = 7, so 5 more.
  spec(t).given(held('r2', 300), statusObserved('APPROVED', '2026-11-10T12:00:00.000Z'), held('r1', 500))
    .when(observe())
    .then([completed(), applied('r2', 300, 2), applied('r1', 500, 5)]);
  spec(t).given(completed(), applied('r1', 500, 4)).when(refund('r1', 500)).thenNothing();
  spec(t).given(completed(), applied('r1', 500, 4)).when(refund('r2', 300)).then([applied('r2', 300, 3)]);
});

test('reversalFor: the total reversed is the floored refunded share of the points, never more than was earned', (t) => {
  const purchase = { points: 10, amountMinor: 1099, totalMinor: 1299, refundedMinor: 0, pointsReversed: 0, refundBasis: 'total' as const };
  t.is(reversalFor(purchase, 129), 0, '0.99 points is not a point');
  t.is(reversalFor(purchase, 130), 1);
  t.is(reversalFor({ ...purchase, refundedMinor: 500, pointsReversed: 3 }, 500), 4, 'floor(10 × 1000 / 1299) = 7 in all, 3 already');
  t.is(reversalFor({ ...purchase, refundedMinor: 1000, pointsReversed: 7 }, 299), 3, 'the full refund reverses exactly what was earned');
  t.is(reversalFor({ ...purchase, refundedMinor: 1000, pointsReversed: 7 }, 5000), 3, 'a refund beyond the total is capped at the total');
  t.is(reversalFor({ ...purchase, points: 0 }, 1299), 0);
  t.is(reversalFor({ ...purchase, totalMinor: 0 }, 100), 0);
  // Three refunds of a third each: the sum of the parts equals the whole.
  let state = { points: 100, amountMinor: 300, totalMinor: 300, refundedMinor: 0, pointsReversed: 0, refundBasis: 'total' as const };
  const parts = [100, 100, 100].map((amount) => {
    const points = reversalFor(state, amount);
    state = { ...state, refundedMinor: state.refundedMinor + amount, pointsReversed: state.pointsReversed + points };
    return points;
  });
  t.deepEqual(parts, [33, 33, 34]);
});

test(`held points are claimed within ${CLAIM_WINDOW_DAYS} days of completion (the last instant included), once, by a matching identity`, (t) => {
  const edge = afterCompletion(CLAIM_WINDOW_DAYS * DAY);
  spec(t).given(completed()).when(claim(edge)).then([claimed(10, edge)]);
  spec(t).given(completed()).when(claim(afterCompletion(CLAIM_WINDOW_DAYS * DAY + 1))).thenNothing();
  spec(t).given(completed()).when(claim(afterCompletion(DAY), 'h:other')).thenNothing();
  spec(t).given(completed(), claimed(10, afterCompletion(DAY))).when(claim(afterCompletion(2 * DAY))).thenNothing();
});

test('a claim takes the points not already reversed; nothing when all were reversed or the purchase was not held', (t) => {
  const now = afterCompletion(DAY);
  spec(t).given(completed(), applied('r1', 500, 4)).when(claim(now)).then([claimed(6, now)]);
  spec(t).given(completed(), applied('r1', 1299, 10)).when(claim(now)).thenNothing();
  spec(t).given(completed({ outcome: 'credited', consumerId: 'c1', walletId: 'w1' })).when(claim(now)).thenNothing();
  spec(t).given(statusObserved('APPROVED', '2026-11-10T12:00:00.000Z')).when(claim(now)).thenNothing();
});

const unearned = { points: 0, ruleId: null, ruleVersion: null, basis: null, basisAmountMinor: null, refundBasis: 'total' as const };

test('a payment created before any rule was active earns nothing: before_program', (t) => {
  const consumer = { kind: 'consumer' as const, consumerId: 'c1', walletId: 'w1' };
  spec(t).given().when(observe({}, { resolution: consumer, activeRule: null, beforeProgram: true })).then([completed({ ...unearned, consumerId: 'c1', outcome: 'before_program' })]);
});

test('a payment in another currency than the workspace’s earns nothing: currency_mismatch; a refund in another currency reverses nothing', (t) => {
  spec(t).given().when(observe({ currency: 'JPY' }, { workspaceCurrency: 'USD' })).then([completed({ currency: 'JPY', outcome: 'currency_mismatch', points: 0 })]);
  spec(t).given().when(observe({}, { workspaceCurrency: 'USD' })).then([completed()]);
  spec(t).given().when(observe({}, { workspaceCurrency: null })).then([completed()]); // an unknown workspace currency (connected before it was recorded) is not checked
  spec(t).given(completed()).when(refund('r1', 500, 'COMPLETED', 'EUR')).thenNothing();
  spec(t).given(held('r1', 500, 'EUR')).when(observe()).then([completed()]); // a held refund in another currency is not applied at completion
});

test('refunds by basis: amount (tip excluded), total, and a visit only when refunded in full', (t) => {
  const consumer = { kind: 'consumer' as const, consumerId: 'c1', walletId: 'w1' };
  const paid = { amountMinor: 2000, tipMinor: 500, totalMinor: 2500 };
  // $20 + $5 tip, 1 point per $1 of the amount: 20 points; refunding the $20 reverses all 20 (not 16, the share of the total).
  const onAmount = completed({ ...paid, consumerId: 'c1', walletId: 'w1', outcome: 'credited', points: 20, basisAmountMinor: 2000 });
  spec(t).given().when(observe(paid, { resolution: consumer })).then([onAmount]);
  spec(t).given(onAmount).when(refund('r1', 2000)).then([applied('r1', 2000, 20, { walletId: 'w1', consumerId: 'c1' })]);
  spec(t).given(onAmount).when(refund('r1', 1000)).then([applied('r1', 1000, 10, { walletId: 'w1', consumerId: 'c1' })]);
  // On the total: 25 points; refunding $20 of $25 reverses 20.
  const totalRule = { ...RULE, rule: { ...RULE.rule, basis: 'total' as const } };
  const onTotal = completed({ ...paid, consumerId: 'c1', walletId: 'w1', outcome: 'credited', points: 25, basis: 'total', basisAmountMinor: 2500, refundBasis: 'total' });
  spec(t).given().when(observe(paid, { resolution: consumer, activeRule: totalRule })).then([onTotal]);
  spec(t).given(onTotal).when(refund('r1', 2000)).then([applied('r1', 2000, 20, { walletId: 'w1', consumerId: 'c1' })]);
  // A visit: 10 points; a partial refund reverses nothing, the refund that completes the amount reverses all 10,
  // the tip kept or not (an itemised return at Square's point of sale gives the goods back, not the tip).
  const visitRule = { ruleId: 'rule-v', version: 4, rule: { kind: 'visit' as const, points: 10, minimumSpend: 500 } };
  const visit = completed({ ...paid, consumerId: 'c1', walletId: 'w1', outcome: 'credited', points: 10, ruleId: 'rule-v', ruleVersion: 4, basisAmountMinor: 2000, refundBasis: 'full_refund' });
  spec(t).given().when(observe(paid, { resolution: consumer, activeRule: visitRule })).then([visit]);
  spec(t).given(visit).when(refund('r1', 1500)).then([applied('r1', 1500, 0, { walletId: 'w1', consumerId: 'c1' })]);
  spec(t).given(visit, applied('r1', 1500, 0)).when(refund('r2', 500)).then([applied('r2', 500, 10, { walletId: 'w1', consumerId: 'c1' }, 'rule-v')]);
  spec(t).given(visit).when(refund('r1', 2000)).then([applied('r1', 2000, 10, { walletId: 'w1', consumerId: 'c1' }, 'rule-v')]);
});

test('one visit per order: the tender that counts decides on the order’s amount seen so far; the others are same_order', (t) => {
  const visitRule = { ruleId: 'rule-v', version: 4, rule: { kind: 'visit' as const, points: 10, minimumSpend: 500 } };
  const half = { amountMinor: 450, tipMinor: 0, totalMinor: 450, orderId: 'order-1' };
  const visitData = { ...half, ruleId: 'rule-v', ruleVersion: 4, refundBasis: 'full_refund' as const, tipMinor: 0 };
  spec(t)
    .given()
    .when(observe(half, { activeRule: visitRule, orderVisit: { orderId: 'order-1', counts: true, amountMinor: 900 } }))
    .then([completed({ ...visitData, points: 10, basisAmountMinor: 900 })]);
  spec(t)
    .given()
    .when(observe(half, { activeRule: visitRule, orderVisit: { orderId: 'order-1', counts: false, amountMinor: 900 } }))
    .then([completed({ ...visitData, outcome: 'same_order', points: 0, basisAmountMinor: 450 })]);
});

test('an identity Square learns after the sale is attached to the purchase held for nobody, within the claim window, once', (t) => {
  const attach = (now: string, hashes = ['h:phone']): PaymentCommand => ({ type: 'AttachIdentity', customerId: 'CUST_1', identityHashes: hashes, now, source: 'webhook:c1' });
  const now = afterCompletion(DAY);
  const attached: PaymentEvent = {
    type: 'PurchaseIdentityAttached',
    data: { paymentId: 'pay_1', tenantId: TENANT, customerId: 'CUST_1', identityHashes: ['h:phone'], completedAt: COMPLETED_AT, attachedAt: now, source: 'webhook:c1' },
  };
  spec(t).given(completed()).when(attach(now, ['h:email', 'h:phone'])).then([attached]);
  spec(t).given(completed(), attached).when(attach(now)).thenNothing();
  spec(t).given(completed()).when(attach(afterCompletion(CLAIM_WINDOW_DAYS * DAY + 1))).thenNothing();
  spec(t).given(completed({ outcome: 'credited', consumerId: 'c1', walletId: 'w1' })).when(attach(now)).thenNothing();
  spec(t).given(completed(), attached).when(claim(now, 'h:phone')).then([{ ...claimed(10, now), data: { ...claimed(10, now).data, identityHash: 'h:phone' } }]);
});

test('a customer Square attaches to the payment after it completed is linked to the purchase held for nobody, once; a customer it has is kept', (t) => {
  // The first completed update carried no customer: the points are held with no identity at all.
  const walkIn = completed({ customerId: null, identityHashes: [] });
  const LINKED_AT = afterCompletion(1000);
  const link = (customerId: string | null, identityHashes: string[], tenantId = TENANT): PaymentCommand => ({ type: 'LinkCustomer', tenantId, customerId, identityHashes, updatedAt: LINKED_AT, source: 'webhook:e2' });
  const linked = (customerId: string | null, identityHashes: string[]): PaymentEvent => ({
    type: 'PurchaseCustomerLinked',
    data: { paymentId: 'pay_1', tenantId: TENANT, customerId, identityHashes, completedAt: COMPLETED_AT, linkedAt: LINKED_AT, source: 'webhook:e2' },
  });
  spec(t).given(walkIn).when(link('CUST_1', ['h:email', 'h:email'])).then([linked('CUST_1', ['h:email'])]);
  // A customer with no contacts yet is linked all the same: its later customer.updated attaches to the purchase.
  spec(t).given(walkIn).when(link('CUST_1', [])).then([linked('CUST_1', [])]);
  const now = afterCompletion(DAY);
  spec(t)
    .given(walkIn, linked('CUST_1', []))
    .when({ type: 'AttachIdentity', customerId: 'CUST_1', identityHashes: ['h:phone'], now, source: 'webhook:c1' })
    .then([{ type: 'PurchaseIdentityAttached', data: { paymentId: 'pay_1', tenantId: TENANT, customerId: 'CUST_1', identityHashes: ['h:phone'], completedAt: COMPLETED_AT, attachedAt: now, source: 'webhook:c1' } }]);
  spec(t).given(walkIn, linked('CUST_1', ['h:email'])).when(claim(now)).then([claimed(10, now)]);
  // Once linked, the purchase has its customer: another update (or another customer) changes nothing.
  spec(t).given(walkIn, linked('CUST_1', ['h:email'])).when(link('CUST_1', ['h:email'])).thenNothing();
  spec(t).given(walkIn, linked('CUST_1', ['h:email'])).when(link('CUST_2', ['h:other'])).thenNothing();
  spec(t).given(completed()).when(link('CUST_2', ['h:other'])).thenNothing();
  // Only the buyer's email (a digital receipt, no customer): linked by its identity; nothing new, nothing linked.
  spec(t).given(walkIn).when(link(null, ['h:buyer'])).then([linked(null, ['h:buyer'])]);
  spec(t).given(walkIn, linked(null, ['h:buyer'])).when(link(null, ['h:buyer'])).thenNothing();
  spec(t).given(walkIn, linked(null, ['h:buyer'])).when(link('CUST_1', ['h:buyer', 'h:email'])).then([linked('CUST_1', ['h:email'])]);
  // Credited, claimed or earning nothing: nothing changes. Another merchant's report does not touch it.
  spec(t).given(completed({ customerId: null, outcome: 'credited', consumerId: 'c1', walletId: 'w1' })).when(link('CUST_1', ['h:email'])).thenNothing();
  spec(t).given(walkIn, claimed(10, now)).when(link('CUST_1', ['h:email'])).thenNothing();
  spec(t).given(completed({ customerId: null, outcome: 'zero_points', points: 0 })).when(link('CUST_1', ['h:email'])).thenNothing();
  spec(t).given(walkIn).when(link('CUST_1', ['h:email'], 'another-tenant')).thenNothing();
  spec(t).given().when(link('CUST_1', ['h:email'])).thenNothing();
});

test('a promotion taking the points beyond 2^53 − 1 is refused like the rules\' sum, never recorded rounded or invalid', (t) => {
  const promoted = (incentive: ScheduledPromotion['promotion']['incentive']): ScheduledPromotion => ({
    promotionId: 'promo-1',
    promotion: { name: 'Promo', incentive, startsOn: '2026-11-01' },
    timeZone: 'America/New_York',
    scheduledAt: '2026-11-01T00:00:00Z',
    endedAt: null,
  });
  // One point per minor unit: the largest payment Square can send earns 2^53 − 1 points by the rule alone.
  const perCent = { ...RULE, rule: { ...RULE.rule, per: 1 } };
  const largest = { amountMinor: Number.MAX_SAFE_INTEGER, tipMinor: 0, totalMinor: Number.MAX_SAFE_INTEGER };
  const under = (promotion: ScheduledPromotion) => observe(largest, { activeRule: perCent, promotions: [promotion] });
  spec(t).given().when(under(promoted({ type: 'multiplier', multiplier: 3 }))).thenThrows('UNPROCESSABLE', /too large to be credited in points/);
  spec(t).given().when(under(promoted({ type: 'multiplier', multiplier: 2 }))).thenThrows('UNPROCESSABLE', /too large to be credited in points/);
  spec(t).given().when(under(promoted({ type: 'bonus', points: 1 }))).thenThrows('UNPROCESSABLE', /too large to be credited in points/);
  // Up to the bound, the total is exact.
  const [event] = paymentDecider.decide(observe({ ...largest, amountMinor: Number.MAX_SAFE_INTEGER - 1 }, { activeRule: perCent, promotions: [promoted({ type: 'bonus', points: 1 })] }), paymentDecider.initialState);
  t.is(event?.type === 'PurchaseCompleted' ? event.data.points : null, Number.MAX_SAFE_INTEGER);
  t.is(promotionPoints({ type: 'multiplier', multiplier: 10 }, Math.floor(Number.MAX_SAFE_INTEGER / 9)), Math.floor(Number.MAX_SAFE_INTEGER / 9) * 9);
  t.throws(() => promotionPoints({ type: 'multiplier', multiplier: 10 }, Math.floor(Number.MAX_SAFE_INTEGER / 9) + 1), { message: /too large/ });
});
