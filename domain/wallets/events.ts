/**
 * The wallet's event types (stream `wallet-<walletId>`), declared once: name, version, schema of the data.
 * Points are whole numbers; a stored event whose points are not is refused, never folded into a balance.
 */
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';

const points = z.number().int();
const owner = { walletId: z.string(), tenantId: z.string(), consumerId: z.string() };

export const pointsCredited = EventType.define(
  'PointsCredited',
  z.object({
    ...owner,
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

export const pointsReversed = EventType.define('PointsReversed', z.object({ ...owner, paymentId: z.string(), refundId: z.string(), points }));

export const pointsRedeemed = EventType.define(
  'PointsRedeemed',
  z.object({ ...owner, points, idempotencyKey: z.string(), reference: z.string().nullable(), redeemedBy: z.string() }),
);

export const pointsAdjusted = EventType.define(
  'PointsAdjusted',
  z.object({ ...owner, points, reason: z.string(), adjustedBy: z.string(), idempotencyKey: z.string().nullable() }),
);

/**
 * A credit that would break a bound (`MAX_CREDIT_POINTS` per credit, `MAX_BALANCE_POINTS` per balance) is
 * recorded as refused, with what it would have been, and not applied: balances stay exact integers.
 */
export const pointsCreditRefused = EventType.define(
  'PointsCreditRefused',
  z.object({ ...owner, paymentId: z.string(), points, reason: z.enum(['credit_above_limit', 'balance_above_limit']), limit: z.number().int() }),
);

export const walletEvents = eventCodec(
  { stream: 'wallet-<walletId>', writtenBy: 'walletDecider' },
  pointsCredited,
  pointsReversed,
  pointsRedeemed,
  pointsAdjusted,
  pointsCreditRefused,
);

export type WalletEvent = EventsOf<typeof walletEvents>;

/** The types that change a balance (ledger lines, reconciliation); `PointsCreditRefused` changes none. */
export const walletBalanceEvents = eventCodec(undefined, pointsCredited, pointsReversed, pointsRedeemed, pointsAdjusted);

export type WalletBalanceEvent = EventsOf<typeof walletBalanceEvents>;
