/**
 * One Square payment, as this service saw it (stream `payment-<paymentId>`): its statuses until it completes,
 * the one outcome of its completion, refunds against it, and a later claim of points held for an unknown
 * customer. Webhooks and polls report the same payment in any mix, order and number: the decider makes the
 * completion happen once, ignores stale states, and holds refunds that arrive before their payment.
 */
import { unreachable } from '../shared/exhaustive.ts';
import type { Decider } from '../shared/decider.ts';
import type { SquarePayment } from '../ports/square.ts';
import { evaluateRules, type Contribution, type RuleRef } from '../rewards/evaluate.ts';
import { appliesAtLocation } from '../rewards/rule.ts';
import type { PurchaseOrder } from '../rewards/order.ts';
import { paymentEvents, type CreditOutcome, type PaymentEvent, type PurchaseContribution, type RefundBasis, type WalletEffect } from './events.ts';
import { bestPromotion, purchasePoints, type ScheduledPromotion } from '../promotions/promotion.ts';

export type { CreditOutcome, PaymentEvent, PurchaseContribution, RefundBasis, WalletEffect } from './events.ts';

export const CLAIM_WINDOW_DAYS = 90;

/** What the decider reads of a Square payment: the same fields, under the payment's stream id. */
export interface PaymentFacts
  extends Pick<SquarePayment, 'status' | 'amountMinor' | 'tipMinor' | 'totalMinor' | 'currency' | 'customerId' | 'locationId' | 'updatedAt' | 'createdAt'> {
  paymentId: string;
  /** The Square order this payment is a tender of (one order may be paid with several tenders). */
  orderId?: string | null;
}

/** The facts of a Square payment, as the decider reads them. */
export const paymentFacts = (payment: SquarePayment): PaymentFacts => ({
  paymentId: payment.id,
  status: payment.status,
  amountMinor: payment.amountMinor,
  tipMinor: payment.tipMinor,
  totalMinor: payment.totalMinor,
  currency: payment.currency,
  customerId: payment.customerId,
  locationId: payment.locationId,
  orderId: payment.orderId,
  updatedAt: payment.updatedAt,
  createdAt: payment.createdAt,
});

/**
 * For a visit rule, what the payment's order decided (see `order-visit.ts`): whether this payment is the tender
 * that counts the order's visit (or, none having counted it yet, would at the minimum), and the order's amount seen
 * (when counted, or so far; the visit's minimum applies to it).
 */
export interface OrderVisit {
  orderId: string;
  counts: boolean;
  amountMinor: number;
}

interface Completed {
  status: 'completed';
  paymentId: string;
  tenantId: string;
  outcome: CreditOutcome;
  points: number;
  amountMinor: number;
  totalMinor: number;
  currency: string;
  customerId: string | null;
  refundBasis: RefundBasis;
  identityHashes: string[];
  consumerId: string | null;
  walletId: string | null;
  ruleId: string | null;
  ruleVersion: number | null;
  basis: 'amount' | 'total' | null;
  basisAmountMinor: number | null;
  completedAt: string;
  source: string;
  /** The source whose update linked the purchase to its customer after it completed (`PurchaseCustomerLinked`); null: none did. */
  linkedBy: string | null;
  refundedMinor: number;
  pointsReversed: number;
  refunds: ReadonlySet<string>;
  /** Each rule's points and what refunds took back of them so far. */
  contributions: readonly { ruleId: string; points: number; refundBasis: RefundBasis; reversed: number }[];
  /** The promotion's extra points and what refunds took back of them so far (null: no promotion applied). */
  promotion: { points: number; reversed: number } | null;
}

export type PaymentState =
  | { status: 'unseen'; heldRefunds: HeldRefunds }
  | { status: 'waiting'; lastStatus: string; lastUpdatedAt: string; heldRefunds: HeldRefunds }
  | Completed;

/** Refunds seen before their payment completed, by refund id, with the tenant whose merchant reported each. */
type HeldRefunds = ReadonlyMap<string, { amountMinor: number; tenantId: string; currency: string | null }>;

export type Resolution = { kind: 'consumer'; consumerId: string; walletId: string } | { kind: 'anonymous' };

export type PaymentCommand =
  | {
      type: 'ObservePayment';
      tenantId: string;
      merchantId: string;
      payment: PaymentFacts;
      identityHashes: string[];
      resolution: Resolution;
      /** The rule in force when the customer paid (the payment's `created_at`), whenever this is decided. */
      activeRule: RuleRef | null;
      /** The rules in force then (several add up); given, it replaces `activeRule`. */
      rules?: readonly RuleRef[];
      /** The payment's Square order, read when a rule in force needs it; null or omitted otherwise. */
      order?: PurchaseOrder | null;
      /** The payment was created before any rule was active for the workspace: it does not earn. */
      beforeProgram?: boolean;
      /** The workspace's currency (the Square merchant's); null when unknown (a connection recorded before it was). */
      workspaceCurrency?: string | null;
      /** For a visit rule and a payment with an order: what the order decided. */
      orderVisit?: OrderVisit | null;
      /** The workspace's promotions (those in force when the customer paid may apply: at most one, the best). */
      promotions?: readonly ScheduledPromotion[];
      /**
       * Purchases of this payment's customer a promotion with a daily limit has applied to on that local day, other
       * than this payment's own (its order's other tenders are the same purchase; see `promotions/uses.ts`); null when unknown or the payment has no customer to count for, neither a Square customer
       * nor a buyer email (the promotion then does not apply).
       */
      promotionUses?: (promotionId: string, localDate: string) => number | null;
      /** Another tender of this payment's order was given a fixed promotion bonus: this one gets no fixed bonus. */
      orderBonusTaken?: boolean;
      source: string;
      /** Omitted: `reactor`. */
      walletEffect?: WalletEffect;
    }
  | {
      type: 'ObserveRefund';
      tenantId: string;
      refundId: string;
      paymentId: string;
      status: string;
      amountMinor: number;
      /** The refund's currency; a refund in another currency than its payment's reverses nothing. */
      currency?: string | null;
      source: string;
      walletEffect?: WalletEffect;
    }
  | { type: 'ClaimHeldPoints'; consumerId: string; walletId: string; identityHash: string; now: string }
  | { type: 'AttachIdentity'; customerId: string; identityHashes: string[]; now: string; source: string }
  | {
      /**
       * The payment, already completed, reported again (webhook or poll) with a customer or a buyer email it did not
       * carry when it completed: the identities of that customer's contacts and of the email (`identityHashes`).
       */
      type: 'LinkCustomer';
      tenantId: string;
      customerId: string | null;
      identityHashes: string[];
      /** Square's `updated_at` of the update that carried the customer. */
      updatedAt: string;
      source: string;
    };

/**
 * Whether a completed purchase waits for its customer: its points are held for nobody and it has no Square customer
 * (completed before Square attached one), so a later update of the payment naming one links it (`LinkCustomer`).
 */
export const awaitsCustomer = (state: PaymentState): boolean =>
  state.status === 'completed' && state.outcome === 'stored_anonymous' && state.consumerId === null && state.customerId === null;

export const paymentStream = (paymentId: string) => `payment-${paymentId}`;

/**
 * Points to take back so that the total reversed is what the refunds so far take, floored, never more than was
 * earned; it depends only on the sum refunded, so refunds in any order reverse the same. By the purchase's basis:
 * `total`, the refunded share of the total; `amount`, the refunded share of the amount (a refund counts against the
 * amount first: the tip is given back last); `full_refund`, everything once the amount is refunded in full (the tip
 * may be kept: an itemised return at Square's point of sale gives the goods back, not the tip), else nothing.
 */
export function reversalFor(
  state: Pick<Completed, 'points' | 'amountMinor' | 'totalMinor' | 'refundedMinor' | 'pointsReversed' | 'refundBasis'>,
  refundMinor: number,
): number {
  if (state.points <= 0 || state.totalMinor <= 0) return 0;
  const refundedSoFar = state.refundedMinor + refundMinor;
  let target: bigint;
  switch (state.refundBasis) {
    case 'total':
      target = (BigInt(state.points) * BigInt(Math.min(refundedSoFar, state.totalMinor))) / BigInt(state.totalMinor);
      break;
    case 'amount':
      target = state.amountMinor <= 0 ? 0n : (BigInt(state.points) * BigInt(Math.min(refundedSoFar, state.amountMinor))) / BigInt(state.amountMinor);
      break;
    case 'full_refund':
      target = refundedSoFar >= (state.amountMinor > 0 ? state.amountMinor : state.totalMinor) ? BigInt(state.points) : 0n;
      break;
    default:
      return unreachable(state.refundBasis);
  }
  return Math.max(0, Number(target) - state.pointsReversed);
}

const isNewer = (incoming: string, seen: string) => Date.parse(incoming) > Date.parse(seen);

type ObservePayment = Extract<PaymentCommand, { type: 'ObservePayment' }>;

const rulesOf = (command: ObservePayment): readonly RuleRef[] => command.rules ?? (command.activeRule ? [command.activeRule] : []);

/** Why a completed payment earns nothing before its points are even counted, if it does not. */
function excluded(command: ObservePayment): CreditOutcome | null {
  if (command.workspaceCurrency && command.payment.currency !== command.workspaceCurrency) return 'currency_mismatch';
  if (command.beforeProgram) return 'before_program';
  if (!rulesOf(command).length) return 'no_rule_no_credit';
  // Rules limited to locations (issue 19): when none in force takes payments at this one, the payment earns nothing.
  if (!rulesOf(command).some((r) => appliesAtLocation(r.rule, command.payment.locationId))) return 'location_excluded';
  return null;
}


/** The contribution the wallet's credit names: the one with the most points (the first of equals). */
const primaryOf = (contributions: readonly Contribution[]): Contribution | undefined =>
  contributions.reduce<Contribution | undefined>((best, c) => (!best || c.points > best.points ? c : best), undefined);

function complete(command: ObservePayment): PaymentEvent {
  const { payment, resolution, orderVisit } = command;
  const exclusion = excluded(command);
  const rules = exclusion === 'no_rule_no_credit' || exclusion === 'before_program' || exclusion === 'location_excluded' ? [] : rulesOf(command).filter((r) => appliesAtLocation(r.rule, payment.locationId));
  const evaluation = rules.length
    ? evaluateRules(rules, {
        amountMinor: payment.amountMinor,
        totalMinor: payment.totalMinor,
        order: command.order ?? null,
        hasOrder: Boolean(payment.orderId),
        orderVisit: orderVisit ? { counts: orderVisit.counts, amountMinor: orderVisit.amountMinor } : null,
      })
    : null;
  const basePoints = exclusion ? 0 : (evaluation?.points ?? 0);
  // A promotion adds to a purchase that earns by the rules (at most one: the one giving the most points); a fixed
  // bonus once per order, not per tender.
  const promotions = command.orderBonusTaken ? command.promotions?.filter((p) => p.promotion.incentive.type !== 'bonus') : command.promotions;
  const promotion =
    basePoints > 0 && promotions?.length
      ? bestPromotion(promotions, {
          createdAt: payment.createdAt,
          locationId: payment.locationId,
          amountMinor: payment.amountMinor,
          order: command.order ?? null,
          basePoints,
          usesToday: (promotionId, localDate) => command.promotionUses?.(promotionId, localDate) ?? null,
        })
      : null;
  const points = purchasePoints(basePoints, promotion);
  const sameOrder = !exclusion && evaluation?.sameOrder && points === 0;
  const outcome: CreditOutcome = exclusion ?? (sameOrder ? 'same_order' : points === 0 ? 'zero_points' : resolution.kind === 'consumer' ? 'credited' : 'stored_anonymous');
  const earns = outcome === 'credited' || outcome === 'stored_anonymous';
  const contributions = (evaluation?.contributions ?? []).map((c) => ({ ...c, points: earns ? c.points : 0 }));
  const primary = primaryOf(evaluation?.contributions ?? []);
  return {
    type: 'PurchaseCompleted',
    data: {
      paymentId: payment.paymentId,
      tenantId: command.tenantId,
      merchantId: command.merchantId,
      locationId: payment.locationId,
      amountMinor: payment.amountMinor,
      tipMinor: payment.tipMinor,
      totalMinor: payment.totalMinor,
      currency: payment.currency,
      customerId: payment.customerId,
      identityHashes: command.identityHashes,
      consumerId: resolution.kind === 'consumer' ? resolution.consumerId : null,
      walletId: resolution.kind === 'consumer' && outcome === 'credited' ? resolution.walletId : null,
      outcome,
      points: earns ? points : 0,
      ruleId: primary?.ruleId ?? null,
      ruleVersion: primary?.ruleVersion ?? null,
      basis: primary?.basis ?? null,
      basisAmountMinor: primary?.basisAmountMinor ?? null,
      completedAt: payment.updatedAt,
      paymentCreatedAt: payment.createdAt,
      source: command.source,
      walletEffect: command.walletEffect ?? 'reactor',
      orderId: payment.orderId ?? null,
      refundBasis: primary?.refundBasis ?? 'total',
      contributions,
      orderRead: Boolean(command.order),
      promotion:
        promotion && earns
          ? { promotionId: promotion.promotionId, name: promotion.name, incentive: promotion.incentive, points: promotion.points, localDate: promotion.localDate }
          : null,
    },
  };
}

// Over 80 lines because it is one switch over every command of a payment, each case short and the switch exhaustive.
function decide(command: PaymentCommand, state: PaymentState): PaymentEvent[] {
  switch (command.type) {
    case 'ObservePayment': {
      if (state.status === 'completed') return [];
      const { payment } = command;
      if (payment.status !== 'COMPLETED') {
        if (state.status === 'waiting' && !isNewer(payment.updatedAt, state.lastUpdatedAt)) return [];
        return [
          {
            type: 'PaymentStatusObserved',
            data: { paymentId: payment.paymentId, tenantId: command.tenantId, merchantId: command.merchantId, status: payment.status, updatedAt: payment.updatedAt, source: command.source },
          },
        ];
      }
      const completion = complete(command);
      const events: PaymentEvent[] = [completion];
      // Refunds that arrived first are applied now, in the order they arrived.
      let after = events.reduce(evolve, state) as Completed;
      for (const [refundId, { amountMinor, tenantId, currency }] of state.heldRefunds) {
        // A refund signed by another merchant does not touch this tenant's payment, nor one in another currency.
        if (tenantId !== command.tenantId) continue;
        if (currency !== null && currency !== payment.currency) continue;
        const applied = applyRefund(after, refundId, amountMinor, command.source, command.walletEffect);
        events.push(applied);
        after = evolve(after, applied) as Completed;
      }
      return events;
    }
    case 'ObserveRefund': {
      if (command.status !== 'COMPLETED') return [];
      if (state.status === 'completed') {
        // Only the merchant who took the payment can refund it: another tenant's refund naming it changes nothing.
        if (state.tenantId !== command.tenantId || state.refunds.has(command.refundId)) return [];
        if (command.currency && command.currency !== state.currency) return [];
        return [applyRefund(state, command.refundId, command.amountMinor, command.source, command.walletEffect)];
      }
      if (state.heldRefunds.has(command.refundId)) return [];
      return [
        {
          type: 'RefundHeld',
          data: {
            paymentId: command.paymentId,
            tenantId: command.tenantId,
            refundId: command.refundId,
            amountMinor: command.amountMinor,
            currency: command.currency ?? null,
            source: command.source,
          },
        },
      ];
    }
    case 'AttachIdentity': {
      // Only points still held for nobody, of this customer, within the claim window, and only identities new to it.
      if (state.status !== 'completed' || state.outcome !== 'stored_anonymous' || state.consumerId || state.customerId !== command.customerId) return [];
      if (!withinClaimWindow(state.completedAt, command.now)) return [];
      const fresh = newIdentities(state, command.identityHashes);
      if (!fresh.length) return [];
      const { customerId, now: attachedAt, source } = command;
      return [{ type: 'PurchaseIdentityAttached', data: { ...heldPurchaseOf(state), customerId, identityHashes: fresh, attachedAt, source } }];
    }
    case 'LinkCustomer': {
      // Only a purchase held for nobody and with no customer yet: a customer it has is kept, a credited one is done.
      if (state.status !== 'completed' || !awaitsCustomer(state) || state.tenantId !== command.tenantId) return [];
      const fresh = newIdentities(state, command.identityHashes);
      if (command.customerId === null && !fresh.length) return [];
      const { customerId, updatedAt: linkedAt, source } = command;
      return [{ type: 'PurchaseCustomerLinked', data: { ...heldPurchaseOf(state), customerId, identityHashes: fresh, linkedAt, source } }];
    }
    case 'ClaimHeldPoints': {
      if (state.status !== 'completed' || state.outcome !== 'stored_anonymous' || state.consumerId) return [];
      if (!state.identityHashes.includes(command.identityHash)) return [];
      if (!withinClaimWindow(state.completedAt, command.now)) return [];
      const points = state.points - state.pointsReversed;
      if (points <= 0) return [];
      return [
        {
          type: 'HeldPointsClaimed',
          data: { paymentId: state.paymentId, tenantId: state.tenantId, consumerId: command.consumerId, walletId: command.walletId, points, identityHash: command.identityHash, claimedAt: command.now },
        },
      ];
    }
    default:
      return unreachable(command);
  }
}

/** The identities given that the purchase does not carry yet, each once. */
const newIdentities = (state: Completed, hashes: readonly string[]): string[] => [...new Set(hashes)].filter((h) => !state.identityHashes.includes(h));

/** What an event about a held purchase names of it (the claim window runs from `completedAt`). */
const heldPurchaseOf = (state: Completed) => ({ paymentId: state.paymentId, tenantId: state.tenantId, completedAt: state.completedAt });

/** Whether held points completed at `completedAt` can still be claimed at `now` (the last instant included). */
export const withinClaimWindow = (completedAt: string, now: string): boolean => Date.parse(now) - Date.parse(completedAt) <= CLAIM_WINDOW_DAYS * 24 * 3600 * 1000;

/**
 * What a refund takes back of the promotion's points, given what it takes back of the rules' (`rulesReversed`): the
 * same share, floored, so the promotion's points go back "with the rest" whatever each rule's refund basis is.
 */
export function promotionReversalFor(state: Pick<Completed, 'contributions' | 'promotion'>, rulesReversed: number): number {
  const promotion = state.promotion;
  const rulesPoints = state.contributions.reduce((sum, c) => sum + c.points, 0);
  if (!promotion || promotion.points <= 0 || rulesPoints <= 0) return 0;
  const reversedSoFar = state.contributions.reduce((sum, c) => sum + c.reversed, 0) + rulesReversed;
  const target = (BigInt(promotion.points) * BigInt(Math.min(reversedSoFar, rulesPoints))) / BigInt(rulesPoints);
  return Math.max(0, Number(target) - promotion.reversed);
}

function applyRefund(state: Completed, refundId: string, amountMinor: number, source: string, walletEffect: WalletEffect = 'reactor'): PaymentEvent {
  // Each rule's points go back by its own basis (a visit only on a full refund); together, what the refunds so far take.
  const contributions = state.contributions.map((c) => ({
    ruleId: c.ruleId,
    pointsReversed: reversalFor({ ...state, points: c.points, pointsReversed: c.reversed, refundBasis: c.refundBasis }, amountMinor),
  }));
  const rulesReversed = contributions.reduce((sum, c) => sum + c.pointsReversed, 0);
  return {
    type: 'RefundApplied',
    data: {
      paymentId: state.paymentId,
      tenantId: state.tenantId,
      refundId,
      amountMinor,
      pointsReversed: rulesReversed + promotionReversalFor(state, rulesReversed),
      walletId: state.walletId,
      consumerId: state.consumerId,
      source,
      walletEffect,
      contributions: contributions.filter((c) => c.pointsReversed > 0),
    },
  };
}

/** A refund's per-rule reversals added to the contributions (a refund stored before them counts against the first). */
function reversedBy(contributions: Completed['contributions'], event: Extract<PaymentEvent, { type: 'RefundApplied' }>): Completed['contributions'] {
  if (!event.data.contributions.length) return contributions.map((c, i) => (i === 0 ? { ...c, reversed: c.reversed + event.data.pointsReversed } : c));
  const by = new Map(event.data.contributions.map((c) => [c.ruleId, c.pointsReversed]));
  return contributions.map((c) => ({ ...c, reversed: c.reversed + (by.get(c.ruleId) ?? 0) }));
}

function evolve(state: PaymentState, event: PaymentEvent): PaymentState {
  switch (event.type) {
    case 'PaymentStatusObserved':
      if (state.status === 'completed') return state;
      return { status: 'waiting', lastStatus: event.data.status, lastUpdatedAt: event.data.updatedAt, heldRefunds: state.heldRefunds };
    case 'PurchaseCompleted': {
      const d = event.data;
      return {
        status: 'completed',
        paymentId: d.paymentId,
        tenantId: d.tenantId,
        outcome: d.outcome,
        points: d.points,
        amountMinor: d.amountMinor,
        totalMinor: d.totalMinor,
        currency: d.currency,
        customerId: d.customerId,
        refundBasis: d.refundBasis,
        identityHashes: d.identityHashes,
        consumerId: d.outcome === 'credited' ? d.consumerId : null,
        walletId: d.walletId,
        ruleId: d.ruleId,
        ruleVersion: d.ruleVersion,
        basis: d.basis,
        basisAmountMinor: d.basisAmountMinor,
        completedAt: d.completedAt,
        source: d.source,
        linkedBy: null,
        refundedMinor: 0,
        pointsReversed: 0,
        refunds: new Set(),
        contributions: d.contributions.map((c) => ({ ruleId: c.ruleId, points: c.points, refundBasis: c.refundBasis, reversed: 0 })),
        promotion: d.promotion ? { points: d.promotion.points, reversed: 0 } : null,
      };
    }
    case 'RefundHeld':
      if (state.status === 'completed') return state;
      return {
        ...state,
        heldRefunds: new Map(state.heldRefunds).set(event.data.refundId, { amountMinor: event.data.amountMinor, tenantId: event.data.tenantId, currency: event.data.currency }),
      };
    case 'RefundApplied':
      if (state.status !== 'completed') return state;
      return {
        ...state,
        refundedMinor: state.refundedMinor + event.data.amountMinor,
        pointsReversed: state.pointsReversed + event.data.pointsReversed,
        refunds: new Set(state.refunds).add(event.data.refundId),
        contributions: reversedBy(state.contributions, event),
        // The contributions list the rules' part of a reversal; the rest of `pointsReversed` was the promotion's.
        promotion: state.promotion && event.data.contributions.length ? { ...state.promotion, reversed: state.promotion.reversed + event.data.pointsReversed - event.data.contributions.reduce((sum, c) => sum + c.pointsReversed, 0) } : state.promotion,
      };
    case 'HeldPointsClaimed':
      if (state.status !== 'completed') return state;
      return { ...state, consumerId: event.data.consumerId, walletId: event.data.walletId };
    case 'PurchaseIdentityAttached':
      if (state.status !== 'completed') return state;
      return { ...state, identityHashes: [...state.identityHashes, ...event.data.identityHashes] };
    case 'PurchaseCustomerLinked':
      if (state.status !== 'completed') return state;
      return {
        ...state,
        customerId: event.data.customerId ?? state.customerId,
        identityHashes: [...state.identityHashes, ...event.data.identityHashes],
        linkedBy: event.data.source,
      };
    default:
      return unreachable(event);
  }
}

export const paymentDecider: Decider<PaymentCommand, PaymentEvent, PaymentState> = {
  codec: paymentEvents,
  decide,
  evolve,
  initialState: { status: 'unseen', heldRefunds: new Map() },
};
