/**
 * Reconciliation sums a wallet's figures as the feed goes by instead of folding the wallet decider (measured 2×
 * faster, a tenth of the memory). The two must never drift: for any sequence of commands the decider accepts,
 * the replayed figures equal the decider's own state, and there is one ledger line per event.
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
  fc.record({ key: fc.option(fc.integer({ min: 0, max: 30 })), points: fc.integer({ min: -5_000, max: 5_000 }).filter((p) => p !== 0) }).map(
    ({ key, points }): WalletCommand => ({ type: 'AdjustPoints', walletId: W.walletId, points, reason: 'fix', by: 'admin-1', idempotencyKey: key === null ? null : `a-${key}` }),
  ),
);

test('replayed figures equal the wallet decider for any accepted command sequence', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 60 }), (commands) => {
      runs++;
      let state: WalletState = walletDecider.initialState;
      const events: WalletEvent[] = [];
      for (const command of commands) {
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
        }
      }
      const figures = replayedFigures(events);
      return (
        figures.balance === state.balance &&
        figures.lifetimeEarned === state.lifetimeEarned &&
        figures.lifetimeRedeemed === state.lifetimeRedeemed &&
        figures.ledgerLines === events.length
      );
    }),
    { numRuns: 500, seed: Number(process.env.PROPERTY_SEED ?? 20261126) },
  );
  t.is(runs >= 500, true);
});
