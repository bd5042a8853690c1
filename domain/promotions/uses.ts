/**
 * The uses of a promotion with a limit per customer per day, one stream per promotion, customer and local day
 * (`promotion-uses-<promotionId>-<customerKey>-<localDate>`; the key: `customerKeyOf` in payments/promotion-uses.ts). Ingestion reads it with the payments it decides
 * and appends to it at the revision it read, so two payments of one customer decided at once (two batches, two
 * processes) cannot both take the last use: the second conflicts and is decided again on the fresh count.
 */
import type { Decider } from '../shared/decider.ts';
import { promotionUseEvents, type PromotionUseEvent } from './events.ts';

export type { PromotionUseEvent } from './events.ts';

export interface PromotionUsesState {
  /** The payments that used it, in order. */
  payments: readonly string[];
}

export type PromotionUsesCommand = { type: 'CountPromotionUse'; tenantId: string; promotionId: string; customerKey: string; localDate: string; paymentId: string; now: string };

export const PROMOTION_USES_STREAM_PREFIX = 'promotion-uses-';
export const promotionUsesStream = (promotionId: string, customerKey: string, localDate: string) => `${PROMOTION_USES_STREAM_PREFIX}${promotionId}-${customerKey}-${localDate}`;

export const promotionUsesDecider: Decider<PromotionUsesCommand, PromotionUseEvent, PromotionUsesState> = {
  codec: promotionUseEvents,
  initialState: { payments: [] },
  decide(command, state) {
    if (state.payments.includes(command.paymentId)) return [];
    const { tenantId, promotionId, customerKey, localDate, paymentId, now } = command;
    return [{ type: 'PromotionUseCounted', data: { tenantId, promotionId, customerKey, localDate, paymentId, countedAt: now } }];
  },
  evolve(state, event) {
    switch (event.type) {
      case 'PromotionUseCounted':
        return state.payments.includes(event.data.paymentId) ? state : { payments: [...state.payments, event.data.paymentId] };
      default: {
        const unexpected: never = event.type;
        return unexpected;
      }
    }
  },
};
