/**
 * One Square order, as visit rules count it (stream `square-order-<orderId>`). Square splits one order across
 * tenders (gift card + card): several payments with one `order_id`. A visit rule credits one visit per order:
 * the first tender of the order to complete counts the visit, on the order's amount seen so far (every tender
 * seen before, approved, pending or completed, and this one); later tenders of the order earn nothing (`same_order`).
 * A tender that failed or was canceled (a declined card, a voided authorisation) adds nothing: it is seen with an
 * amount of 0, also when it was seen approved before (`OrderTenderSeen` again, with 0).
 * Written only while a visit rule is in force: spend rules stay per payment.
 *
 * A promotion's fixed bonus (`incentive.type: 'bonus'`) is likewise given once per order: the first tender that
 * earns it records it here (`OrderBonusApplied`), and later tenders of the order earn by the rules and by any
 * multiplier, not that bonus again (five $2 tenders of a $10 order used to get the bonus five times). The stream is
 * written for that while the workspace has a bonus promotion.
 */
import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';
import type { Decider } from '../shared/decider.ts';
import type { OrderVisit } from './payment.ts';

const minor = z.number().int();

export const orderTenderSeen = EventType.define(
  'OrderTenderSeen',
  z.object({ orderId: z.string(), tenantId: z.string(), paymentId: z.string(), amountMinor: minor, seenAt: z.string() }),
);

export const orderVisitCounted = EventType.define(
  'OrderVisitCounted',
  z.object({
    orderId: z.string(),
    tenantId: z.string(),
    /** The tender whose completion counted the visit. */
    paymentId: z.string(),
    /** The order's amount seen when it was counted (the visit's minimum applies to it). */
    amountMinor: minor,
    countedAt: z.string(),
  }),
);

export const orderBonusApplied = EventType.define(
  'OrderBonusApplied',
  z.object({
    orderId: z.string(),
    tenantId: z.string(),
    /** The tender whose purchase was given the bonus. */
    paymentId: z.string(),
    promotionId: z.string(),
    appliedAt: z.string(),
  }),
);

export const orderVisitEvents = eventCodec(
  { stream: 'square-order-<orderId>', writtenBy: 'orderVisitDecider' },
  orderTenderSeen,
  orderVisitCounted,
  orderBonusApplied,
);
export type OrderVisitEvent = EventsOf<typeof orderVisitEvents>;

export interface OrderVisitState {
  /** Amount of each tender seen, by payment id. */
  tenders: ReadonlyMap<string, number>;
  counted: { paymentId: string; amountMinor: number } | null;
  /** The tender given the order's fixed promotion bonus, if one was. */
  bonus: { paymentId: string; promotionId: string } | null;
}

/** `amountMinor`: what the tender adds to the order, 0 when it failed or was canceled. */
export type OrderVisitCommand =
  | { type: 'ObserveTender'; orderId: string; tenantId: string; paymentId: string; amountMinor: number; completing: boolean; now: string }
  | { type: 'RecordBonus'; orderId: string; tenantId: string; paymentId: string; promotionId: string; now: string };

/** Whether another tender of the order was given its fixed bonus already (then this one is not). */
export const bonusTakenBy = (state: OrderVisitState, paymentId: string): boolean => state.bonus !== null && state.bonus.paymentId !== paymentId;

export const ORDER_STREAM_PREFIX = 'square-order-';
export const orderStream = (orderId: string) => `${ORDER_STREAM_PREFIX}${orderId}`;

export const orderVisitDecider: Decider<OrderVisitCommand, OrderVisitEvent, OrderVisitState> = {
  codec: orderVisitEvents,
  initialState: { tenders: new Map(), counted: null, bonus: null },
  decide(command, state) {
    if (command.type === 'RecordBonus') {
      const { orderId, tenantId, paymentId, promotionId, now } = command;
      return state.bonus ? [] : [{ type: 'OrderBonusApplied', data: { orderId, tenantId, paymentId, promotionId, appliedAt: now } }];
    }
    const events: OrderVisitEvent[] = [];
    const { orderId, tenantId, paymentId, amountMinor, now } = command;
    const seenBefore = state.tenders.get(paymentId);
    // New, or a tender seen before that no longer adds anything (it failed or was canceled since).
    if (seenBefore === undefined || (amountMinor === 0 && seenBefore !== 0)) {
      events.push({ type: 'OrderTenderSeen', data: { orderId, tenantId, paymentId, amountMinor, seenAt: now } });
    }
    if (command.completing && !state.counted) {
      const seen = new Map(state.tenders).set(paymentId, state.tenders.get(paymentId) ?? amountMinor);
      const total = [...seen.values()].reduce((a, b) => a + b, 0);
      events.push({ type: 'OrderVisitCounted', data: { orderId, tenantId, paymentId, amountMinor: total, countedAt: now } });
    }
    return events;
  },
  evolve(state, event) {
    switch (event.type) {
      case 'OrderTenderSeen':
        return { ...state, tenders: new Map(state.tenders).set(event.data.paymentId, event.data.amountMinor) };
      case 'OrderVisitCounted':
        return state.counted ? state : { ...state, counted: { paymentId: event.data.paymentId, amountMinor: event.data.amountMinor } };
      case 'OrderBonusApplied':
        return state.bonus ? state : { ...state, bonus: { paymentId: event.data.paymentId, promotionId: event.data.promotionId } };
      default:
        return unreachable(event);
    }
  },
};

/** What the order decided for one of its tenders, once its completion was observed. */
export function visitOf(state: OrderVisitState, orderId: string, paymentId: string): OrderVisit | null {
  return state.counted ? { orderId, counts: state.counted.paymentId === paymentId, amountMinor: state.counted.amountMinor } : null;
}
