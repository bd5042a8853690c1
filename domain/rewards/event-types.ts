/**
 * The event types of a tenant's reward rules (stream `reward-rules-<tenantId>`), declared once;
 * `events.ts` builds the family's codec from this module.
 */
import { z } from 'zod';
import { EventType } from '../shared/codec.ts';
import { categoryRuleSchema, itemRuleSchema, rewardRuleSchema, spendRuleSchema, visitRuleSchema } from './rule.ts';

/** The rules before issue 19: spend (no tax mode, no exclusions) and visit. */
const ruleV1 = z.discriminatedUnion('kind', [spendRuleSchema.omit({ taxMode: true, excludedCategoryIds: true, excludedItemVariationIds: true, locationIds: true }), visitRuleSchema.omit({ locationIds: true })]);
const rewardRuleCreatedV1 = z.object({ tenantId: z.string(), ruleId: z.string(), version: z.number().int(), rule: ruleV1, createdBy: z.string(), createdAt: z.string() });

/**
 * Version 2 (issue 19): the item and category kinds, and a spend rule's `taxMode` and exclusions. A version 1 rule
 * is a version 2 rule as it is (its spend counts tax, as `after_tax` does, and excludes nothing).
 */
const ruleV2 = z.discriminatedUnion('kind', [
  spendRuleSchema.omit({ locationIds: true }),
  visitRuleSchema.omit({ locationIds: true }),
  itemRuleSchema.omit({ locationIds: true }),
  categoryRuleSchema.omit({ locationIds: true }),
]);

/**
 * Version 3 (issue 19, locations): a rule may be limited to some of the merchant's Square locations (`locationIds`).
 * A version 2 rule applies at every location, as it did: it is a version 3 rule as it is.
 */
export const rewardRuleCreated = EventType.define('RewardRuleCreated', rewardRuleCreatedV1)
  .next(rewardRuleCreatedV1.extend({ rule: ruleV2 }), (v1) => v1)
  .next(rewardRuleCreatedV1.extend({ rule: rewardRuleSchema }), (v2) => v2);

const rewardRuleActivatedV1 = z.object({
  tenantId: z.string(),
  ruleId: z.string(),
  version: z.number().int(),
  deactivatedRuleId: z.string().nullable(),
  activatedBy: z.string(),
  activatedAt: z.string(),
});

/**
 * Version 2 (issue 19): several rules may be active together. `deactivatedRuleIds` are the rules this activation
 * replaced (every active one for a plain activation, none for one `alongside` the others). A version 1 activation
 * replaced the single active rule it names.
 */
export const rewardRuleActivated = EventType.define('RewardRuleActivated', rewardRuleActivatedV1).next(
  rewardRuleActivatedV1.omit({ deactivatedRuleId: true }).extend({ deactivatedRuleIds: z.array(z.string()), alongside: z.boolean() }),
  ({ deactivatedRuleId, ...v1 }) => ({ ...v1, deactivatedRuleIds: deactivatedRuleId ? [deactivatedRuleId] : [], alongside: false }),
);

/** One active rule stops being in force (issue 19); the others stay active. */
export const rewardRuleDeactivated = EventType.define(
  'RewardRuleDeactivated',
  z.object({ tenantId: z.string(), ruleId: z.string(), version: z.number().int(), deactivatedBy: z.string(), deactivatedAt: z.string() }),
);

/**
 * The merchant retired every rule version so far (issue 15): none is active from `retiredAt`, and none of them can
 * be activated again (their amounts count in the currency they were written for). New versions can be created.
 */
export const rewardRulesRetired = EventType.define(
  'RewardRulesRetired',
  z.object({
    tenantId: z.string(),
    /** Versions up to this one are retired. */
    throughVersion: z.number().int(),
    /** The version that was active until now, if any. */
    deactivatedRuleId: z.string().nullable(),
    retiredBy: z.string(),
    retiredAt: z.string(),
  }),
);
