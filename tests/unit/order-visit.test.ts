/**
 * One visit per order (domain/payments/order-visit.ts) as a specification: the first tender to complete with the
 * order's amount seen so far at the minimum counts the visit; a declined or voided tender adds nothing, also after it was seen approved.
 */
import test from 'ava';
import { bonusTakenBy, orderVisitDecider, visitMinimumOf, visitOf, type OrderVisitCommand, type OrderVisitEvent } from '../../domain/payments/order-visit.ts';
import type { RuleRef } from '../../domain/rewards/evaluate.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const spec = deciderSpec(orderVisitDecider);
const now = '2026-12-07T10:00:00.000Z';
const order = { orderId: 'order-1', tenantId: 't1' };
const tender = (paymentId: string, amountMinor: number, completing = false, minimumMinor = 0): any => ({ type: 'ObserveTender', ...order, paymentId, amountMinor, completing, minimumMinor, now });
const seen = (paymentId: string, amountMinor: number): OrderVisitEvent => ({ type: 'OrderTenderSeen', data: { ...order, paymentId, amountMinor, seenAt: now } });
const counted = (paymentId: string, amountMinor: number): OrderVisitEvent => ({ type: 'OrderVisitCounted', data: { ...order, paymentId, amountMinor, countedAt: now } });

test('two approved halves: the first to complete counts the visit on both', (t) => {
  spec(t).given(seen('a', 450), seen('b', 450)).when(tender('a', 450, true)).then([counted('a', 900)]);
});

test('tenders completing before the others are seen reach the minimum together: the one bringing the order to it counts the visit, once', (t) => {
  // A 6.000 order paid 3.000 + 3.000 under a 5.000 minimum, each tender completed before the other was seen (a poll,
  // or webhooks out of order): the first counts nothing, the second counts the visit on both.
  spec(t).given().when(tender('a', 3000, true, 5000)).then([seen('a', 3000)]);
  spec(t).given(seen('a', 3000)).when(tender('b', 3000, true, 5000)).then([seen('b', 3000), counted('b', 6000)]);
  // The other order of arrival ends the same way, the visit with the later tender.
  spec(t).given(seen('b', 3000)).when(tender('a', 3000, true, 5000)).then([seen('a', 3000), counted('a', 6000)]);
  // Counted once: a third tender, or the counting one again, adds no visit.
  spec(t).given(seen('a', 3000), seen('b', 3000), counted('b', 6000)).when(tender('c', 3000, true, 5000)).then([seen('c', 3000)]);
  spec(t).given(seen('a', 3000), seen('b', 3000), counted('b', 6000)).when(tender('b', 3000, true, 5000)).thenNothing();
  // Both approved first (as Square's webhooks say): the first to complete counts the visit on both, as before.
  spec(t).given(seen('a', 3000), seen('b', 3000)).when(tender('a', 3000, true, 5000)).then([counted('a', 6000)]);
});

test('what the order answers each tender: below the minimum no visit yet (not same_order), then the counting tender and same_order', (t) => {
  const fold = (...events: OrderVisitEvent[]) => events.reduce(orderVisitDecider.evolve, orderVisitDecider.initialState);
  t.deepEqual(visitOf(fold(seen('a', 3000)), 'order-1', 'a'), { orderId: 'order-1', counts: true, amountMinor: 3000 }, 'evaluated on the order so far: below the minimum, zero_points');
  const both = fold(seen('a', 3000), seen('b', 3000), counted('b', 6000));
  t.deepEqual(visitOf(both, 'order-1', 'b'), { orderId: 'order-1', counts: true, amountMinor: 6000 });
  t.deepEqual(visitOf(both, 'order-1', 'a'), { orderId: 'order-1', counts: false, amountMinor: 6000 }, 'another tender counted it: same_order');
});

test('the minimum of a tender is the lowest of the visit rules in force at its location; none there, no amount', (t) => {
  const visit = (ruleId: string, minimumSpend: number, locationIds?: string[]): RuleRef => ({ ruleId, version: 1, rule: { kind: 'visit', points: 10, minimumSpend, ...(locationIds ? { locationIds } : {}) } });
  const spend: RuleRef = { ruleId: 's', version: 1, rule: { kind: 'spend', points: 1, per: 100, basis: 'amount', minimumSpend: 0 } };
  t.is(visitMinimumOf([spend, visit('v1', 5000), visit('v2', 1000)], 'L1'), 1000);
  t.is(visitMinimumOf([visit('v1', 5000), visit('v2', 1000, ['L2'])], 'L1'), 5000);
  t.is(visitMinimumOf([spend, visit('v2', 1000, ['L2'])], 'L1'), Number.POSITIVE_INFINITY);
});

test('a declined tender adds nothing: seen with 0, and the visit counts only what was paid', (t) => {
  // A $9 order: a card declined ($9, FAILED), then another card for $9.
  spec(t).given().when(tender('declined', 0)).then([seen('declined', 0)]);
  spec(t).given(seen('declined', 0)).when(tender('paid', 900, true)).then([seen('paid', 900), counted('paid', 900)]);
});

test('a tender seen approved and then voided no longer adds to the order; seen again it changes nothing', (t) => {
  spec(t).given(seen('a', 450)).when(tender('a', 0)).then([seen('a', 0)]);
  spec(t).given(seen('a', 450), seen('a', 0)).when(tender('a', 0)).then([]);
  spec(t).given(seen('a', 450), seen('a', 0)).when(tender('b', 450, true)).then([seen('b', 450), counted('b', 450)]);
  // An approved tender seen again is not seen twice.
  spec(t).given(seen('a', 450)).when(tender('a', 450)).thenNothing();
});

test('a fixed promotion bonus is recorded once per order: the first tender given it keeps it', (t) => {
  const bonus = (paymentId: string): OrderVisitCommand => ({ type: 'RecordBonus', ...order, paymentId, promotionId: 'promo-1', now });
  const applied = (paymentId: string): OrderVisitEvent => ({ type: 'OrderBonusApplied', data: { ...order, paymentId, promotionId: 'promo-1', appliedAt: now } });
  spec(t).given().when(bonus('a')).then([applied('a')]);
  spec(t).given(seen('a', 200), applied('a')).when(bonus('b')).thenNothing();
  spec(t).given(applied('a')).when(bonus('a')).thenNothing();
  const state = [seen('a', 200), applied('a')].reduce(orderVisitDecider.evolve, orderVisitDecider.initialState);
  t.true(bonusTakenBy(state, 'b'), 'another tender of the order finds the bonus taken');
  t.false(bonusTakenBy(state, 'a'), 'the tender that took it, decided again, still may');
});
