/**
 * Wallet use cases: a merchant redeems points, an administrator adjusts a balance. Both go through the one
 * command handler on the wallet's stream, which decides again on the fresh state when a concurrent write
 * wins, so concurrent redemptions can never overdraw a wallet.
 */
import { handleCommand, loadState, type CommandResult } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { Decider } from '../shared/decider.ts';
import { NotFound } from '../shared/errors.ts';
import type { EventMetadata, EventStore, Position } from '../ports/event-store.ts';
import type { Runtime } from '../ports/identity.ts';
import { walletDecider, walletStream, type WalletCommand, type WalletEvent, type WalletState } from './wallet.ts';

export interface WalletsDependencies {
  store: EventStore;
  runtime: Runtime;
  /** This process's command path (queue, recent states, snapshots, retries). */
  commands: CommandPath;
}

/** A merchant's redemption. The idempotency key makes a retried request answer as the first one did. */
export interface RedemptionRequest {
  points: number;
  idempotencyKey: string;
  reference?: string | null | undefined;
}

/** An administrator's correction; `reason` is recorded with the admin in the event (the audit trail). */
export interface AdjustmentRequest {
  points: number;
  reason: string;
  idempotencyKey?: string | null | undefined;
}

/** What a write answers: the balance right after it, and its event's position (for `X-Min-Position`). */
export interface WalletWriteResult {
  walletId: string;
  balance: number;
  position: Position;
  /** True when the idempotency key had been used already: the first request's answer is returned. */
  replayed: boolean;
}

/** The wallet decider, treating a wallet of another tenant as missing, before an idempotent replay could answer. */
function withinTenant(tenantId: string): Decider<WalletCommand, WalletEvent, WalletState> {
  return {
    ...walletDecider,
    decide(command, state) {
      if (state.tenantId !== tenantId) throw new NotFound('Wallet');
      return walletDecider.decide(command, state);
    },
  };
}

export function walletsService(deps: WalletsDependencies) {
  const { store, runtime, commands } = deps;
  const context = (metadata: EventMetadata) => ({ newId: runtime.newId, metadata, path: commands });

  /** The answer the request with this key got the first time: the balance once its event applied, and its position. */
  async function firstAnswer(walletId: string, isOriginal: (event: WalletEvent) => boolean): Promise<WalletWriteResult> {
    let state = walletDecider.initialState;
    for (const recorded of await store.readStream(walletStream(walletId))) {
      const event = walletDecider.codec.decode(recorded);
      state = walletDecider.evolve(state, event);
      if (isOriginal(event)) return { walletId, balance: state.balance, position: event.position, replayed: true };
    }
    throw new Error(`wallet ${walletId}: a request was decided as a replay, but no event of the first request is in the stream`);
  }

  async function answer(
    walletId: string,
    result: CommandResult<WalletEvent, WalletState>,
    isOriginal: (event: WalletEvent) => boolean,
  ): Promise<WalletWriteResult> {
    if (result.position !== undefined) return { walletId, balance: result.state.balance, position: result.position, replayed: false };
    return firstAnswer(walletId, isOriginal);
  }

  return {
    /** Fails with NotFound unless the wallet exists and belongs to the tenant. */
    async requireInTenant(tenantId: string, walletId: string): Promise<void> {
      const { state } = await loadState(store, walletStream(walletId), walletDecider, commands);
      if (state.tenantId !== tenantId) throw new NotFound('Wallet');
    },

    /**
     * Redeems points from a wallet of the tenant. INSUFFICIENT_POINTS if the balance is short; a repeated key
     * answers as the first request did; the same key with another body is IDEMPOTENCY_KEY_REUSED.
     */
    async redeem(tenantId: string, walletId: string, input: RedemptionRequest, by: string, metadata: EventMetadata): Promise<WalletWriteResult> {
      const result = await handleCommand(
        store,
        walletStream(walletId),
        withinTenant(tenantId),
        { type: 'RedeemPoints', walletId, points: input.points, idempotencyKey: input.idempotencyKey, reference: input.reference ?? null, by },
        context(metadata),
      );
      return answer(walletId, result, (e) => e.type === 'PointsRedeemed' && e.data.idempotencyKey === input.idempotencyKey);
    },

    /** Adds (positive) or removes (negative) points by an administrator's decision, with the reason recorded. */
    async adjust(walletId: string, input: AdjustmentRequest, adminId: string, metadata: EventMetadata): Promise<WalletWriteResult> {
      const idempotencyKey = input.idempotencyKey ?? null;
      const result = await handleCommand(
        store,
        walletStream(walletId),
        walletDecider,
        { type: 'AdjustPoints', walletId, points: input.points, reason: input.reason, by: adminId, idempotencyKey },
        context(metadata),
      );
      return answer(walletId, result, (e) => idempotencyKey !== null && e.type === 'PointsAdjusted' && e.data.idempotencyKey === idempotencyKey);
    },
  };
}

/** The wallet use cases, as wired in main.ts. */
export type WalletsService = ReturnType<typeof walletsService>;
