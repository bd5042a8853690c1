/**
 * One Square payment, as this service saw it (stream `payment-<paymentId>`): its statuses until it completes,
 * the one outcome of its completion, refunds against it, and a later claim of points held for an unknown
 * customer. Webhooks and polls report the same payment in any mix, order and number: the decider makes the
 * completion happen once, ignores stale states, and holds refunds that arrive before their payment.
 */
import type { Decider } from '../shared/decider.ts';
import type { SquarePayment } from '../ports/square.ts';
import { evaluateRule, type RewardRule } from '../rewards/rule.ts';
import { paymentEvents, type CreditOutcome, type PaymentEvent, type WalletEffect } from './events.ts';

export type { CreditOutcome, PaymentEvent, WalletEffect } from './events.ts';

export const CLAIM_WINDOW_DAYS = 90;

/** A payment as the decider reads it: Square's, named by `paymentId`, without the order. */
export type PaymentFacts = Omit<SquarePayment, 'id' | 'orderId'> & { paymentId: string };

/** The facts of a Square payment. */
export const paymentFacts = ({ id, orderId: _order, ...rest }: SquarePayment): PaymentFacts => ({ paymentId: id, ...rest });

interface Completed {
  status: 'completed';
  paymentId: string;
  tenantId: string;
  outcome: CreditOutcome;
  points: number;
  totalMinor: number;
  identityHashes: string[];
  consumerId: string | null;
  walletId: string | null;
  ruleId: string | null;
  ruleVersion: number | null;
  basis: 'amount' | 'total' | null;
  basisAmountMinor: number | null;
  completedAt: string;
  source: string;
  refundedMinor: number;
  pointsReversed: number;
  refunds: ReadonlySet<string>;
}

export type PaymentState =
  | { status: 'unseen'; heldRefunds: HeldRefunds }
  | { status: 'waiting'; lastStatus: string; lastUpdatedAt: string; heldRefunds: HeldRefunds }
  | Completed;

/** Refunds seen before their payment completed, by refund id, with the tenant whose merchant reported each. */
type HeldRefunds = ReadonlyMap<string, { amountMinor: number; tenantId: string }>;

export type Resolution = { kind: 'consumer'; consumerId: string; walletId: string } | { kind: 'anonymous' };

export type PaymentCommand =
  | {
      type: 'ObservePayment';
      tenantId: string;
      merchantId: string;
      payment: PaymentFacts;
      identityHashes: string[];
      resolution: Resolution;
      activeRule: { ruleId: string; version: number; rule: RewardRule } | null;
      source: string;
      /** Omitted: `reactor`. */
      walletEffect?: WalletEffect;
    }
  | { type: 'ObserveRefund'; tenantId: string; refundId: string; paymentId: string; status: string; amountMinor: number; source: string; walletEffect?: WalletEffect }
  | { type: 'ClaimHeldPoints'; consumerId: string; walletId: string; identityHash: string; now: string };

export const paymentStream = (paymentId: string) => `payment-${paymentId}`;

/** Points to take back so that the total reversed is the refunded share of the points, floored, never more. */
export function reversalFor(state: Pick<Completed, 'points' | 'totalMinor' | 'refundedMinor' | 'pointsReversed'>, refundMinor: number): number {
  if (state.points <= 0 || state.totalMinor <= 0) return 0;
  const refunded = BigInt(Math.min(state.refundedMinor + refundMinor, state.totalMinor));
  const target = (BigInt(state.points) * refunded) / BigInt(state.totalMinor);
  return Math.max(0, Number(target) - state.pointsReversed);
}

const isNewer = (incoming: string, seen: string) => Date.parse(incoming) > Date.parse(seen);

function complete(command: Extract<PaymentCommand, { type: 'ObservePayment' }>): PaymentEvent {
  const { payment, activeRule, resolution } = command;
  const evaluation = activeRule ? evaluateRule(activeRule.rule, { amountMinor: payment.amountMinor, totalMinor: payment.totalMinor }) : null;
  const points = evaluation?.points ?? 0;
  const outcome: CreditOutcome = !activeRule ? 'no_rule_no_credit' : points === 0 ? 'zero_points' : resolution.kind === 'consumer' ? 'credited' : 'stored_anonymous';
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
      points: outcome === 'credited' || outcome === 'stored_anonymous' ? points : 0,
      ruleId: activeRule?.ruleId ?? null,
      ruleVersion: activeRule?.version ?? null,
      basis: evaluation?.basis ?? null,
      basisAmountMinor: evaluation?.basisAmountMinor ?? null,
      completedAt: payment.updatedAt,
      paymentCreatedAt: payment.createdAt,
      source: command.source,
      walletEffect: command.walletEffect ?? 'reactor',
    },
  };
}

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
      for (const [refundId, { amountMinor, tenantId }] of state.heldRefunds) {
        // A refund signed by another merchant does not touch this tenant's payment.
        if (tenantId !== command.tenantId) continue;
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
        return [applyRefund(state, command.refundId, command.amountMinor, command.source, command.walletEffect)];
      }
      if (state.heldRefunds.has(command.refundId)) return [];
      return [{ type: 'RefundHeld', data: { paymentId: command.paymentId, tenantId: command.tenantId, refundId: command.refundId, amountMinor: command.amountMinor, source: command.source } }];
    }
    case 'ClaimHeldPoints': {
      if (state.status !== 'completed' || state.outcome !== 'stored_anonymous' || state.consumerId) return [];
      if (!state.identityHashes.includes(command.identityHash)) return [];
      const ageMs = Date.parse(command.now) - Date.parse(state.completedAt);
      if (ageMs > CLAIM_WINDOW_DAYS * 24 * 3600 * 1000) return [];
      const points = state.points - state.pointsReversed;
      if (points <= 0) return [];
      return [
        {
          type: 'HeldPointsClaimed',
          data: { paymentId: state.paymentId, tenantId: state.tenantId, consumerId: command.consumerId, walletId: command.walletId, points, identityHash: command.identityHash, claimedAt: command.now },
        },
      ];
    }
    default: {
      const unexpected: never = command;
      return unexpected;
    }
  }
}

function applyRefund(state: Completed, refundId: string, amountMinor: number, source: string, walletEffect: WalletEffect = 'reactor'): PaymentEvent {
  return {
    type: 'RefundApplied',
    data: {
      paymentId: state.paymentId,
      tenantId: state.tenantId,
      refundId,
      amountMinor,
      pointsReversed: reversalFor(state, amountMinor),
      walletId: state.walletId,
      consumerId: state.consumerId,
      source,
      walletEffect,
    },
  };
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
        totalMinor: d.totalMinor,
        identityHashes: d.identityHashes,
        consumerId: d.outcome === 'credited' ? d.consumerId : null,
        walletId: d.walletId,
        ruleId: d.ruleId,
        ruleVersion: d.ruleVersion,
        basis: d.basis,
        basisAmountMinor: d.basisAmountMinor,
        completedAt: d.completedAt,
        source: d.source,
        refundedMinor: 0,
        pointsReversed: 0,
        refunds: new Set(),
      };
    }
    case 'RefundHeld':
      if (state.status === 'completed') return state;
      return { ...state, heldRefunds: new Map(state.heldRefunds).set(event.data.refundId, { amountMinor: event.data.amountMinor, tenantId: event.data.tenantId }) };
    case 'RefundApplied':
      if (state.status !== 'completed') return state;
      return {
        ...state,
        refundedMinor: state.refundedMinor + event.data.amountMinor,
        pointsReversed: state.pointsReversed + event.data.pointsReversed,
        refunds: new Set(state.refunds).add(event.data.refundId),
      };
    case 'HeldPointsClaimed':
      if (state.status !== 'completed') return state;
      return { ...state, consumerId: event.data.consumerId, walletId: event.data.walletId };
    default: {
      const unexpected: never = event;
      return unexpected;
    }
  }
}

export const paymentDecider: Decider<PaymentCommand, PaymentEvent, PaymentState> = {
  codec: paymentEvents,
  decide,
  evolve,
  initialState: { status: 'unseen', heldRefunds: new Map() },
};
