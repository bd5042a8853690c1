/**
 * One Square order, as visit rules count it (stream `square-order-<orderId>`). Square splits one order across
 * tenders (gift card + card): several payments with one `order_id`. A visit rule credits one visit per order:
 * the first tender of the order to complete with the order's amount seen so far (every tender seen before,
 * approved, pending or completed, and this one) at the visit's minimum counts the visit; later tenders of the order
 * earn nothing (`same_order`). A tender completing below it counts nothing (`zero_points`), and a later one counts
 * the visit on the larger amount then seen: tenders completing before Tally saw the others (a poll, which sees only
 * completed payments, or webhooks out of order) reach the minimum together. Until 2026-12-08 the first completion
 * counted the visit whatever the amount, and an order below the minimum at that moment never earned its visit.
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
import type { RuleRef } from '../rewards/evaluate.ts';
import { appliesAtLocation } from '../rewards/rule.ts';

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
    /** The order's amount seen when it was counted (the visit's minimum applies to it; since 2026-12-08 at least it). */
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

/**
 * `amountMinor`: what the tender adds to the order, 0 when it failed or was canceled. `minimumMinor`: the least
 * amount of the order that earns a visit (the lowest minimum of the visit rules in force for the tender).
 */
export type OrderVisitCommand =
  | { type: 'ObserveTender'; orderId: string; tenantId: string; paymentId: string; amountMinor: number; completing: boolean; minimumMinor: number; now: string }
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
      const total = amountSeen(events.reduce(orderVisitDecider.evolve, state));
      // Below the minimum the visit is not counted yet: a later tender may bring the order to it.
      if (total >= command.minimumMinor) events.push({ type: 'OrderVisitCounted', data: { orderId, tenantId, paymentId, amountMinor: total, countedAt: now } });
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

/**
 * The least amount of an order that earns a visit, for a tender at `locationId`: the lowest minimum of the visit rules
 * in force there (with none there, no amount: the tender earns nothing by a rule, and counts no visit).
 */
export const visitMinimumOf = (rules: readonly RuleRef[], locationId: string): number =>
  Math.min(...rules.flatMap(({ rule }) => (rule.kind === 'visit' && appliesAtLocation(rule, locationId) ? [rule.minimumSpend] : [])));

/** The order's amount seen: every tender's, a failed or canceled one's as 0. */
const amountSeen = (state: OrderVisitState): number => [...state.tenders.values()].reduce((a, b) => a + b, 0);

/**
 * What the order decided for one of its tenders, once its completion was observed: the tender that counted the
 * visit, another tender's (`counts: false`, `same_order`), or none yet (the order so far is below the minimum: the
 * tender is evaluated on that amount and earns no visit).
 */
export function visitOf(state: OrderVisitState, orderId: string, paymentId: string): OrderVisit {
  return state.counted ? { orderId, counts: state.counted.paymentId === paymentId, amountMinor: state.counted.amountMinor } : { orderId, counts: true, amountMinor: amountSeen(state) };
}
