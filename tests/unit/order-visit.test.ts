/**
 * One visit per order (domain/payments/order-visit.ts) as a specification: the first tender to complete counts the
 * visit on the order's amount seen so far; a declined or voided tender adds nothing, also after it was seen approved.
 */
import test from 'ava';
import { bonusTakenBy, orderVisitDecider, type OrderVisitCommand, type OrderVisitEvent } from '../../domain/payments/order-visit.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const spec = deciderSpec(orderVisitDecider);
const now = '2026-12-07T10:00:00.000Z';
const order = { orderId: 'order-1', tenantId: 't1' };
const tender = (paymentId: string, amountMinor: number, completing = false): OrderVisitCommand => ({ type: 'ObserveTender', ...order, paymentId, amountMinor, completing, now });
const seen = (paymentId: string, amountMinor: number): OrderVisitEvent => ({ type: 'OrderTenderSeen', data: { ...order, paymentId, amountMinor, seenAt: now } });
const counted = (paymentId: string, amountMinor: number): OrderVisitEvent => ({ type: 'OrderVisitCounted', data: { ...order, paymentId, amountMinor, countedAt: now } });

test('two approved halves: the first to complete counts the visit on both', (t) => {
  spec(t).given(seen('a', 450), seen('b', 450)).when(tender('a', 450, true)).then([counted('a', 900)]);
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
