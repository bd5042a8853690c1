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

export const walletEvents = eventCodec(
  { stream: 'wallet-<walletId>', writtenBy: 'walletDecider' },
  pointsCredited,
  pointsReversed,
  pointsRedeemed,
  pointsAdjusted,
);

export type WalletEvent = EventsOf<typeof walletEvents>;
