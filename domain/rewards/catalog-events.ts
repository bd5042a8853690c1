/** The event types of a workspace's reward catalog (stream `reward-catalog-<tenantId>`), declared once. */
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';

/** A reward the cashier can issue, e.g. "Free coffee" for 100 points; `version` numbers the catalog's changes. */
export const rewardDefined = EventType.define(
  'RewardDefined',
  z.object({
    tenantId: z.string(),
    rewardId: z.string(),
    version: z.number().int(),
    name: z.string(),
    description: z.string().nullable(),
    points: z.number().int().positive(),
    /** An issued reward not redeemed within this many days goes back to the wallet. */
    issuedRewardExpiresAfterDays: z.number().int().positive(),
    definedBy: z.string(),
    definedAt: z.string(),
  }),
);

/** A reward no longer offered: nothing new is issued from it; rewards already issued stay redeemable. */
export const rewardRetired = EventType.define(
  'RewardRetired',
  z.object({ tenantId: z.string(), rewardId: z.string(), version: z.number().int(), retiredBy: z.string(), retiredAt: z.string() }),
);

export const rewardCatalogEvents = eventCodec({ stream: 'reward-catalog-<tenantId>', writtenBy: 'rewardCatalogDecider' }, rewardDefined, rewardRetired);

export type RewardCatalogEvent = EventsOf<typeof rewardCatalogEvents>;
