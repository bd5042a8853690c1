/**
 * The event types of one Square payment as this service saw it (stream `payment-<paymentId>`), declared once;
 * `events.ts` builds the family's codec from this module.
 */
import { z } from 'zod';
import { EventType } from '../shared/codec.ts';
import { incentiveSchema } from '../promotions/promotion.ts';

/** The outcomes a purchase completed with before version 4. */
const creditOutcomeV1 = z.enum(['credited', 'stored_anonymous', 'no_rule_no_credit', 'zero_points']);

/**
 * From version 4 (issue 15): `before_program`, paid before any rule was active for the workspace;
 * `currency_mismatch`, paid in another currency than the workspace's; `same_order`, a later tender of an order
 * whose visit another payment already decided. None of them earns.
 */
const creditOutcomeV4 = z.enum([...creditOutcomeV1.options, 'before_program', 'currency_mismatch', 'same_order']);

/** From version 5 (issue 19): `location_excluded`, paid at a location the rules in force are not limited to. */
const creditOutcome = z.enum([...creditOutcomeV4.options, 'location_excluded']);
export type CreditOutcome = z.output<typeof creditOutcome>;

/**
 * How a refund takes points back: `amount`, the refunded share of the amount (tip excluded: a refund counts against
 * the amount first); `total`, the refunded share of the total; `full_refund`, all of them once the payment is
 * refunded in full, nothing before (a visit).
 */
const refundBasis = z.enum(['amount', 'total', 'full_refund']);
export type RefundBasis = z.output<typeof refundBasis>;

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
  outcome: creditOutcomeV1,
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

const purchaseCompletedV3 = purchaseCompletedV2.extend({ walletEffect });

/**
 * Version 4 (issue 15): the new outcomes; the Square order the payment is a tender of (`orderId`, one visit per
 * order); and how a refund of it takes points back (`refundBasis`). Purchases of earlier versions were reversed on
 * the refunded share of the total: they upcast to `total`, and keep being reversed as they were promised.
 */
const purchaseCompletedV4 = purchaseCompletedV3.extend({ outcome: creditOutcomeV4, orderId: z.string().nullable(), refundBasis });

/** One rule's part of a purchase's points (issue 19): several active rules add up. */
const contribution = z.object({
  ruleId: z.string(),
  ruleVersion: z.number().int(),
  kind: z.enum(['spend', 'visit', 'item', 'category']),
  points: z.number().int(),
  /** Which payment amount the rule counted, and the value it counted after tax and exclusions. */
  basis: z.enum(['amount', 'total']),
  basisAmountMinor: minor,
  refundBasis,
});
export type PurchaseContribution = z.output<typeof contribution>;

/**
 * Version 5 (issue 19): each rule's contribution (their points sum to `points`), and whether the Square order was
 * read for it (`orderRead`: an item, category, before-tax or exclusion rule was in force). `ruleId`, `ruleVersion`,
 * `basis` and `basisAmountMinor` name the contribution with the most points (the wallet's credit carries them).
 * A version 4 purchase had one rule: it upcasts to that rule's single contribution (a visit when its refunds were
 * all or nothing, else a spend), none when no rule decided it.
 */
const purchaseCompletedV5 = purchaseCompletedV4.extend({ contributions: z.array(contribution), orderRead: z.boolean() });

/** The promotion a purchase earned extra points from (issue 19): at most one, the one giving the most points. */
const appliedPromotion = z.object({
  promotionId: z.string(),
  name: z.string(),
  incentive: incentiveSchema,
  /** The extra points, included in the purchase's `points` (refunds take them back in the same proportion). */
  points: z.number().int(),
  /** The day, in the workspace's time zone, the payment was made on. */
  localDate: z.string(),
});

/**
 * Version 6 (issue 19, promotions and locations): the `location_excluded` outcome, and the promotion applied (null:
 * none). `points` is the total: the contributions' points plus the promotion's. Earlier purchases had no promotion:
 * they upcast to null. Refunds take the promotion's points back in the proportion they take the rules'.
 */
const purchaseCompletedV6 = purchaseCompletedV5.extend({ outcome: creditOutcome, promotion: appliedPromotion.nullable() });

/** Version 3 says who appends the wallet credit; versions 1 and 2 were all credited by the reactor. */
export const purchaseCompleted = EventType.define('PurchaseCompleted', purchaseCompletedV1)
  .next(purchaseCompletedV2, (v1) => ({ ...v1, paymentCreatedAt: null }))
  .next(purchaseCompletedV3, (v2) => ({ ...v2, walletEffect: 'reactor' as const }))
  .next(purchaseCompletedV4, (v3) => ({ ...v3, orderId: null, refundBasis: 'total' as const }))
  .next(purchaseCompletedV5, (v4) => ({
    ...v4,
    orderRead: false,
    contributions:
      v4.ruleId !== null && v4.ruleVersion !== null && v4.basis !== null && v4.basisAmountMinor !== null
        ? [
            {
              ruleId: v4.ruleId,
              ruleVersion: v4.ruleVersion,
              kind: v4.refundBasis === 'full_refund' ? ('visit' as const) : ('spend' as const),
              points: v4.points,
              basis: v4.basis,
              basisAmountMinor: v4.basisAmountMinor,
              refundBasis: v4.refundBasis,
            },
          ]
        : [],
  }))
  .next(purchaseCompletedV6, (v5) => ({ ...v5, promotion: null }));

const refundHeldV1 = z.object({ paymentId: z.string(), tenantId: z.string(), refundId: z.string(), amountMinor: minor, source: z.string() });

/** Version 2 records the refund's currency (null: held before it was recorded), so a foreign one is never applied. */
export const refundHeld = EventType.define('RefundHeld', refundHeldV1).next(refundHeldV1.extend({ currency: z.string().nullable() }), (v1) => ({ ...v1, currency: null }));

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

const refundAppliedV2 = refundAppliedV1.extend({ walletEffect });

/**
 * Version 3 (issue 19): what the refund took back of each rule's contribution (they sum to `pointsReversed`). A
 * version 2 refund reversed a purchase of one rule: it upcasts to none listed, and counts against that one.
 */
const refundAppliedV3 = refundAppliedV2.extend({ contributions: z.array(z.object({ ruleId: z.string(), pointsReversed: z.number().int() })) });

/** Version 2 says who appends the wallet's reversal (see `walletEffect`); version 1 reversals were the reactor's. */
export const refundApplied = EventType.define('RefundApplied', refundAppliedV1)
  .next(refundAppliedV2, (v1) => ({ ...v1, walletEffect: 'reactor' as const }))
  .next(refundAppliedV3, (v2) => ({ ...v2, contributions: [] }));

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

/**
 * Square learnt the email or phone of the customer of a purchase whose points are held for nobody
 * (`customer.created` / `customer.updated` after the sale): the purchase's held points can now be claimed by it.
 */
export const purchaseIdentityAttached = EventType.define(
  'PurchaseIdentityAttached',
  z.object({
    paymentId: z.string(),
    tenantId: z.string(),
    customerId: z.string(),
    /** The keyed hashes newly attached (those the purchase did not carry yet). */
    identityHashes: z.array(z.string()),
    /** When the purchase completed: the claim window runs from it. */
    completedAt: z.string(),
    attachedAt: z.string(),
    source: z.string(),
  }),
);

/**
 * Square attached a customer to a purchase after it completed (2026-12-08): the purchase was decided on a first
 * `payment.created` / `payment.updated` without `customer_id` and its points held for nobody; a later update of the
 * same payment carried the customer (Square fills `customer_id` asynchronously: instant profiles, a buyer typing an
 * email for a digital receipt) or the buyer's email. The purchase now belongs to that customer, and the identities
 * of its contacts can claim the held points, as an identity attached later does.
 */
export const purchaseCustomerLinked = EventType.define(
  'PurchaseCustomerLinked',
  z.object({
    paymentId: z.string(),
    tenantId: z.string(),
    /** The Square customer now on the payment; null when the later update carried only the buyer's email. */
    customerId: z.string().nullable(),
    /** The keyed hashes of the customer's contacts (and the buyer's email) the purchase did not carry yet. */
    identityHashes: z.array(z.string()),
    /** When the purchase completed: the claim window runs from it. */
    completedAt: z.string(),
    /** Square's `updated_at` of the update that carried the customer. */
    linkedAt: z.string(),
    source: z.string(),
  }),
);
