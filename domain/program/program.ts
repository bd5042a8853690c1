/**
 * A workspace's loyalty program settings (stream `loyalty-program-<tenantId>`): the points expiry policy the
 * merchant sets, and the per-adjustment limit an administrator sets for the merchant's own corrections.
 */
import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import type { Decider } from '../shared/decider.ts';
import { expiresAfter, MAX_EXPIRY_MONTHS, MIN_EXPIRY_MONTHS, type ExpiryPolicy } from '../wallets/expiry.ts';
import { programEvents, type ProgramEvent } from './events.ts';
import { canonicalTimeZone, isTimeZone } from '../shared/time-zone.ts';

export type { ProgramEvent } from './events.ts';

/** What a merchant may adjust at once unless an administrator set another limit for the workspace. */
export const DEFAULT_ADJUSTMENT_LIMIT = 1_000;
export const MAX_ADJUSTMENT_LIMIT = 1_000_000_000;

const months = (what: string) =>
  z
    .number({ error: `${what} must be a whole number of months from ${MIN_EXPIRY_MONTHS} to ${MAX_EXPIRY_MONTHS}, or null for no such rule` })
    .int(`${what} must be a whole number of months`)
    .min(MIN_EXPIRY_MONTHS, `${what} must be at least ${MIN_EXPIRY_MONTHS} month`)
    .max(MAX_EXPIRY_MONTHS, `${what} must be at most ${MAX_EXPIRY_MONTHS} months`)
    .nullable();

/** The policy a merchant asks for (PUT /api/v1/client/expiry-policy). */
export const expiryPolicyRequestSchema = z
  .object({
    earnedMonths: months('earnedMonths').default(null),
    inactivityMonths: months('inactivityMonths').default(null),
    /** Without it, points earned before the change count from the change: nothing expires retroactively. */
    applyToExistingPoints: z.boolean({ error: 'applyToExistingPoints must be true or false' }).default(false),
    /** The IANA time zone of the deadlines; without it, the workspace's (its Square main location's). */
    timeZone: z
      .string({ error: 'timeZone must be an IANA time zone name such as America/New_York' })
      .refine(isTimeZone, { error: (issue) => `timeZone ${JSON.stringify(issue.input)} is not an IANA time zone name this server knows, such as America/New_York` })
      .transform(canonicalTimeZone)
      .optional(),
  })
  .strict();

export type ExpiryPolicyRequest = z.infer<typeof expiryPolicyRequestSchema>;

export interface ProgramState {
  /** The policy in force; version 0 (both rules off) before any was set. */
  policy: ExpiryPolicy;
  adjustmentLimit: number;
}

export type ProgramCommand =
  /** `timeZone`: the request's, else the workspace's; null when neither is known (the current policy's is kept). */
  | { type: 'SetExpiryPolicy'; tenantId: string; request: ExpiryPolicyRequest; timeZone: string | null; by: string; now: string }
  | { type: 'SetAdjustmentLimit'; tenantId: string; limit: number; by: string; now: string };

export const programStream = (tenantId: string) => `loyalty-program-${tenantId}`;

export const NO_EXPIRY: ExpiryPolicy = { version: 0, earnedMonths: null, inactivityMonths: null, effectiveFrom: new Date(0).toISOString(), retroactive: false, timeZone: 'UTC' };

export const programDecider: Decider<ProgramCommand, ProgramEvent, ProgramState> = {
  codec: programEvents,
  initialState: { policy: NO_EXPIRY, adjustmentLimit: DEFAULT_ADJUSTMENT_LIMIT },
  decide(command, state) {
    switch (command.type) {
      case 'SetExpiryPolicy': {
        const { earnedMonths, inactivityMonths, applyToExistingPoints } = command.request;
        const current = state.policy;
        const timeZone = command.timeZone ?? current.timeZone;
        const same = current.earnedMonths === earnedMonths && current.inactivityMonths === inactivityMonths && current.retroactive === applyToExistingPoints;
        // The zone of a policy that expires nothing changes nothing; the next policy with months takes the zone then.
        if (same && (current.timeZone === timeZone || !expires(current))) return [];
        return [
          {
            type: 'ExpiryPolicySet',
            data: {
              tenantId: command.tenantId,
              version: current.version + 1,
              earnedMonths,
              inactivityMonths,
              retroactive: applyToExistingPoints,
              // A change of zone alone moves each deadline by hours, not its clock: the points keep counting from
              // where they did (a policy of UTC saved again with the workspace's zone restarted every point's clock).
              effectiveFrom: same ? current.effectiveFrom : command.now,
              setBy: command.by,
              timeZone,
            },
          },
        ];
      }
      case 'SetAdjustmentLimit':
        if (state.adjustmentLimit === command.limit) return [];
        return [{ type: 'AdjustmentLimitSet', data: { tenantId: command.tenantId, limit: command.limit, setBy: command.by, setAt: command.now } }];
      default:
        return unreachable(command);
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'ExpiryPolicySet': {
        const { version, earnedMonths, inactivityMonths, retroactive, effectiveFrom, timeZone } = event.data;
        return { ...state, policy: { version, earnedMonths, inactivityMonths, retroactive, effectiveFrom, timeZone } };
      }
      case 'AdjustmentLimitSet':
        return { ...state, adjustmentLimit: event.data.limit };
      default:
        return unreachable(event);
    }
  },
};

/** Whether a policy expires anything at all. */
export const expires = (policy: ExpiryPolicy) => policy.earnedMonths !== null || policy.inactivityMonths !== null;

/**
 * What the merchant is told of a new policy that counts the points earned before it from now (`retroactive` off)
 * when the one before it already expired points: their clock starts again, so none of them expires before the first
 * deadline counted from now, even those the previous policy would have expired sooner, under a shorter term too (a
 * policy has one clock start: keeping the old one would expire at once, unconfirmed, what a shorter term or a new
 * rule makes due). Null when the change starts no clock again.
 */
export function clockRestartWarning(previous: ExpiryPolicy, next: ExpiryPolicy): string | null {
  if (next.retroactive || !expires(previous) || !expires(next) || next.effectiveFrom === previous.effectiveFrom) return null;
  const months = Math.min(...[next.earnedMonths, next.inactivityMonths].filter((m): m is number => m !== null));
  const earliest = expiresAfter(new Date(next.effectiveFrom), months, next.timeZone).toISOString();
  return (
    `Points earned before this change count from now (applyToExistingPoints is false): none of them expires before ${earliest}, ` +
    'even those the previous policy would have expired sooner. To count them from when they were earned, send applyToExistingPoints: true ' +
    '(those already past the new months then expire at the next run).'
  );
}
