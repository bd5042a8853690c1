/**
 * The wallet's event types (stream `wallet-<walletId>`), declared once: name, version, schema of the data;
 * `events.ts` builds the family's codec from this module.
 * Points are whole numbers; a stored event whose points are not is refused, never folded into a balance.
 */
import { z } from 'zod';
import { EventType } from '../shared/codec.ts';

const points = z.number().int();
/** Whose wallet: every wallet event names it, and the wallet's view shows it (projections/read/wallets.ts). */
export const walletOwner = { walletId: z.string(), tenantId: z.string(), consumerId: z.string() };

export const pointsCredited = EventType.define(
  'PointsCredited',
  z.object({
    ...walletOwner,
    paymentId: z.string(),
    points,
    ruleId: z.string(),
    ruleVersion: z.number().int(),
    basis: z.enum(['amount', 'total']),
    basisAmountMinor: z.number().int(),
    /** `purchase`: credited at payment time; `claim`: held points claimed when the identity matched later. */
    via: z.enum(['purchase', 'claim']),
  }),
);

/**
 * A refund's share of its purchase's points taken back. v2 adds `fromExpired`: the part of `points` the expiry policy
 * had already taken from that purchase (and no refund had taken back yet); those left the balance when they expired,
 * so the balance moves by `points - fromExpired` only. Every v1 reversal took all its points from the balance
 * (written before the wallet told expired points apart): `fromExpired` 0, which is what its ledger line shows.
 */
export const pointsReversed = EventType.define('PointsReversed', z.object({ ...walletOwner, paymentId: z.string(), refundId: z.string(), points })).next(
  z.object({ ...walletOwner, paymentId: z.string(), refundId: z.string(), points, fromExpired: z.number().int().nonnegative() }),
  (v1) => ({ ...v1, fromExpired: 0 }),
);

export const pointsRedeemed = EventType.define(
  'PointsRedeemed',
  z.object({ ...walletOwner, points, idempotencyKey: z.string(), reference: z.string().nullable(), redeemedBy: z.string() }),
);

/**
 * v2 says who corrected the balance: an administrator, or the workspace's merchant (within the limit the admin
 * set for the workspace). Every v1 adjustment was an administrator's.
 */
export const pointsAdjusted = EventType.define(
  'PointsAdjusted',
  z.object({ ...walletOwner, points, reason: z.string(), adjustedBy: z.string(), idempotencyKey: z.string().nullable() }),
).next(
  z.object({ ...walletOwner, points, reason: z.string(), adjustedBy: z.string(), adjustedAs: z.enum(['admin', 'merchant']), idempotencyKey: z.string().nullable() }),
  (v1) => ({ ...v1, adjustedAs: 'admin' as const }),
);

/**
 * A credit that would break a bound (`MAX_CREDIT_POINTS` per credit, `MAX_BALANCE_POINTS` per balance) is
 * recorded as refused, with what it would have been, and not applied: balances stay exact integers.
 */
export const pointsCreditRefused = EventType.define(
  'PointsCreditRefused',
  z.object({ ...walletOwner, paymentId: z.string(), points, reason: z.enum(['credit_above_limit', 'balance_above_limit']), limit: z.number().int() }),
);

/** What an issued reward is: the catalog reward (at its version) and the points it locks. */
const issued = { issuedRewardId: z.string(), rewardId: z.string(), points: z.number().int().positive() };

/**
 * A reward from the workspace's catalog issued to the wallet: its points are locked (still in the balance, no
 * longer available) until it is redeemed, voided or expires at `expiresAt`.
 */
export const rewardIssued = EventType.define(
  'RewardIssued',
  z.object({
    ...walletOwner,
    ...issued,
    rewardVersion: z.number().int(),
    rewardName: z.string(),
    idempotencyKey: z.string(),
    issuedBy: z.string(),
    issuedAt: z.string(),
    expiresAt: z.string(),
  }),
);

/** An issued reward handed over: its locked points are spent. */
export const rewardRedeemed = EventType.define('RewardRedeemed', z.object({ ...walletOwner, ...issued, idempotencyKey: z.string(), redeemedBy: z.string() }));

/** An issued reward cancelled by the merchant: its points are available again. */
export const rewardVoided = EventType.define('RewardVoided', z.object({ ...walletOwner, ...issued, voidedBy: z.string(), reason: z.string().nullable() }));

/** An issued reward not redeemed by its `expiresAt`: its points are available again. */
export const rewardExpired = EventType.define('RewardExpired', z.object({ ...walletOwner, ...issued, expiresAt: z.string(), expiredAt: z.string() }));

/**
 * Points taken by the workspace's expiry policy, at most once per wallet and `period` (the UTC day of the run).
 * `rule`: `earned` (points older than the policy's months, first earned first spent) or `inactivity`.
 */
export const pointsExpired = EventType.define(
  'PointsExpired',
  z.object({ ...walletOwner, points: z.number().int().positive(), period: z.string(), rule: z.enum(['earned', 'inactivity']), policyVersion: z.number().int(), asOf: z.string() }),
);
