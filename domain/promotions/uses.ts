/**
 * The uses of a promotion with a limit per customer per day, one stream per promotion, customer and local day
 * (`promotion-uses-<promotionId>-<customerKey>-<localDate>`; the key: `customerKeyOf` in payments/promotion-uses.ts). Ingestion reads it with the payments it decides
 * and appends to it at the revision it read, so two payments of one customer decided at once (two batches, two
 * processes) cannot both take the last use: the second conflicts and is decided again on the fresh count.
 *
 * The limit counts purchases, not payments: the tenders of one Square order (gift card + card) are one purchase, so
 * each use records its payment's order and a tender of an order already counted takes no further use.
 */
import type { Decider } from '../shared/decider.ts';
import { promotionUseEvents, type PromotionUseEvent } from './events.ts';

export type { PromotionUseEvent } from './events.ts';

/** One payment that used the promotion, and its Square order (null: a payment without one, its own purchase). */
export interface PromotionUse {
  paymentId: string;
  orderId: string | null;
}

export interface PromotionUsesState {
  /** The payments that used it, in order. */
  uses: readonly PromotionUse[];
}

export type PromotionUsesCommand = {
  type: 'CountPromotionUse';
  tenantId: string;
  promotionId: string;
  customerKey: string;
  localDate: string;
  paymentId: string;
  orderId: string | null;
  now: string;
};

export const PROMOTION_USES_STREAM_PREFIX = 'promotion-uses-';
export const promotionUsesStream = (promotionId: string, customerKey: string, localDate: string) => `${PROMOTION_USES_STREAM_PREFIX}${promotionId}-${customerKey}-${localDate}`;

/** The purchase a payment is part of: its order when it has one, else the payment alone. */
const purchaseOf = (use: PromotionUse): string => (use.orderId !== null ? `order:${use.orderId}` : `payment:${use.paymentId}`);

/**
 * The distinct purchases that used the promotion other than `payment`'s own: a use by another tender of its order
 * is its own purchase's, and does not count against it.
 */
export function purchasesOtherThan(state: PromotionUsesState, payment: PromotionUse): number {
  const own = purchaseOf(payment);
  return new Set(state.uses.filter((u) => u.paymentId !== payment.paymentId).map(purchaseOf).filter((p) => p !== own)).size;
}

export const promotionUsesDecider: Decider<PromotionUsesCommand, PromotionUseEvent, PromotionUsesState> = {
  codec: promotionUseEvents,
  initialState: { uses: [] },
  decide(command, state) {
    if (state.uses.some((u) => u.paymentId === command.paymentId)) return [];
    const { tenantId, promotionId, customerKey, localDate, paymentId, orderId, now } = command;
    return [{ type: 'PromotionUseCounted', data: { tenantId, promotionId, customerKey, localDate, paymentId, orderId, countedAt: now } }];
  },
  evolve(state, event) {
    switch (event.type) {
      case 'PromotionUseCounted': {
        const { paymentId, orderId } = event.data;
        return state.uses.some((u) => u.paymentId === paymentId) ? state : { uses: [...state.uses, { paymentId, orderId }] };
      }
      default: {
        const unexpected: never = event.type;
        return unexpected;
      }
    }
  },
};
