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

export const ruleSetEvents = eventCodec({ stream: 'reward-rules-<tenantId>', writtenBy: 'ruleSetDecider' }, rewardRuleCreated, rewardRuleActivated);

export type RuleSetEvent = EventsOf<typeof ruleSetEvents>;
