/**
 * A consumer's wallet at one tenant (stream `wallet-<walletId>`). The balance is the fold of its events;
 * every change names its cause. Points are integers; a refund may take the balance below zero (as Square
 * Loyalty allows), a redemption never does.
 */
import { z } from 'zod';
import type { Decider, StateSnapshots } from '../shared/decider.ts';
import { DomainError } from '../shared/errors.ts';
import { GrowOnlyMap, GrowOnlySet } from '../shared/grow-only.ts';
import { walletEvents, type WalletEvent } from './events.ts';

export type { WalletEvent } from './events.ts';

export interface WalletState {
  walletId: string | null;
  tenantId: string | null;
  consumerId: string | null;
  balance: number;
  lifetimeEarned: number;
  lifetimeRedeemed: number;
  /** These grow with the stream: append-only collections, so each event costs O(1) however long the wallet is. */
  creditedPayments: GrowOnlySet<string>;
  reversedRefunds: GrowOnlySet<string>;
  /** Redemptions and adjustments by idempotency key: what was asked, so a replay with another body is refused. */
  requests: GrowOnlyMap<string, WalletRequest>;
}

export interface WalletRequest {
  kind: 'redeem' | 'adjust';
  points: number;
  reference: string | null;
  reason: string | null;
}

export type WalletCommand =
  | {
      type: 'CreditPoints';
      walletId: string;
      tenantId: string;
      consumerId: string;
      paymentId: string;
      points: number;
      ruleId: string;
      ruleVersion: number;
      basis: 'amount' | 'total';
      basisAmountMinor: number;
      via: 'purchase' | 'claim';
    }
  | { type: 'ReversePoints'; walletId: string; tenantId: string; consumerId: string; paymentId: string; refundId: string; points: number }
  | { type: 'RedeemPoints'; walletId: string; points: number; idempotencyKey: string; reference: string | null; by: string }
  | { type: 'AdjustPoints'; walletId: string; points: number; reason: string; by: string; idempotencyKey: string | null };

export const walletStream = (walletId: string) => `wallet-${walletId}`;

export const initialWalletState: WalletState = {
  walletId: null,
  tenantId: null,
  consumerId: null,
  balance: 0,
  lifetimeEarned: 0,
  lifetimeRedeemed: 0,
  creditedPayments: GrowOnlySet.empty(),
  reversedRefunds: GrowOnlySet.empty(),
  requests: GrowOnlyMap.empty(),
};

const walletSnapshotSchema = z.object({
  walletId: z.string().nullable(),
  tenantId: z.string().nullable(),
  consumerId: z.string().nullable(),
  balance: z.number().int(),
  lifetimeEarned: z.number().int(),
  lifetimeRedeemed: z.number().int(),
  creditedPayments: z.array(z.string()),
  reversedRefunds: z.array(z.string()),
  requests: z.array(
    z.tuple([
      z.string(),
      z.object({ kind: z.enum(['redeem', 'adjust']), points: z.number().int(), reference: z.string().nullable(), reason: z.string().nullable() }),
    ]),
  ),
});

/** A wallet's state as a snapshot: its sets and its map as arrays, in insertion order. */
export const walletSnapshots: StateSnapshots<WalletState> = {
  version: 1,
  toJson: (state) => ({
    walletId: state.walletId,
    tenantId: state.tenantId,
    consumerId: state.consumerId,
    balance: state.balance,
    lifetimeEarned: state.lifetimeEarned,
    lifetimeRedeemed: state.lifetimeRedeemed,
    creditedPayments: state.creditedPayments.values(),
    reversedRefunds: state.reversedRefunds.values(),
    requests: state.requests.entries().map(([key, request]) => [key, { ...request }]),
  }),
  fromJson(json) {
    const parsed = walletSnapshotSchema.parse(json);
    return {
      ...parsed,
      creditedPayments: GrowOnlySet.from(parsed.creditedPayments),
      reversedRefunds: GrowOnlySet.from(parsed.reversedRefunds),
      requests: GrowOnlyMap.from(parsed.requests),
    };
  },
};

function owner(state: WalletState) {
  if (!state.walletId || !state.tenantId || !state.consumerId) throw new DomainError('NOT_FOUND', 'Wallet not found');
  return { walletId: state.walletId, tenantId: state.tenantId, consumerId: state.consumerId };
}

export const walletDecider: Decider<WalletCommand, WalletEvent, WalletState> = {
  codec: walletEvents,
  initialState: initialWalletState,
  snapshots: walletSnapshots,
  decide(command, state) {
    switch (command.type) {
      case 'CreditPoints': {
        // Exactly once per payment, however often the reactor delivers it.
        if (state.creditedPayments.has(command.paymentId)) return [];
        const { type: _type, ...data } = command;
        return [{ type: 'PointsCredited', data }];
      }
      case 'ReversePoints': {
        if (state.reversedRefunds.has(command.refundId)) return [];
        const { type: _type, ...data } = command;
        return [{ type: 'PointsReversed', data }];
      }
      case 'RedeemPoints': {
        const previous = state.requests.get(command.idempotencyKey);
        if (previous) {
          if (previous.kind !== 'redeem' || previous.points !== command.points || previous.reference !== command.reference) {
            throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This idempotencyKey was used with a different request; use a new key');
          }
          return [];
        }
        const wallet = owner(state);
        if (state.balance < command.points) {
          throw new DomainError('INSUFFICIENT_POINTS', `The wallet has ${state.balance} points; ${command.points} were asked`, {
            balance: state.balance,
            requested: command.points,
          });
        }
        return [
          {
            type: 'PointsRedeemed',
            data: { ...wallet, points: command.points, idempotencyKey: command.idempotencyKey, reference: command.reference, redeemedBy: command.by },
          },
        ];
      }
      case 'AdjustPoints': {
        if (command.idempotencyKey) {
          const previous = state.requests.get(command.idempotencyKey);
          if (previous) {
            if (previous.kind !== 'adjust' || previous.points !== command.points || previous.reason !== command.reason) {
              throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This idempotencyKey was used with a different request; use a new key');
            }
            return [];
          }
        }
        const wallet = owner(state);
        return [
          {
            type: 'PointsAdjusted',
            data: { ...wallet, points: command.points, reason: command.reason, adjustedBy: command.by, idempotencyKey: command.idempotencyKey },
          },
        ];
      }
      default: {
        const unexpected: never = command;
        return unexpected;
      }
    }
  },
  evolve(state, event) {
    const opened = { walletId: event.data.walletId, tenantId: event.data.tenantId, consumerId: event.data.consumerId };
    switch (event.type) {
      case 'PointsCredited':
        return {
          ...state,
          ...opened,
          balance: state.balance + event.data.points,
          lifetimeEarned: state.lifetimeEarned + event.data.points,
          creditedPayments: state.creditedPayments.add(event.data.paymentId),
        };
      case 'PointsReversed':
        return {
          ...state,
          ...opened,
          balance: state.balance - event.data.points,
          lifetimeEarned: state.lifetimeEarned - event.data.points,
          reversedRefunds: state.reversedRefunds.add(event.data.refundId),
        };
      case 'PointsRedeemed':
        return {
          ...state,
          ...opened,
          balance: state.balance - event.data.points,
          lifetimeRedeemed: state.lifetimeRedeemed + event.data.points,
          requests: state.requests.set(event.data.idempotencyKey, { kind: 'redeem', points: event.data.points, reference: event.data.reference, reason: null }),
        };
      case 'PointsAdjusted': {
        const requests = event.data.idempotencyKey
          ? state.requests.set(event.data.idempotencyKey, { kind: 'adjust' as const, points: event.data.points, reference: null, reason: event.data.reason })
          : state.requests;
        return { ...state, ...opened, balance: state.balance + event.data.points, requests };
      }
      default: {
        const unexpected: never = event;
        return unexpected;
      }
    }
  },
};

/** The balance-changing amount of an event, signed, for ledgers and reconciliation. */
export function pointsDelta(event: WalletEvent): number {
  switch (event.type) {
    case 'PointsCredited':
      return event.data.points;
    case 'PointsReversed':
      return -event.data.points;
    case 'PointsRedeemed':
      return -event.data.points;
    case 'PointsAdjusted':
      return event.data.points;
    default: {
      const unexpected: never = event;
      return unexpected;
    }
  }
}

export const WALLET_EVENT_TYPES = walletEvents.types;
