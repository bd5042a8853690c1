/**
 * A workspace's promotions (stream `promotions-<tenantId>`): scheduled, then possibly ended. A promotion is never
 * edited: ending one and scheduling another keeps what each past payment earned by explainable.
 */
import type { Decider } from '../shared/decider.ts';
import { DomainError, InvalidFields, NotFound } from '../shared/errors.ts';
import { replayOrRefuse, sameFields } from '../shared/keyed-create.ts';
import { foreignLocations } from './locations.ts';
import { promotionEvents, type PromotionEvent } from './events.ts';
import { localTime, type Promotion, type ScheduledPromotion } from './promotion.ts';

export type { PromotionEvent } from './events.ts';

export interface PromotionsState {
  promotions: ScheduledPromotion[];
}

export type PromotionsCommand =
  | {
      type: 'SchedulePromotion';
      tenantId: string;
      promotionId: string;
      promotion: Promotion;
      timeZone: string;
      /** The merchant's location ids as Square lists them (every `locationIds` entry must be one). */
      merchantLocationIds: readonly string[];
      by: string;
      now: string;
    }
  | { type: 'EndPromotion'; tenantId: string; promotionId: string; by: string; now: string };

export const PROMOTIONS_STREAM_PREFIX = 'promotions-';
export const promotionsStream = (tenantId: string) => `${PROMOTIONS_STREAM_PREFIX}${tenantId}`;

export const promotionsDecider: Decider<PromotionsCommand, PromotionEvent, PromotionsState> = {
  codec: promotionEvents,
  initialState: { promotions: [] },
  decide(command, state) {
    switch (command.type) {
      case 'SchedulePromotion': {
        // Already scheduled (the id is derived from an idempotency key): a retry of the same promotion, or a refusal.
        const existing = state.promotions.find((p) => p.promotionId === command.promotionId);
        if (existing) return replayOrRefuse(sameFields(existing.promotion, command.promotion));
        const foreign = foreignLocations('locationIds', command.promotion.locationIds, command.merchantLocationIds);
        if (foreign) throw foreign;
        // It applies only to payments made from now on: a window that ended before today could never apply.
        const today = localTime(command.now, command.timeZone).date;
        const { endsOn } = command.promotion;
        if (endsOn !== undefined && endsOn < today) {
          const message = `endsOn (${endsOn}) is already past in ${command.timeZone} (today is ${today}): a promotion applies to payments made from its scheduling on, so it could never apply`;
          throw new InvalidFields([{ path: 'endsOn', message }]);
        }
        return [
          {
            type: 'PromotionScheduled',
            data: { tenantId: command.tenantId, promotionId: command.promotionId, promotion: command.promotion, timeZone: command.timeZone, scheduledBy: command.by, scheduledAt: command.now },
          },
        ];
      }
      case 'EndPromotion': {
        const target = state.promotions.find((p) => p.promotionId === command.promotionId);
        if (!target) throw new NotFound('Promotion');
        if (target.endedAt !== null) return [];
        return [{ type: 'PromotionEnded', data: { tenantId: command.tenantId, promotionId: command.promotionId, endedBy: command.by, endedAt: command.now } }];
      }
      default: {
        const unexpected: never = command;
        return unexpected;
      }
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'PromotionScheduled':
        return {
          promotions: [...state.promotions, { promotionId: event.data.promotionId, promotion: event.data.promotion, timeZone: event.data.timeZone, scheduledAt: event.data.scheduledAt, endedAt: null }],
        };
      case 'PromotionEnded':
        return { promotions: state.promotions.map((p) => (p.promotionId === event.data.promotionId && p.endedAt === null ? { ...p, endedAt: event.data.endedAt } : p)) };
      default: {
        const unexpected: never = event;
        return unexpected;
      }
    }
  },
};
