/** Promotions (issue 19): scheduled by the merchant, evaluated at each payment's time; and the merchant's Square locations. */
import { z } from 'zod';
import { promotionSchema } from '../../domain/promotions/promotion.ts';
import type { PromotionsService } from '../../domain/promotions/service.ts';
import type { MerchantLocations } from '../../domain/promotions/locations.ts';
import { caller, metadataFor, tenantOf } from '../request.ts';
import { createIdempotencyKey, id, position, timestamp } from '../schemas.ts';
import { created, route, type RouteSpec } from './table.ts';

export interface PromotionRoutesDependencies {
  promotions: PromotionsService;
  merchantLocations(tenantId: string): Promise<MerchantLocations>;
}

const promotionView = z.object({
  promotionId: z.string(),
  promotion: promotionSchema,
  timeZone: z.string(),
  scheduledAt: timestamp,
  endedAt: timestamp.nullable(),
  status: z.enum(['scheduled', 'ended']),
  phase: z.enum(['upcoming', 'running', 'finished', 'ended']),
});

const locationsView = z.object({
  mainLocationId: z.string().nullable(),
  timeZone: z.string().nullable(),
  locations: z.array(z.object({ id: z.string(), name: z.string().nullable(), status: z.string(), timezone: z.string().nullable() })),
});

export function promotionRoutes(deps: PromotionRoutesDependencies): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/api/v1/client/locations',
      access: 'tenant',
      summary: "The merchant's Square locations (ListLocations) and the workspace's time zone (its main location's): the ids rules and promotions may be limited to.",
      response: locationsView,
      async handler({ ctx }) {
        return { status: 200, body: await deps.merchantLocations(tenantOf(ctx)) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/promotions',
      access: 'tenant',
      summary: "The workspace's promotions, newest first (ended ones included).",
      response: z.array(promotionView),
      async handler({ ctx }) {
        return { status: 200, body: await deps.promotions.list(tenantOf(ctx)) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/promotions',
      access: 'tenant',
      summary:
        'Schedule a promotion: incentive {type: multiplier, multiplier 1–10} or {type: bonus, points 1–1,000,000}, startsOn/endsOn (local dates), daysOfWeek, hours [{from, to}] (read in the time zone of locationIds, which must share one, else of the main location), locationIds, minimumSpend, limitPerCustomerPerDay, itemVariationIds and categoryIds (qualifying items: the payment’s Square order must have one; checked against the catalog when it can be read, otherwise `warnings` says so). In force for payments created from now on. idempotencyKey? (or the Idempotency-Key header): a retry answers as the first call did.',
      body: promotionSchema.safeExtend({ idempotencyKey: createIdempotencyKey }),
      response: promotionView.extend({ position, warnings: z.array(z.string()) }),
      statuses: [201, 200],
      async handler({ body: { idempotencyKey: key, ...promotion }, ctx }) {
        const { replayed, ...scheduled } = await deps.promotions.schedule(tenantOf(ctx), promotion, caller(ctx).userId, metadataFor(ctx), key);
        return created({ ...scheduled, position: scheduled.position ?? null }, replayed);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/promotions/:promotionId/end',
      access: 'tenant',
      summary: 'End a promotion: payments created from now on no longer use it (those made before keep what they earned).',
      params: z.object({ promotionId: id('promotionId') }),
      response: promotionView.extend({ position }),
      async handler({ params, ctx }) {
        const ended = await deps.promotions.end(tenantOf(ctx), params.promotionId, caller(ctx).userId, metadataFor(ctx));
        return { status: 200, body: { ...ended, position: ended.position ?? null } };
      },
    }),
  ];
}
