/**
 * Wallet use cases: a merchant redeems points, issues, redeems and voids rewards, and corrects a balance within
 * the workspace's limit; an administrator adjusts a balance; the expiry run expires points and issued rewards.
 * All go through the one command handler on the wallet's stream, which decides again on the fresh state when a
 * concurrent write wins, so concurrent redemptions and rewards can never overdraw a wallet.
 */
import { handleCommand, loadState, type CommandResult } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { Decider } from '../shared/decider.ts';
import { NotFound } from '../shared/errors.ts';
import type { EventMetadata, EventStore, Position } from '../ports/event-store.ts';
import type { Runtime } from '../ports/identity.ts';
import {
  availablePoints,
  walletDecider,
  walletStream,
  type RequestAnswer,
  type RewardToIssue,
  type WalletCommand,
  type WalletEvent,
  type WalletState,
} from './wallet.ts';
import { DomainError } from '../shared/errors.ts';
import { expiryDue, periodOf, timelineOf, type ExpiryPolicy } from './expiry.ts';

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
  /** The balance less the points locked by issued rewards. */
  available: number;
  locked: number;
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

// Over 80 lines because it is a factory: the wallet operations it returns (redemptions, adjustments, rewards, expiry) share its dependencies, and each is short.
export function walletsService(deps: WalletsDependencies) {
  const { store, runtime, commands } = deps;
  const context = (metadata: EventMetadata) => ({ newId: runtime.newId, metadata, path: commands });

  /**
   * The answer the request got the first time, and its event: the figures the wallet kept for it (`RequestAnswer`)
   * and the one event at its revision, read for its position. Bounded however long the stream: a retry after a
   * timeout, which idempotency keys are for, costs about what the first request did.
   */
  async function firstAnswer(walletId: string, state: WalletState, original: Original): Promise<{ written: WalletWriteResult; event: WalletEvent }> {
    const kept = original.kept(state);
    if (!kept) throw new Error(`wallet ${walletId}: a request was decided as a replay, but the wallet kept no answer for it`);
    const [recorded] = await store.readStream(walletStream(walletId), { fromRevision: kept.revision, limit: 1 });
    const event = recorded && walletDecider.codec.decode(recorded);
    if (!recorded || !event || !original.is(event)) throw new Error(`wallet ${walletId}: the event at revision ${kept.revision} is not the first request's`);
    return { written: { ...figures(walletId, kept), position: recorded.position, replayed: true }, event };
  }

  async function answer(walletId: string, result: CommandResult<WalletEvent, WalletState>, original: Original): Promise<WalletWriteResult> {
    if (result.position !== undefined) return { ...figures(walletId, result.state), position: result.position, replayed: false };
    return (await firstAnswer(walletId, result.state, original)).written;
  }

  const run = (tenantId: string | null, walletId: string, command: WalletCommand, metadata: EventMetadata) =>
    handleCommand(store, walletStream(walletId), tenantId === null ? walletDecider : withinTenant(tenantId), command, context(metadata));

  /** The issued reward an answer is about: the one just issued, or the first request's on a replay. */
  async function issuedAnswer(walletId: string, result: CommandResult<WalletEvent, WalletState>, idempotencyKey: string): Promise<IssuedRewardResult> {
    const original = request('RewardIssued', idempotencyKey);
    const { written, event: issued } =
      result.position !== undefined
        ? { written: await answer(walletId, result, original), event: result.events.find(original.is) }
        : await firstAnswer(walletId, result.state, original);
    if (issued?.type !== 'RewardIssued') throw new Error(`wallet ${walletId}: no RewardIssued for idempotency key`);
    const { issuedRewardId, rewardId, rewardName, points, expiresAt } = issued.data;
    return { ...written, issuedReward: { issuedRewardId, rewardId, name: rewardName, points, expiresAt, status: 'issued' } };
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
      return answer(walletId, result, request('PointsRedeemed', input.idempotencyKey));
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
      return answer(walletId, result, request('PointsAdjusted', idempotencyKey));
    },

    /**
     * A merchant's correction of a wallet of their own workspace, at most `limit` points either way
     * (ADJUSTMENT_ABOVE_LIMIT beyond it); the merchant and the reason are recorded in the event.
     */
    async adjustAsMerchant(tenantId: string, walletId: string, input: AdjustmentRequest, limit: number, merchantId: string, metadata: EventMetadata): Promise<WalletWriteResult> {
      const idempotencyKey = input.idempotencyKey ?? null;
      const result = await run(
        tenantId,
        walletId,
        { type: 'AdjustPoints', walletId, points: input.points, reason: input.reason, by: merchantId, idempotencyKey, as: 'merchant', limit },
        metadata,
      );
      return answer(walletId, result, request('PointsAdjusted', idempotencyKey));
    },

    /** Issues a catalog reward: its points are locked (INSUFFICIENT_POINTS if not available); a repeated key answers as the first time. */
    async issueReward(
      tenantId: string,
      walletId: string,
      input: { reward: RewardToIssue; retiredAt?: string | null; idempotencyKey: string; expiresAfterDays: number },
      by: string,
      metadata: EventMetadata,
    ): Promise<IssuedRewardResult> {
      const now = runtime.now();
      const result = await run(
        tenantId,
        walletId,
        {
          type: 'IssueReward',
          walletId,
          issuedRewardId: runtime.newId(),
          reward: input.reward,
          retiredAt: input.retiredAt ?? null,
          idempotencyKey: input.idempotencyKey,
          by,
          now: now.toISOString(),
          expiresAt: new Date(now.getTime() + input.expiresAfterDays * 86_400_000).toISOString(),
        },
        metadata,
      );
      return issuedAnswer(walletId, result, input.idempotencyKey);
    },

    /** Redeems an issued reward: its locked points are spent. REWARD_NOT_ISSUED if voided/expired/redeemed with another key. */
    async redeemReward(tenantId: string, walletId: string, issuedRewardId: string, idempotencyKey: string, by: string, metadata: EventMetadata): Promise<WalletWriteResult> {
      const result = await run(tenantId, walletId, { type: 'RedeemReward', walletId, issuedRewardId, idempotencyKey, by, now: runtime.now().toISOString() }, metadata);
      return answer(walletId, result, request('RewardRedeemed', idempotencyKey));
    },

    /** Voids an issued reward: its points are available again. Voiding twice is one void. */
    async voidReward(tenantId: string, walletId: string, issuedRewardId: string, reason: string | null, by: string, metadata: EventMetadata): Promise<WalletWriteResult> {
      const result = await run(tenantId, walletId, { type: 'VoidReward', walletId, issuedRewardId, reason, by }, metadata);
      return answer(walletId, result, {
        kept: (state) => state.voidedRewards.get(issuedRewardId),
        is: (e) => e.type === 'RewardVoided' && e.data.issuedRewardId === issuedRewardId,
      });
    },

    /** Gives an issued reward's points back once it is past its time unredeemed; answers whether it did now. */
    async expireReward(walletId: string, issuedRewardId: string, now: Date, metadata: EventMetadata): Promise<boolean> {
      const result = await run(null, walletId, { type: 'ExpireReward', walletId, issuedRewardId, now: now.toISOString() }, metadata);
      return result.events.length > 0;
    },

    /**
     * Expires what the policy says has expired by `asOf`, once per wallet and UTC day. The points are computed from
     * the wallet's events and when they were recorded; if the wallet moves before they are appended, they are
     * computed again. Answers the points expired by this call (0 if none, or if the day's run already did).
     */
    async expirePoints(walletId: string, policy: ExpiryPolicy, asOf: Date, metadata: EventMetadata): Promise<number> {
      for (let attempt = 1; ; attempt++) {
        const recorded = await store.readStream(walletStream(walletId));
        const decoded = recorded.map((r) => walletDecider.codec.decode(r));
        const due = expiryDue(timelineOf(decoded.map((event) => ({ event, at: event.recordedAt }))), policy, asOf);
        if (due.points <= 0) return 0;
        try {
          const result = await run(
            null,
            walletId,
            {
              type: 'ExpirePoints',
              walletId,
              period: periodOf(asOf),
              points: due.points,
              rule: due.rule,
              policyVersion: policy.version,
              asOf: asOf.toISOString(),
              atEventCount: decoded.length,
            },
            metadata,
          );
          const expired = result.events.find((e) => e.type === 'PointsExpired');
          return expired?.type === 'PointsExpired' ? expired.data.points : 0;
        } catch (error) {
          if (error instanceof DomainError && error.code === 'STALE_DECISION' && attempt < commands.retry.attempts) continue;
          throw error;
        }
      }
    },
  };
}

/** A request a replay answers: what the wallet kept of it, and how to know its event. */
interface Original {
  kept(state: WalletState): RequestAnswer | undefined;
  is(event: WalletEvent): boolean;
}

/** The request made under an idempotency key (none: never a replay), recorded as an event of `type`. */
function request(type: 'PointsRedeemed' | 'PointsAdjusted' | 'RewardIssued' | 'RewardRedeemed', idempotencyKey: string | null): Original {
  return {
    kept: (state) => (idempotencyKey === null ? undefined : state.requests.get(idempotencyKey)),
    is: (e) => idempotencyKey !== null && e.type === type && e.data.idempotencyKey === idempotencyKey,
  };
}

function figures(walletId: string, state: Pick<WalletState, 'balance' | 'locked'>) {
  return { walletId, balance: state.balance, available: availablePoints(state), locked: state.locked };
}

/** An issued reward as the API shows it. */
export interface IssuedRewardView {
  issuedRewardId: string;
  rewardId: string;
  name: string;
  points: number;
  expiresAt: string;
  status: 'issued' | 'redeemed' | 'voided' | 'expired';
}

export interface IssuedRewardResult extends WalletWriteResult {
  issuedReward: IssuedRewardView;
}

/** The wallet use cases, as wired in main.ts. */
export type WalletsService = ReturnType<typeof walletsService>;
