/**
 * The event types of one Square payment as this service saw it (stream `payment-<paymentId>`), declared once.
 */
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';

const creditOutcome = z.enum(['credited', 'stored_anonymous', 'no_rule_no_credit', 'zero_points']);
export type CreditOutcome = z.output<typeof creditOutcome>;

const minor = z.number().int();

export const paymentStatusObserved = EventType.define(
  'PaymentStatusObserved',
  z.object({ paymentId: z.string(), tenantId: z.string(), merchantId: z.string(), status: z.string(), updatedAt: z.string(), source: z.string() }),
);

const purchaseCompletedV1 = z.object({
  paymentId: z.string(),
  tenantId: z.string(),
  merchantId: z.string(),
  locationId: z.string(),
  amountMinor: minor,
  tipMinor: minor,
  totalMinor: minor,
  currency: z.string(),
  customerId: z.string().nullable(),
  /** Keyed hashes of the customer's normalised email and phone, never the raw values. */
  identityHashes: z.array(z.string()),
  consumerId: z.string().nullable(),
  walletId: z.string().nullable(),
  outcome: creditOutcome,
  points: z.number().int(),
  ruleId: z.string().nullable(),
  ruleVersion: z.number().int().nullable(),
  basis: z.enum(['amount', 'total']).nullable(),
  basisAmountMinor: minor.nullable(),
  /** When the payment completed (Square's `updated_at` of the completing update). */
  completedAt: z.string(),
  source: z.string(),
});

/**
 * Version 2 records when the customer paid (Square's `created_at`), which the rule in force and the program's
 * start are decided on (issue 15). A version 1 purchase did not record it: it upcasts to `null`, unknown.
 */
const purchaseCompletedV2 = purchaseCompletedV1.extend({ paymentCreatedAt: z.string().nullable() });

/**
 * Who appends a purchase's wallet effect (credit or reversal): `inline`, the ingestion's own atomic append of
 * the purchase event with the wallet event (batched ingestion, issue 12), or `reactor`, the wallet-credits
 * reactor from the feed (stores without atomic multi-stream appends, and every event stored before).
 */
const walletEffect = z.enum(['inline', 'reactor']);
export type WalletEffect = z.output<typeof walletEffect>;

/** Version 3 says who appends the wallet credit; versions 1 and 2 were all credited by the reactor. */
export const purchaseCompleted = EventType.define('PurchaseCompleted', purchaseCompletedV1)
  .next(purchaseCompletedV2, (v1) => ({ ...v1, paymentCreatedAt: null }))
  .next(purchaseCompletedV2.extend({ walletEffect }), (v2) => ({ ...v2, walletEffect: 'reactor' as const }));

export const refundHeld = EventType.define(
  'RefundHeld',
  z.object({ paymentId: z.string(), tenantId: z.string(), refundId: z.string(), amountMinor: minor, source: z.string() }),
);

const refundAppliedV1 = z.object({
  paymentId: z.string(),
  tenantId: z.string(),
  refundId: z.string(),
  amountMinor: minor,
  pointsReversed: z.number().int(),
  /** The wallet the reversal comes out of; null while the points are still held, unclaimed. */
  walletId: z.string().nullable(),
  consumerId: z.string().nullable(),
  source: z.string(),
});

/** Version 2 says who appends the wallet's reversal (see `walletEffect`); version 1 reversals were the reactor's. */
export const refundApplied = EventType.define('RefundApplied', refundAppliedV1).next(refundAppliedV1.extend({ walletEffect }), (v1) => ({
  ...v1,
  walletEffect: 'reactor' as const,
}));

export const heldPointsClaimed = EventType.define(
  'HeldPointsClaimed',
  z.object({
    paymentId: z.string(),
    tenantId: z.string(),
    consumerId: z.string(),
    walletId: z.string(),
    points: z.number().int(),
    identityHash: z.string(),
    claimedAt: z.string(),
  }),
);

export const paymentEvents = eventCodec(
  { stream: 'payment-<paymentId>', writtenBy: 'paymentDecider' },
  paymentStatusObserved,
  purchaseCompleted,
  refundHeld,
  refundApplied,
  heldPointsClaimed,
);

export type PaymentEvent = EventsOf<typeof paymentEvents>;
