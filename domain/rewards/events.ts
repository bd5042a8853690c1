/** The event types of a tenant's reward rules (stream `reward-rules-<tenantId>`), declared once. */
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';
import { rewardRuleSchema } from './rule.ts';

export const rewardRuleCreated = EventType.define(
  'RewardRuleCreated',
  z.object({ tenantId: z.string(), ruleId: z.string(), version: z.number().int(), rule: rewardRuleSchema, createdBy: z.string(), createdAt: z.string() }),
);

export const rewardRuleActivated = EventType.define(
  'RewardRuleActivated',
  z.object({
    tenantId: z.string(),
    ruleId: z.string(),
    version: z.number().int(),
    deactivatedRuleId: z.string().nullable(),
    activatedBy: z.string(),
    activatedAt: z.string(),
  }),
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

export const ruleSetEvents = eventCodec(
  { stream: 'reward-rules-<tenantId>', writtenBy: 'ruleSetDecider' },
  rewardRuleCreated,
  rewardRuleActivated,
  rewardRulesRetired,
);

export type RuleSetEvent = EventsOf<typeof ruleSetEvents>;
