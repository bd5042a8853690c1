/**
 * Reward rules: versions, the active set (several rules add up), retirement, and the preview of what rules give a
 * payment, line by line (issue 19).
 */
import type pg from 'pg';
import { z } from 'zod';
import type { RulePreview } from '../../domain/payments/rule-preview.ts';
import { purchaseOrderSchema } from '../../domain/rewards/order.ts';
import { categoryRuleSchema, itemRuleSchema, rewardRuleSchema, spendRuleSchema, visitRuleSchema } from '../../domain/rewards/rule.ts';
import type { RewardRulesService } from '../../domain/rewards/service.ts';
import { listRewardRules } from '../../projections/read/accounts.ts';
import { caller, metadataFor, tenantOf } from '../request.ts';
import { createIdempotencyKey, position, timestamp } from '../schemas.ts';
import { created, route, type RouteSpec } from './table.ts';

/** A rule to create, as `rewardRuleSchema`, with the create's optional `idempotencyKey` in each kind. */
const keyed = { idempotencyKey: createIdempotencyKey };
const keyedRuleSchema = z.discriminatedUnion('kind', [spendRuleSchema.extend(keyed), visitRuleSchema.extend(keyed), itemRuleSchema.extend(keyed), categoryRuleSchema.extend(keyed)], {
  error: "kind must be 'spend', 'visit', 'item' or 'category'",
});

export interface RewardRuleRoutesDependencies {
  rules: RewardRulesService;
  preview: RulePreview;
  pool: pg.Pool;
}

const ruleId = z.string().min(1).max(200).regex(/^[A-Za-z0-9._:@|-]+$/, 'ruleId must be a rule id (letters, digits, . _ : @ | -)');
const ruleVersion = z.object({ ruleId: z.string(), version: z.number().int(), isActive: z.boolean(), rule: z.record(z.string(), z.unknown()) });
const activeSet = { activeRuleIds: z.array(z.string()) };

const activateBody = z
  .object({ alongside: z.boolean({ error: 'alongside must be true (join the active rules) or false (replace them)' }).default(false) })
  .strict()
  .default({ alongside: false });

const previewBody = z
  .object({
    rule: rewardRuleSchema.optional(),
    ruleIds: z.array(ruleId).min(1, 'ruleIds must name at least one rule version').max(20, 'ruleIds may name at most 20 rule versions').optional(),
    paymentId: z.string().min(1).max(192).regex(/^[A-Za-z0-9_-]+$/, 'paymentId must be a Square payment id').optional(),
    order: purchaseOrderSchema.optional(),
    at: z.iso.datetime({ offset: true, error: 'at must be an ISO 8601 date-time, e.g. 2027-06-01T16:00:00Z' }).optional(),
    locationId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'locationId must be a Square location id').optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.paymentId === undefined) === (body.order === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['paymentId'], message: 'give either paymentId (a Square payment of this merchant) or order (a sample order), not both' });
    }
    for (const field of ['at', 'locationId'] as const) {
      if (body[field] !== undefined && body.order === undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: `${field} goes with a sample order: a Square payment has its own` });
      }
    }
    if (body.rule && body.ruleIds) ctx.addIssue({ code: 'custom', path: ['ruleIds'], message: 'give either rule (one to try) or ruleIds (versions), not both' });
  });

const previewView = z.object({
  points: z.number().int(),
  rulePoints: z.number().int(),
  rules: z.array(z.object({ ruleId: z.string().nullable(), version: z.number().int().nullable(), kind: z.enum(['spend', 'visit', 'item', 'category']), points: z.number().int() })),
  lines: z.array(z.object({ ruleId: z.string().nullable(), text: z.string(), points: z.number().int() })),
  promotion: z.object({ promotionId: z.string(), name: z.string(), points: z.number().int(), localDate: z.string() }).nullable(),
  payment: z.object({ paymentId: z.string().nullable(), amountMinor: z.number().int(), totalMinor: z.number().int(), orderId: z.string().nullable(), orderRead: z.boolean(), createdAt: timestamp, locationId: z.string().nullable() }),
  warnings: z.array(z.string()),
});

// Over 80 lines because it is the route table of a context: one short declaration per route.
export function rewardRuleRoutes({ rules, preview, pool }: RewardRuleRoutesDependencies): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/api/v1/client/reward-rules',
      access: 'tenant',
      summary: "The tenant's reward rule versions, newest first, the active ones marked.",
      response: z.array(ruleVersion.extend({ createdAt: timestamp, activatedAt: timestamp.nullable(), retiredAt: timestamp.nullable(), currency: z.string().nullable() })),
      async handler({ ctx }) {
        return { status: 200, body: await listRewardRules(pool, tenantOf(ctx)) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/reward-rules',
      access: 'tenant',
      summary:
        'Create the next rule version (inactive): spend {points, per, basis, minimumSpend?, taxMode?, excludedCategoryIds?, excludedItemVariationIds?}, visit {points, minimumSpend?}, item {points, itemVariationIds}, category {points, categoryIds}. Catalog ids are checked against Square when it can be read; otherwise `warnings` says so. idempotencyKey? (or the Idempotency-Key header): a retry answers as the first call did.',
      body: keyedRuleSchema,
      response: ruleVersion.extend({ createdAt: timestamp, position, warnings: z.array(z.string()) }),
      statuses: [201, 200],
      async handler({ body: { idempotencyKey: key, ...rule }, ctx }) {
        // Checked before anything is recorded: an unknown id is a 400 naming its field.
        const warnings = await preview.checkRule(tenantOf(ctx), rule);
        const { replayed, ...version } = await rules.create(tenantOf(ctx), rule, caller(ctx).userId, metadataFor(ctx), key);
        return created({ ...version, position: version.position ?? null, warnings }, replayed);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/reward-rules/retire',
      access: 'tenant',
      summary: 'Retire every rule version so far: none stays active or can be activated again (needed to reconnect Square in another currency).',
      response: z.object({ retiredThroughVersion: z.number().int(), position }),
      async handler({ ctx }) {
        const result = await rules.retire(tenantOf(ctx), caller(ctx).userId, metadataFor(ctx));
        return { status: 200, body: { ...result, position: result.position ?? null } };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/reward-rules/preview',
      access: 'tenant',
      summary:
        'What a payment would earn, and why, line by line: the rules {rule?} (one to try) or {ruleIds?} (versions), else the active ones, and the promotion in force that adds to them; on {paymentId} (a Square payment, its order read) or {order} (a sample order, paid {at?} (default now) at {locationId?}). Records nothing.',
      body: previewBody,
      response: previewView,
      async handler({ body, ctx }) {
        const { paymentId, order, at, locationId, ...which } = body;
        const request = order ? { ...which, order, at, locationId } : { ...which, paymentId: paymentId ?? '' };
        return { status: 200, body: await preview.preview(tenantOf(ctx), request) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/reward-rules/:ruleId/activate',
      access: 'tenant',
      summary: 'Make a rule version active: the single active one, or with {"alongside": true} one more beside those active (their points add up).',
      params: z.object({ ruleId }),
      body: activateBody,
      response: ruleVersion.extend({ ...activeSet, position }),
      async handler({ params, body, ctx }) {
        const result = await rules.activate(tenantOf(ctx), params.ruleId, caller(ctx).userId, metadataFor(ctx), { alongside: body.alongside });
        return { status: 200, body: { ...result, position: result.position ?? null } };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/reward-rules/:ruleId/deactivate',
      access: 'tenant',
      summary: 'Take a rule version out of the active set; the others stay in force. Idempotent.',
      params: z.object({ ruleId }),
      response: ruleVersion.extend({ ...activeSet, position }),
      async handler({ params, ctx }) {
        const result = await rules.deactivate(tenantOf(ctx), params.ruleId, caller(ctx).userId, metadataFor(ctx));
        return { status: 200, body: { ...result, position: result.position ?? null } };
      },
    }),
  ];
}
