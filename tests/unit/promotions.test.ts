import test from 'ava';
import { promotionPhase } from '../../domain/promotions/service.ts';
import { bestPromotion, localTime, promotionSchema, promotionsNeedOrder, qualifies, type Promotion, type ScheduledPromotion } from '../../domain/promotions/promotion.ts';
import { promotionsDecider } from '../../domain/promotions/decider.ts';
import { promotionReversalFor } from '../../domain/payments/payment.ts';
import { deciderSpec } from '../support/decider-spec.ts';
import { purchaseOrderSchema, type PurchaseOrder } from '../../domain/rewards/order.ts';
import { orderNeed } from '../../domain/payments/order-need.ts';
import { rewardRuleSchema } from '../../domain/rewards/rule.ts';
import type { RuleRef } from '../../domain/rewards/evaluate.ts';
import { promotionUsesDecider, promotionUsesStream, purchasesOtherThan, type PromotionUseEvent } from '../../domain/promotions/uses.ts';
import { countedKeysOf, foldUses, UsesInBatch } from '../../domain/payments/promotion-uses.ts';
import { ingestionService } from '../../domain/payments/ingestion.ts';
import type { SquarePayment } from '../../domain/ports/square.ts';
import type { RuleSetState } from '../../domain/rewards/rule-set.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';
import type { Position, RecordedEvent } from '../../domain/ports/event-store.ts';

const scheduled = (promotion: Partial<Promotion>, over: Partial<ScheduledPromotion> = {}): ScheduledPromotion => ({
  promotionId: over.promotionId ?? 'p1',
  promotion: { name: 'Promo', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-01-01', ...promotion },
  timeZone: 'America/New_York',
  scheduledAt: '2026-12-01T00:00:00Z',
  endedAt: null,
  ...over,
});

const purchase = (createdAt: string, over: { basePoints?: number; amountMinor?: number; locationId?: string; uses?: number | null; order?: PurchaseOrder | null } = {}) => ({
  createdAt,
  locationId: over.locationId ?? 'L1',
  amountMinor: over.amountMinor ?? 1000,
  order: over.order ?? null,
  basePoints: over.basePoints ?? 10,
  usesToday: () => (over.uses === undefined ? 0 : over.uses),
});

test('local time follows the IANA database across both daylight-saving changes', (t) => {
  // New York: EST (UTC−5) until 2027-03-14 02:00, EDT (UTC−4) until 2027-11-07 02:00.
  t.deepEqual(localTime('2027-03-14T06:59:00Z', 'America/New_York'), { date: '2027-03-14', weekday: 'SUN', minutes: 1 * 60 + 59 });
  t.deepEqual(localTime('2027-03-14T07:00:00Z', 'America/New_York'), { date: '2027-03-14', weekday: 'SUN', minutes: 3 * 60 }, '02:00 does not exist: 03:00');
  t.deepEqual(localTime('2027-11-07T05:30:00Z', 'America/New_York'), { date: '2027-11-07', weekday: 'SUN', minutes: 1 * 60 + 30 }, '01:30 EDT');
  t.deepEqual(localTime('2027-11-07T06:30:00Z', 'America/New_York'), { date: '2027-11-07', weekday: 'SUN', minutes: 1 * 60 + 30 }, '01:30 EST, the second time');
  t.deepEqual(localTime('2027-01-05T23:30:00Z', 'Asia/Tokyo'), { date: '2027-01-06', weekday: 'WED', minutes: 8 * 60 + 30 }, 'ahead of UTC: the next day');
});

test('on the day clocks fall back, an hour range covers both of its repeated hours', (t) => {
  const night = [scheduled({ incentive: { type: 'bonus', points: 5 }, hours: [{ from: '01:00', to: '02:00' }] })];
  t.is(bestPromotion(night, purchase('2027-11-07T05:30:00Z'))?.points, 5, '01:30 EDT');
  t.is(bestPromotion(night, purchase('2027-11-07T06:30:00Z'))?.points, 5, '01:30 EST');
  t.is(bestPromotion(night, purchase('2027-11-07T07:00:00Z')), null, '02:00 EST');
});

test('bad promotions name the field: multiplier and bonus bounds, dates, hours, overlaps, repeated days', (t) => {
  const base = { name: 'P', incentive: { type: 'bonus', points: 10 }, startsOn: '2027-01-01' };
  const paths = (body: unknown) => {
    const parsed = promotionSchema.safeParse(body);
    return parsed.success ? [] : parsed.error.issues.map((i) => i.path.join('.'));
  };
  t.deepEqual(paths({ ...base, incentive: { type: 'multiplier', multiplier: 10 } }), []);
  t.deepEqual(paths({ ...base, incentive: { type: 'multiplier', multiplier: 11 } }), ['incentive.multiplier']);
  t.deepEqual(paths({ ...base, incentive: { type: 'multiplier', multiplier: 1.5 } }), ['incentive.multiplier']);
  t.deepEqual(paths({ ...base, incentive: { type: 'bonus', points: 1_000_000 } }), []);
  t.deepEqual(paths({ ...base, incentive: { type: 'bonus', points: 1_000_001 } }), ['incentive.points']);
  t.deepEqual(paths({ ...base, startsOn: '2027-02-30' }), ['startsOn']);
  t.deepEqual(paths({ ...base, endsOn: '2026-12-31' }), ['endsOn']);
  t.deepEqual(paths({ ...base, endsOn: '2027-01-01' }), [], 'a one-day window');
  t.deepEqual(paths({ ...base, hours: [{ from: '14:00', to: '14:00' }] }), ['hours.0.to']);
  t.deepEqual(paths({ ...base, hours: [{ from: '18:00', to: '24:00' }, { from: '06:00', to: '09:00' }] }), [], 'ranges in any order, up to the end of the day');
  t.deepEqual(paths({ ...base, hours: [{ from: '06:00', to: '09:00' }, { from: '12:00', to: '15:00' }, { from: '08:59', to: '10:00' }] }), ['hours.2']);
  t.deepEqual(paths({ ...base, hours: [{ from: '06:00', to: '09:00' }, { from: '09:00', to: '10:00' }] }), [], 'touching ranges share no minute');
  t.deepEqual(paths({ ...base, daysOfWeek: ['MON', 'MON'] }), ['daysOfWeek']);
  t.deepEqual(paths({ ...base, locationIds: ['L1', 'L1'] }), ['locationIds']);
  t.deepEqual(paths({ ...base, itemVariationIds: ['VAR-LATTE'], categoryIds: ['CAT-PASTRY'] }), []);
  t.deepEqual(paths({ ...base, itemVariationIds: [] }), ['itemVariationIds']);
  t.deepEqual(paths({ ...base, itemVariationIds: ['VAR-LATTE', 'VAR-LATTE'] }), ['itemVariationIds']);
  t.deepEqual(paths({ ...base, categoryIds: 'CAT-PASTRY' }), ['categoryIds']);
  t.deepEqual(paths({ ...base, categoryIds: Array.from({ length: 101 }, (_, i) => `CAT-${i}`) }), ['categoryIds']);
});

test('a promotion limited to items applies only to a payment whose order has one: by item variation or by category', (t) => {
  const order = (...lines: { itemVariationId: string | null; categoryIds?: string[] }[]) =>
    purchaseOrderSchema.parse({ lines: lines.map((l) => ({ ...l, quantity: '1', totalMinor: 500 })) });
  const lattes = [scheduled({ itemVariationIds: ['VAR-LATTE'] })];
  const pastries = [scheduled({ categoryIds: ['CAT-PASTRY'] })];
  const either = [scheduled({ itemVariationIds: ['VAR-LATTE'], categoryIds: ['CAT-PASTRY'] })];
  const at = '2027-01-15T12:00:00Z';
  t.is(bestPromotion(lattes, purchase(at, { order: order({ itemVariationId: 'VAR-TEA' }, { itemVariationId: 'VAR-LATTE' }) }))?.points, 10);
  t.is(bestPromotion(lattes, purchase(at, { order: order({ itemVariationId: 'VAR-TEA' }, { itemVariationId: null }) })), null, 'no listed variation');
  t.is(bestPromotion(lattes, purchase(at, { order: null })), null, 'no order, or one that was not read');
  t.is(bestPromotion(pastries, purchase(at, { order: order({ itemVariationId: 'VAR-CROISSANT', categoryIds: ['CAT-BAKERY', 'CAT-PASTRY'] }) }))?.points, 10);
  t.is(bestPromotion(pastries, purchase(at, { order: order({ itemVariationId: 'VAR-LATTE', categoryIds: ['CAT-DRINKS'] }) })), null);
  t.is(bestPromotion(either, purchase(at, { order: order({ itemVariationId: 'VAR-LATTE' }) }))?.points, 10, 'either list qualifies');
  t.is(bestPromotion(either, purchase(at, { order: order({ itemVariationId: 'VAR-X', categoryIds: ['CAT-PASTRY'] }) }))?.points, 10);
  t.truthy(qualifies(lattes[0]!, { ...purchase(at), order: 'not_read_yet' }), 'before the order is read, its items are left aside');
  const paid = { createdAt: at, locationId: 'L1', amountMinor: 1000 };
  t.deepEqual(promotionsNeedOrder([...lattes, ...pastries], paid), { order: true, categories: true });
  t.deepEqual(promotionsNeedOrder(lattes, paid), { order: true, categories: false });
  t.deepEqual(promotionsNeedOrder([scheduled({})], paid), { order: false, categories: false }, 'a promotion without items needs no order');
  t.deepEqual(promotionsNeedOrder([scheduled({ categoryIds: ['CAT-PASTRY'] }, { endedAt: '2027-01-01T00:00:00Z' })], paid), { order: false, categories: false }, 'an ended one needs nothing');
});

test('a promotion limited to items needs the order only of payments it could apply to: in its window, at its locations, above its minimum', (t) => {
  // "Pastry weekend": 9–10 January, at LMAIN, from $10, never ended.
  const weekend = [scheduled({ categoryIds: ['CAT-PASTRY'], startsOn: '2027-01-09', endsOn: '2027-01-10', locationIds: ['LMAIN'], minimumSpend: 1000 })];
  const saturday = { createdAt: '2027-01-09T15:00:00Z', locationId: 'LMAIN', amountMinor: 1500 };
  t.deepEqual(promotionsNeedOrder(weekend, saturday), { order: true, categories: true });
  t.deepEqual(promotionsNeedOrder(weekend, { ...saturday, createdAt: '2027-03-01T15:00:00Z' }), { order: false, categories: false }, 'weeks after its window');
  t.deepEqual(promotionsNeedOrder(weekend, { ...saturday, createdAt: '2027-01-08T15:00:00Z' }), { order: false, categories: false }, 'the day before it');
  t.deepEqual(promotionsNeedOrder(weekend, { ...saturday, locationId: 'LOTHER' }), { order: false, categories: false }, 'at another location');
  t.deepEqual(promotionsNeedOrder(weekend, { ...saturday, amountMinor: 999 }), { order: false, categories: false }, 'below its minimum spend');
});

test('a payment needs its order only for a rule applying at its location, or a promotion that could apply', (t) => {
  const rule = (ruleId: string, rule: unknown): RuleRef => ({ ruleId, version: 1, rule: rewardRuleSchema.parse(rule) });
  const items = rule('items', { kind: 'item', points: 5, itemVariationIds: ['VAR-LATTE'], locationIds: ['LMAIN'] });
  const plain = rule('plain', { kind: 'spend', points: 1, per: 100, basis: 'amount' });
  const atOther = { createdAt: '2027-01-15T12:00:00Z', locationId: 'LOTHER', amountMinor: 1000 };
  t.deepEqual(orderNeed([items], [], { ...atOther, locationId: 'LMAIN' }), { order: true, categories: false });
  t.deepEqual(orderNeed([items], [], atOther), { order: false, categories: false }, 'no rule applies here: location_excluded whatever the order holds');
  t.deepEqual(orderNeed([items, plain], [], atOther), { order: false, categories: false }, 'only the rules applying here count');
  t.deepEqual(orderNeed([], [scheduled({ categoryIds: ['CAT-PASTRY'] })], atOther), { order: false, categories: false }, 'no rule: nothing earns, no promotion adds');
  t.deepEqual(orderNeed([plain], [scheduled({ categoryIds: ['CAT-PASTRY'] })], atOther), { order: true, categories: true });
});

test('a promotion is in force for payments made from its scheduling until its end, and applies only to purchases that earn', (t) => {
  const p = [scheduled({}, { scheduledAt: '2027-01-10T12:00:00Z', endedAt: '2027-01-20T12:00:00Z' })];
  t.is(bestPromotion(p, purchase('2027-01-10T11:59:59Z')), null, 'paid before it was scheduled');
  t.is(bestPromotion(p, purchase('2027-01-10T12:00:00Z'))?.points, 10);
  t.is(bestPromotion(p, purchase('2027-01-20T11:59:59Z'))?.points, 10);
  t.is(bestPromotion(p, purchase('2027-01-20T12:00:00Z')), null, 'paid once it ended');
  t.is(bestPromotion(p, purchase('2027-01-15T12:00:00Z', { basePoints: 0 })), null, 'the rules gave nothing');
  t.is(bestPromotion([scheduled({ incentive: { type: 'multiplier', multiplier: 1 } })], purchase('2027-01-15T12:00:00Z')), null, 'times 1 adds nothing');
});

test('minimum spend, locations and the daily limit', (t) => {
  const p = [scheduled({ minimumSpend: 1000, locationIds: ['L1'], limitPerCustomerPerDay: 2 })];
  t.is(bestPromotion(p, purchase('2027-01-15T12:00:00Z', { amountMinor: 999 })), null);
  t.is(bestPromotion(p, purchase('2027-01-15T12:00:00Z', { locationId: 'L2' })), null);
  t.is(bestPromotion(p, purchase('2027-01-15T12:00:00Z', { uses: 1 }))?.points, 10);
  t.is(bestPromotion(p, purchase('2027-01-15T12:00:00Z', { uses: 2 })), null, 'the limit reached');
  t.is(bestPromotion(p, purchase('2027-01-15T12:00:00Z', { uses: null })), null, 'no customer to count against');
});

test('of several promotions, the one giving the most points applies; on a tie, the first scheduled', (t) => {
  const bonus = scheduled({ name: 'Bonus', incentive: { type: 'bonus', points: 50 } }, { promotionId: 'bonus' });
  const triple = scheduled({ name: 'Triple', incentive: { type: 'multiplier', multiplier: 3 } }, { promotionId: 'triple' });
  t.is(bestPromotion([bonus, triple], purchase('2027-01-15T12:00:00Z', { basePoints: 10 }))?.promotionId, 'bonus');
  t.is(bestPromotion([bonus, triple], purchase('2027-01-15T12:00:00Z', { basePoints: 100 }))?.promotionId, 'triple');
  t.is(bestPromotion([bonus, triple], purchase('2027-01-15T12:00:00Z', { basePoints: 25 }))?.promotionId, 'bonus', '+50 each: the first');
});

test("a refund takes the promotion's points back in the share it takes the rules'", (t) => {
  const state = { contributions: [{ ruleId: 'r1', points: 10, refundBasis: 'amount' as const, reversed: 0 }], promotion: { points: 30, reversed: 0 } };
  t.is(promotionReversalFor(state, 5), 15, 'half the rules: half the promotion');
  t.is(promotionReversalFor({ ...state, contributions: [{ ...state.contributions[0]!, reversed: 5 }], promotion: { points: 30, reversed: 15 } }, 5), 15, 'the rest');
  t.is(promotionReversalFor(state, 3), 9);
  t.is(promotionReversalFor({ ...state, promotion: null }, 5), 0);
  const visit = { contributions: [{ ruleId: 'v', points: 10, refundBasis: 'full_refund' as const, reversed: 0 }], promotion: { points: 7, reversed: 0 } };
  t.is(promotionReversalFor(visit, 0), 0, 'a visit keeps its promotion until the rules give their points back');
  t.is(promotionReversalFor(visit, 10), 7);
});

const promotionSpec = deciderSpec(promotionsDecider);

test("scheduling checks the locations against the merchant's; ending is once", (t) => {
  const spec = promotionSpec(t);
  const promotion = promotionSchema.parse({ name: 'P', incentive: { type: 'bonus', points: 5 }, startsOn: '2027-01-01', locationIds: ['L1', 'LX'] });
  const schedule = { type: 'SchedulePromotion' as const, tenantId: 't', promotionId: 'p1', promotion, timeZone: 'America/New_York', merchantLocationIds: ['L1', 'L2'], by: 'user:1', now: '2026-12-01T00:00:00Z' };
  spec.given().when(schedule).thenThrows('VALIDATION_FAILED', /locationIds\.1: LX is not one of the merchant's Square locations/);
  const ok = { ...schedule, promotion: { ...promotion, locationIds: ['L2'] } };
  const scheduledEvent = { type: 'PromotionScheduled' as const, data: { tenantId: 't', promotionId: 'p1', promotion: ok.promotion, timeZone: 'America/New_York', scheduledBy: 'user:1', scheduledAt: '2026-12-01T00:00:00Z' } };
  spec.given().when(ok).then([scheduledEvent]);
  const end = { type: 'EndPromotion' as const, tenantId: 't', promotionId: 'p1', by: 'user:1', now: '2027-01-02T00:00:00Z' };
  const endedEvent = { type: 'PromotionEnded' as const, data: { tenantId: 't', promotionId: 'p1', endedBy: 'user:1', endedAt: '2027-01-02T00:00:00Z' } };
  spec.given(scheduledEvent).when(end).then([endedEvent]);
  spec.given(scheduledEvent, endedEvent).when(end).thenNothing();
  spec.given().when({ ...end, promotionId: 'nope' }).thenThrows('NOT_FOUND');
});

test('a window that ended before today (in the workspace time zone) is refused: it could never apply', (t) => {
  const spec = promotionSpec(t);
  const window = (startsOn: string, endsOn: string) => promotionSchema.parse({ name: 'P', incentive: { type: 'bonus', points: 5 }, startsOn, endsOn });
  // 2026-12-01T03:00Z is still 30 November in New York.
  const at = { type: 'SchedulePromotion' as const, tenantId: 't', promotionId: 'p1', timeZone: 'America/New_York', merchantLocationIds: [], by: 'user:1', now: '2026-12-01T03:00:00Z' };
  spec.given().when({ ...at, promotion: window('2020-01-01', '2020-01-31') }).thenThrows('VALIDATION_FAILED', /endsOn: endsOn \(2020-01-31\) is already past in America\/New_York \(today is 2026-11-30\)/);
  spec.given().when({ ...at, promotion: window('2026-11-29', '2026-11-29') }).thenThrows('VALIDATION_FAILED', /endsOn/);
  t.notThrows(() => promotionsDecider.decide({ ...at, promotion: window('2026-11-30', '2026-11-30') }, promotionsDecider.initialState), 'ending today still applies to the rest of today');
  t.notThrows(() => promotionsDecider.decide({ ...at, promotion: window('2020-01-01', '2027-01-31') }, promotionsDecider.initialState), 'begun in the past, ending later: from now on');
});

const usesSpec = deciderSpec(promotionUsesDecider);
const use = (paymentId: string, orderId: string | null): PromotionUseEvent => ({
  type: 'PromotionUseCounted',
  data: { tenantId: 't', promotionId: 'p1', customerKey: 'consumer:ann', localDate: '2027-09-14', paymentId, orderId, countedAt: '2027-09-14T18:00:00Z' },
});
const usesOf = (...events: PromotionUseEvent[]) => events.reduce(promotionUsesDecider.evolve, promotionUsesDecider.initialState);

test('the daily limit counts purchases: the tenders of one order are one, a payment without an order its own', (t) => {
  const spec = usesSpec(t);
  const count = { type: 'CountPromotionUse' as const, tenantId: 't', promotionId: 'p1', customerKey: 'consumer:ann', localDate: '2027-09-14', now: '2027-09-14T18:00:00Z' };
  spec.given().when({ ...count, paymentId: 'pay-1', orderId: 'order-A' }).then([use('pay-1', 'order-A')]);
  spec.given(use('pay-1', 'order-A')).when({ ...count, paymentId: 'pay-2', orderId: 'order-A' }).then([use('pay-2', 'order-A')]);
  spec.given(use('pay-1', 'order-A')).when({ ...count, paymentId: 'pay-1', orderId: 'order-A' }).thenNothing();
  // A $40 order paid $20 + $20: the first tender's use does not count against the second, nor the second's against the first.
  const split = usesOf(use('pay-1', 'order-A'), use('pay-2', 'order-A'));
  t.is(purchasesOtherThan(split, { paymentId: 'pay-2', orderId: 'order-A' }), 0);
  t.is(purchasesOtherThan(split, { paymentId: 'pay-1', orderId: 'order-A' }), 0);
  t.is(purchasesOtherThan(split, { paymentId: 'pay-3', orderId: 'order-A' }), 0, 'a third tender of the order');
  t.is(purchasesOtherThan(split, { paymentId: 'pay-4', orderId: 'order-B' }), 1, 'another order: one purchase, however many tenders paid the first');
  t.is(purchasesOtherThan(split, { paymentId: 'pay-5', orderId: null }), 1, 'a payment without an order');
  // Payments without an order count one each, as before; uses written before version 3 (no order) too.
  const alone = usesOf(use('pay-6', null), use('pay-7', null));
  t.is(purchasesOtherThan(alone, { paymentId: 'pay-8', orderId: null }), 2);
  t.is(purchasesOtherThan(alone, { paymentId: 'pay-7', orderId: null }), 1, 'not counting itself');
  t.is(purchasesOtherThan(alone, { paymentId: 'pay-9', orderId: 'order-C' }), 2);
});

test('two tenders of one order decided in one batch, or in two, count one purchase', (t) => {
  const stream = 'promotion-uses-p1-consumer:ann-2027-09-14';
  const metadata = { schemaVersion: 1 };
  const record = (paymentId: string, orderId: string | null) => ({ tenantId: 't', promotionId: 'p1', customerKey: 'consumer:ann', localDate: '2027-09-14', paymentId, orderId, now: '2027-09-14T18:00:00Z' });
  const tender = (paymentId: string) => ({ paymentId, orderId: 'order-A' });
  // One batch: the second tender is decided on the count the first left.
  const one = new UsesInBatch(new Map([[stream, foldUses([])]]));
  t.is(one.count('p1', ['consumer:ann'], '2027-09-14', tender('pay-1')), 0);
  one.record(record('pay-1', 'order-A'), metadata);
  t.is(one.count('p1', ['consumer:ann'], '2027-09-14', tender('pay-2')), 0, 'under a limit of 1, the second tender gets the promotion too');
  one.record(record('pay-2', 'order-A'), metadata);
  t.is(one.count('p1', ['consumer:ann'], '2027-09-14', { paymentId: 'pay-3', orderId: 'order-B' }), 1, 'another order: the day is used');
  // Two batches: the second reads what the first appended (after a conflict, it is decided again on that).
  const stored = one
    .appends(() => 'id')
    .flatMap((a) => a.events)
    .map((e, revision): RecordedEvent => ({ ...e, metadata: e.metadata ?? {}, stream, revision, position: String(revision) as Position, recordedAt: new Date() }));
  t.deepEqual(
    stored.map((e) => promotionUsesDecider.codec.decode(e).data.orderId),
    ['order-A', 'order-A'],
    'each use records the order',
  );
  const two = new UsesInBatch(new Map([[stream, foldUses(stored.slice(0, 1))]]));
  t.is(two.count('p1', ['consumer:ann'], '2027-09-14', tender('pay-2')), 0);
  t.is(two.count('p1', ['consumer:ann'], '2027-09-14', { paymentId: 'pay-3', orderId: 'order-B' }), 1);
  t.is(two.count('p1', ['consumer:ann'], '2027-09-14', { paymentId: 'pay-3', orderId: null }), 1);
});

test('a customer of the workspace is counted under every key their uses were counted under before they joined', (t) => {
  const day = '2027-07-13';
  const metadata = { schemaVersion: 1 };
  const record = (customerKey: string, paymentId: string) => ({ tenantId: 't', promotionId: 'p1', customerKey, localDate: day, paymentId, orderId: null, now: '2027-07-13T14:00:00Z' });
  t.deepEqual(countedKeysOf({ customerId: 'cust-ann' }, { consumerId: 'ann', emailHash: 'email:ann' }), ['consumer:ann', 'email:ann', 'cust-ann']);
  t.deepEqual(countedKeysOf({ customerId: null }, { consumerId: 'ann', emailHash: 'email:ann' }), ['consumer:ann', 'email:ann']);
  t.deepEqual(countedKeysOf({ customerId: 'cust-ann' }, { consumerId: null, emailHash: 'email:ann' }), ['email:ann'], 'not a customer of the workspace: one key, as before');
  t.deepEqual(countedKeysOf({ customerId: null }, { consumerId: null, emailHash: null }), []);
  const verified = { verifiedEmailHashes: ['email:ann', 'email:ann-work'] };
  t.deepEqual(countedKeysOf({ customerId: 'cust-ann' }, { consumerId: 'ann', emailHash: null, ...verified }), ['consumer:ann', 'cust-ann', 'email:ann', 'email:ann-work'], 'and the emails she verified');
  t.deepEqual(countedKeysOf({ customerId: 'cust-x' }, { consumerId: null, emailHash: null, ...verified }), ['cust-x'], 'only for a customer of the workspace');
  const keys = ['consumer:ann', 'email:ann', 'cust-ann'];
  const streams = keys.map((key) => [promotionUsesStream('p1', key, day), foldUses([])] as const);
  const uses = new UsesInBatch(new Map(streams));
  uses.record(record('email:ann', 'pay-1'), metadata);
  t.is(uses.count('p1', keys, day, { paymentId: 'pay-2', orderId: null }), 1, 'the use counted under her email before she joined');
  uses.record(record('cust-ann', 'pay-2'), metadata);
  t.is(uses.count('p1', keys, day, { paymentId: 'pay-3', orderId: null }), 2, 'and under her Square customer');
  t.is(uses.count('p1', ['email:ann'], day, { paymentId: 'pay-3', orderId: null }), 1);
  t.is(uses.count('p1', [...keys, 'email:other'], day, { paymentId: 'pay-3', orderId: null }), null, 'a key not read: not counted, so the promotion does not apply');
  t.deepEqual(uses.appends(() => 'id').map((a) => a.stream), [promotionUsesStream('p1', 'email:ann', day), promotionUsesStream('p1', 'cust-ann', day)], 'each use on the stream of the key it was recorded under');
});

/**
 * An in-memory ingestion under "+50, once a day" on 2027-07-13 (1 point per $1): Square's customers' contacts, the
 * workspace's members by identity hash and their verified emails are maps the test changes; the store's reads are
 * recorded, and so are the consumers whose verified emails were asked for.
 */
function onceADayIngestion(options: { verifiedEmails?: boolean } = {}) {
  const rule = { ruleId: 'rule-1', version: 1, rule: { kind: 'spend' as const, points: 1, per: 100, basis: 'amount' as const, minimumSpend: 0 }, createdAt: '2027-01-01T00:00:00.000Z' };
  const ruleSet: RuleSetState = { versions: [rule], activeRuleIds: ['rule-1'], retiredThrough: 0, history: [{ at: '2027-01-01T00:00:00.000Z', ruleIds: ['rule-1'] }] };
  const promotion = scheduled({ name: 'Once a day', incentive: { type: 'bonus', points: 50 }, startsOn: '2027-07-13', endsOn: '2027-07-13', limitPerCustomerPerDay: 1 });
  const contacts = new Map<string, { email: string | null; phone: string | null }>();
  const members = new Map<string, string>();
  const store = new InMemoryEventStore();
  const reads: string[][] = [];
  const emailsAskedFor: string[][] = [];
  const readStreams = store.readStreams.bind(store);
  store.readStreams = async (streams) => (reads.push([...streams]), readStreams(streams));
  let next = 0;
  const ingestion = ingestionService({
    store,
    runtime: { now: () => new Date('2027-07-13T20:00:00Z'), newId: () => `00000000-0000-4000-8000-${String(++next).padStart(12, '0')}` },
    hasher: { hashEmail: (e) => `email:${e}`, hashPhone: (p) => `phone:${p}`, hashVerificationCode: (u, p, c) => `code:${u}:${p}:${c}` },
    catchUp: async () => undefined,
    ruleSet: () => ruleSet,
    workspace: () => ({ currency: 'USD', country: 'US' }),
    promotions: () => [promotion],
    customerContacts: async (_tenantId, customerId) => contacts.get(customerId) ?? null,
    consumersByIdentity: async (sets) => sets.map((hashes) => hashes.map((h) => members.get(h)).find(Boolean)),
    ...(options.verifiedEmails === false
      ? {}
      : {
          verifiedEmailsOf: async (consumerIds: readonly string[]) => {
            emailsAskedFor.push([...consumerIds]);
            return new Map(consumerIds.map((id) => [id, [...members].filter(([hash, owner]) => owner === id && hash.startsWith('email:')).map(([hash]) => hash)]));
          },
        }),
    walletIdFor: (tenantId, consumerId) => `${tenantId}:${consumerId}`,
    inlineWalletEffects: true,
    wallets: testCommandPath(),
  });
  const pay = async (id: string, at: string, buyer: Pick<SquarePayment, 'customerId' | 'buyerEmail'>) => {
    const payment: SquarePayment = { id, status: 'COMPLETED', amountMinor: 1000, tipMinor: 0, totalMinor: 1000, currency: 'USD', locationId: 'L1', orderId: null, createdAt: at, updatedAt: at, ...buyer };
    const [result] = await ingestion.ingestBatch([{ kind: 'payment', tenantId: 't', merchantId: 'M1', payment, source: `poll:${id}`, metadata: {} }]);
    return result?.ok ? result.result : result;
  };
  return { store, reads, emailsAskedFor, contacts, members, pay };
}

test('a buyer who pays, registers and pays again on one day gets a limited promotion once (by email, and by Square customer)', async (t) => {
  const { store, reads, contacts, members, pay } = onceADayIngestion({ verifiedEmails: false });
  // Ann pays online by email alone; Bo as a Square customer Square has no contact for (he joins by the phone he adds).
  contacts.set('cust-bo', { email: null, phone: null });
  // 10:00 New York: neither is a customer of the workspace yet; the bonus applies and the use is counted by email, by Square customer.
  t.like(await pay('ann-1', '2027-07-13T14:00:00Z', { customerId: null, buyerEmail: 'ann@example.com' }), { outcome: 'stored_anonymous', detail: { points: 60 } });
  t.like(await pay('bo-1', '2027-07-13T14:00:00Z', { customerId: 'cust-bo', buyerEmail: null }), { outcome: 'stored_anonymous', detail: { points: 60 } });
  // 10:05: they register and verify (Bo adds his phone to Square too).
  members.set('email:ann@example.com', 'ann');
  contacts.set('cust-bo', { email: null, phone: '+12125550100' });
  members.set('phone:+12125550100', 'bo');
  // 12:00, the same local day: counted as the same person, no second bonus.
  reads.length = 0;
  t.like(await pay('ann-2', '2027-07-13T16:00:00Z', { customerId: null, buyerEmail: 'ann@example.com' }), { outcome: 'credited', detail: { points: 10 } });
  t.deepEqual(reads.filter((r) => r.some((s) => s.startsWith('promotion-uses-'))), [[promotionUsesStream('p1', 'consumer:ann', '2027-07-13'), promotionUsesStream('p1', 'email:ann@example.com', '2027-07-13')]], 'her keys read together, once');
  t.like(await pay('bo-2', '2027-07-13T16:00:00Z', { customerId: 'cust-bo', buyerEmail: null }), { outcome: 'credited', detail: { points: 10 } });
  t.deepEqual(await store.readStream(promotionUsesStream('p1', 'consumer:ann', '2027-07-13')), [], 'no use was taken at 12:00');
});

test('a use counted under her email before she joined counts when she pays later as a Square customer known by her phone alone', async (t) => {
  const { store, reads, emailsAskedFor, contacts, members, pay } = onceADayIngestion();
  // 10:00 New York: Ann pays online by email before joining; the bonus applies, the use is counted under her email.
  t.like(await pay('ann-1', '2027-07-13T14:00:00Z', { customerId: null, buyerEmail: 'ann@example.com' }), { outcome: 'stored_anonymous', detail: { points: 60 } });
  t.deepEqual(emailsAskedFor, [], 'nobody of the workspace paid: no verified emails read');
  // 10:05: she joins and verifies her email and her phone. 12:00: she pays in store as a Square customer Square knows by her phone alone.
  members.set('email:ann@example.com', 'ann');
  members.set('phone:+12125554240', 'ann');
  contacts.set('cust-ann', { email: null, phone: '+12125554240' });
  reads.length = 0;
  t.like(await pay('ann-2', '2027-07-13T16:00:00Z', { customerId: 'cust-ann', buyerEmail: null }), { outcome: 'credited', detail: { points: 10 } }, 'no second bonus');
  t.deepEqual(emailsAskedFor, [['ann']], 'her verified emails read once');
  t.deepEqual(
    reads.filter((r) => r.some((s) => s.startsWith('promotion-uses-'))),
    [['consumer:ann', 'cust-ann', 'email:ann@example.com'].map((key) => promotionUsesStream('p1', key, '2027-07-13'))],
    'her keys, with her verified email and not her phone, read together, once',
  );
  t.deepEqual(await store.readStream(promotionUsesStream('p1', 'consumer:ann', '2027-07-13')), [], 'no use was taken at 12:00');
  // The next day the promotion is over: no limited promotion in force, so her emails are not read again.
  t.like(await pay('ann-3', '2027-07-14T16:00:00Z', { customerId: 'cust-ann', buyerEmail: null }), { outcome: 'credited', detail: { points: 10 } });
  t.deepEqual(emailsAskedFor, [['ann']], 'no promotion in force: no extra read');
});

test("a promotion's phase is where it stands on its dates in its time zone: upcoming, running through its last day, finished, or ended by hand", (t) => {
  const p = (promotion: Partial<Promotion>, endedAt: string | null = null): ScheduledPromotion => ({
    promotionId: 'p1',
    promotion: { name: 'Weekend double', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-01-05', endsOn: '2027-01-26', ...promotion } as Promotion,
    timeZone: 'America/New_York',
    scheduledAt: '2026-12-01T00:00:00Z',
    endedAt,
  });
  const at = (iso: string) => new Date(iso);
  // January in New York is UTC−5: its days start at 05:00 UTC.
  t.is(promotionPhase(p({}), at('2027-01-05T04:59:59Z')), 'upcoming', 'Jan 4, 23:59 in New York');
  t.is(promotionPhase(p({}), at('2027-01-05T05:00:00Z')), 'running', 'its first day');
  t.is(promotionPhase(p({}), at('2027-01-27T04:59:59Z')), 'running', 'its last day, 23:59');
  t.is(promotionPhase(p({}), at('2027-01-27T05:00:00Z')), 'finished', 'the day after its last');
  t.is(promotionPhase(p({ endsOn: undefined }), at('2030-01-01T00:00:00Z')), 'running', 'no end: running for good');
  t.is(promotionPhase(p({}, '2027-01-10T00:00:00Z'), at('2027-01-12T00:00:00Z')), 'ended', 'ended by hand');
});
