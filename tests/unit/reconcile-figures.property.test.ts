/**
 * Reconciliation sums a wallet's figures as the feed goes by instead of folding the wallet decider (measured 2×
 * faster, a tenth of the memory). The two must never drift: for any sequence of commands the decider accepts
 * (credits, reversals, redemptions, admin and merchant adjustments, rewards issued, redeemed, voided and expired,
 * points expired), the replayed figures equal the decider's own state, locked and expired points included, and
 * there is one ledger line per event.
 */
import test from 'ava';
import fc from 'fast-check';
import { walletDecider, type WalletCommand, type WalletEvent, type WalletState } from '../../domain/wallets/wallet.ts';
import { DomainError } from '../../domain/shared/errors.ts';
import { replayedFigures } from '../../projections/ops/reconcile.ts';

const W = { walletId: 'w-1', tenantId: 't-1', consumerId: 'c-1' };

const commandArb: fc.Arbitrary<WalletCommand> = fc.oneof(
  fc.record({ payment: fc.integer({ min: 0, max: 20 }), points: fc.integer({ min: 0, max: 10_000 }), claim: fc.boolean() }).map(
    ({ payment, points, claim }): WalletCommand => ({
      type: 'CreditPoints',
      ...W,
      paymentId: `pay-${payment}`,
      points,
      ruleId: 'r-1',
      ruleVersion: 1,
      basis: 'amount',
      basisAmountMinor: points * 100,
      via: claim ? 'claim' : 'purchase',
    }),
  ),
  fc.record({ payment: fc.integer({ min: 0, max: 20 }), refund: fc.integer({ min: 0, max: 40 }), points: fc.integer({ min: 0, max: 10_000 }) }).map(
    ({ payment, refund, points }): WalletCommand => ({ type: 'ReversePoints', ...W, paymentId: `pay-${payment}`, refundId: `ref-${refund}`, points }),
  ),
  fc.record({ key: fc.integer({ min: 0, max: 30 }), points: fc.integer({ min: 1, max: 5_000 }) }).map(
    ({ key, points }): WalletCommand => ({ type: 'RedeemPoints', walletId: W.walletId, points, idempotencyKey: `k-${key}`, reference: null, by: 'u-1' }),
  ),
  fc.record({ key: fc.option(fc.integer({ min: 0, max: 30 })), points: fc.integer({ min: -5_000, max: 5_000 }).filter((p) => p !== 0), merchant: fc.boolean() }).map(
    ({ key, points, merchant }): WalletCommand => ({
      type: 'AdjustPoints',
      walletId: W.walletId,
      points,
      reason: 'fix',
      by: 'admin-1',
      idempotencyKey: key === null ? null : `a-${key}`,
      as: merchant ? 'merchant' : 'admin',
      limit: merchant ? 1_000 : null,
    }),
  ),
  // The reward lifecycle: issue (locks), redeem (spends), void and expire (unlock), on a handful of issued rewards.
  fc.record({ reward: fc.integer({ min: 0, max: 2 }), key: fc.integer({ min: 0, max: 30 }), points: fc.integer({ min: 1, max: 3_000 }) }).map(
    ({ reward, key, points }): WalletCommand => ({
      type: 'IssueReward',
      walletId: W.walletId,
      issuedRewardId: `ir-${reward}`,
      reward: { rewardId: `rw-${points}`, version: 1, name: 'reward', points },
      idempotencyKey: `i-${key}`,
      by: 'cashier',
      now: NOW,
      expiresAt: EXPIRES,
    }),
  ),
  fc.record({ reward: fc.integer({ min: 0, max: 2 }), key: fc.integer({ min: 0, max: 30 }), late: fc.boolean() }).map(
    ({ reward, key, late }): WalletCommand => ({ type: 'RedeemReward', walletId: W.walletId, issuedRewardId: `ir-${reward}`, idempotencyKey: `rr-${key}`, by: 'cashier', now: late ? EXPIRES : NOW }),
  ),
  fc.integer({ min: 0, max: 2 }).map((reward): WalletCommand => ({ type: 'VoidReward', walletId: W.walletId, issuedRewardId: `ir-${reward}`, reason: null, by: 'cashier' })),
  fc.record({ reward: fc.integer({ min: 0, max: 2 }), late: fc.boolean() }).map(
    ({ reward, late }): WalletCommand => ({ type: 'ExpireReward', walletId: W.walletId, issuedRewardId: `ir-${reward}`, now: late ? EXPIRES : NOW }),
  ),
  // Points expiry; `atEventCount: -1` is filled with the state's count when it is decided (a run computing it fresh).
  fc.record({ day: fc.integer({ min: 1, max: 5 }), points: fc.integer({ min: 1, max: 8_000 }), stale: fc.boolean() }).map(
    ({ day, points, stale }): WalletCommand => ({
      type: 'ExpirePoints',
      walletId: W.walletId,
      period: `2027-01-0${day}`,
      points,
      rule: 'earned',
      policyVersion: 1,
      asOf: `2027-01-0${day}T03:00:00.000Z`,
      atEventCount: stale ? 0 : -1,
    }),
  ),
);

const NOW = '2026-11-10T12:00:00.000Z';
const EXPIRES = '2026-12-10T12:00:00.000Z';

test('replayed figures equal the wallet decider for any accepted command sequence', (t) => {
  let runs = 0;
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(fc.array(commandArb, { minLength: 10, maxLength: 60 }), (commands) => {
      runs++;
      let state: WalletState = walletDecider.initialState;
      const events: WalletEvent[] = [];
      for (const generated of commands) {
        const command = generated.type === 'ExpirePoints' && generated.atEventCount === -1 ? { ...generated, atEventCount: state.eventCount } : generated;
        let produced: WalletEvent[];
        try {
          produced = walletDecider.decide(command, state);
        } catch (error) {
          if (error instanceof DomainError) continue; // refused (overdraft, key reused): nothing recorded
          throw error;
        }
        for (const event of produced) {
          state = walletDecider.evolve(state, event);
          events.push(event);
          seen.set(event.type, (seen.get(event.type) ?? 0) + 1);
        }
      }
      const figures = replayedFigures(events);
      return (
        figures.balance === state.balance &&
        figures.lifetimeEarned === state.lifetimeEarned &&
        figures.lifetimeRedeemed === state.lifetimeRedeemed &&
        figures.locked === state.locked &&
        figures.lifetimeExpired === state.lifetimeExpired &&
        figures.ledgerLines === events.filter((e) => e.type !== 'PointsCreditRefused').length
      );
    }),
    { numRuns: 500, seed: Number(process.env.PROPERTY_SEED ?? 20261126) },
  );
  t.is(runs >= 500, true);
  for (const type of ['RewardIssued', 'RewardRedeemed', 'RewardVoided', 'RewardExpired', 'PointsExpired', 'PointsAdjusted']) {
    t.true((seen.get(type) ?? 0) > 0, `the generated sequences include ${type}: ${JSON.stringify(Object.fromEntries(seen))}`);
  }
  t.log(JSON.stringify(Object.fromEntries(seen)));
});
