/**
 * The event types of a workspace's promotions (stream `promotions-<tenantId>`) and of the uses counted against a
 * promotion's limit per customer per day (stream `promotion-uses-<promotionId>-<customerKey>-<localDate>`).
 */
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';
import { promotionSchema, promotionSchemaV1 } from './promotion.ts';

const promotionScheduledV1 = z.object({
  tenantId: z.string(),
  promotionId: z.string(),
  promotion: promotionSchemaV1,
  /** The workspace's IANA time zone when scheduled (the Square main location's): the window is read in it. */
  timeZone: z.string(),
  scheduledBy: z.string(),
  scheduledAt: z.string(),
});

/** Version 2: the promotion may be limited to qualifying items (`itemVariationIds`, `categoryIds`); version 1 had none. */
export const promotionScheduled = EventType.define('PromotionScheduled', promotionScheduledV1).next(promotionScheduledV1.extend({ promotion: promotionSchema }), (v1) => v1);

/** The merchant ended a promotion: payments created from `endedAt` on no longer use it. */
export const promotionEnded = EventType.define('PromotionEnded', z.object({ tenantId: z.string(), promotionId: z.string(), endedBy: z.string(), endedAt: z.string() }));

export const promotionEvents = eventCodec({ stream: 'promotions-<tenantId>', writtenBy: 'promotionsDecider' }, promotionScheduled, promotionEnded);
export type PromotionEvent = EventsOf<typeof promotionEvents>;

const promotionUseCountedV1 = z.object({ tenantId: z.string(), promotionId: z.string(), customerId: z.string(), localDate: z.string(), paymentId: z.string(), countedAt: z.string() });

const promotionUseCountedV2 = promotionUseCountedV1.omit({ customerId: true }).extend({ customerKey: z.string() });

/**
 * A purchase used one of a promotion's daily uses for its customer. Version 2 names the customer by `customerKey`
 * (`customerKeyOf`): since 2026-12-06 `consumer:<id>` for a payment resolved to a customer of the workspace, else
 * `email:<hash>` (the keyed hash of the Square customer's or the buyer's address), else the Square customer id;
 * before, the Square customer id, or `email:<hash>` of the buyer email without one. The key is opaque to every
 * reader: it only names the stream counted on. Version 1 counted Square customers only: its `customerId` is the key.
 * Version 3 (2026-12-07) adds the payment's Square order, `orderId` (null: a payment without one): the tenders of
 * one order are one purchase, counted once. Before, each tender was counted: versions 1 and 2 decode with null.
 */
export const promotionUseCounted = EventType.define('PromotionUseCounted', promotionUseCountedV1)
  .next(promotionUseCountedV2, ({ customerId, ...rest }) => ({ ...rest, customerKey: customerId }))
  .next(promotionUseCountedV2.extend({ orderId: z.string().nullable() }), (v2) => ({ ...v2, orderId: null }));

export const promotionUseEvents = eventCodec({ stream: 'promotion-uses-<promotionId>-<customerKey>-<localDate>', writtenBy: 'promotionUsesDecider' }, promotionUseCounted);
export type PromotionUseEvent = EventsOf<typeof promotionUseEvents>;
