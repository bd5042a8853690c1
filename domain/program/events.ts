/** The event types of a workspace's loyalty program settings (stream `loyalty-program-<tenantId>`), declared once. */
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';

const expiryPolicySetV1 = z.object({
  tenantId: z.string(),
  version: z.number().int(),
  earnedMonths: z.number().int().nullable(),
  inactivityMonths: z.number().int().nullable(),
  retroactive: z.boolean(),
  effectiveFrom: z.string(),
  setBy: z.string(),
});

/**
 * The points expiry policy from `effectiveFrom` on (both months null: points never expire). `retroactive`:
 * the merchant confirmed that points earned before `effectiveFrom` count from when they were earned. Version 2:
 * `timeZone`, the IANA zone whose months the deadlines follow; version 1 policies meant UTC's.
 */
export const expiryPolicySetV2 = expiryPolicySetV1.extend({
  /** The IANA time zone whose calendar months the deadlines follow (`UTC` for policies of version 1). */
  timeZone: z.string(),
});
export const expiryPolicySet = EventType.define('ExpiryPolicySet', expiryPolicySetV1).next(expiryPolicySetV2, (v1) => ({ ...v1, timeZone: 'UTC' }));

/** The most points a merchant may add or remove in one self-service adjustment, set by an administrator. */
export const adjustmentLimitSet = EventType.define(
  'AdjustmentLimitSet',
  z.object({ tenantId: z.string(), limit: z.number().int().nonnegative(), setBy: z.string(), setAt: z.string() }),
);

export const programEvents = eventCodec({ stream: 'loyalty-program-<tenantId>', writtenBy: 'programDecider' }, expiryPolicySet, adjustmentLimitSet);

export type ProgramEvent = EventsOf<typeof programEvents>;
