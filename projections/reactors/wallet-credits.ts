/**
 * The process that carries purchase outcomes into wallets. A purchase decides once, on its own stream, how
 * many points it earns; this reactor then appends the credit (or a refund's reversal, or a claim) to the
 * wallet's stream. It runs from the checkpointed feed like a projection, so a crash between the two writes
 * only means the event is delivered again, and the wallet decider makes a repeated delivery a no-op: no
 * effect lost, none doubled, on either event store.
 */
import type { EventStore } from '../../domain/ports/event-store.ts';
import { heldPointsClaimed, purchaseCompleted, refundApplied } from '../../domain/payments/events.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import { assertNever } from '../../domain/shared/decider.ts';
import { eventCodec, type Decoded, type EventsOf } from '../../domain/shared/codec.ts';
import { walletDecider, walletStream, type WalletCommand } from '../../domain/wallets/wallet.ts';
import { reactor, type Reactor } from '../projection.ts';

/** The purchase outcomes that move points in a wallet. */
export const walletCreditsEvents = eventCodec(undefined, purchaseCompleted, heldPointsClaimed, refundApplied);
type Handled = Decoded<EventsOf<typeof walletCreditsEvents>>;

function commandFor(e: Handled): WalletCommand | undefined {
  switch (e.type) {
    case 'PurchaseCompleted': {
      const d = e.data;
      if (d.outcome !== 'credited' || !d.walletId || !d.consumerId || d.points <= 0 || d.ruleId === null || d.ruleVersion === null || d.basis === null || d.basisAmountMinor === null) {
        return undefined;
      }
      return {
        type: 'CreditPoints',
        walletId: d.walletId,
        tenantId: d.tenantId,
        consumerId: d.consumerId,
        paymentId: d.paymentId,
        points: d.points,
        ruleId: d.ruleId,
        ruleVersion: d.ruleVersion,
        basis: d.basis,
        basisAmountMinor: d.basisAmountMinor,
        via: 'purchase',
      };
    }
    case 'HeldPointsClaimed':
      return {
        type: 'CreditPoints',
        walletId: e.data.walletId,
        tenantId: e.data.tenantId,
        consumerId: e.data.consumerId,
        paymentId: e.data.paymentId,
        points: e.data.points,
        // The claim carries the points the purchase already decided; rule details stay on the purchase stream.
        ruleId: 'claim',
        ruleVersion: 0,
        basis: 'amount',
        basisAmountMinor: 0,
        via: 'claim',
      };
    case 'RefundApplied':
      if (!e.data.walletId || !e.data.consumerId || e.data.pointsReversed <= 0) return undefined;
      return {
        type: 'ReversePoints',
        walletId: e.data.walletId,
        tenantId: e.data.tenantId,
        consumerId: e.data.consumerId,
        paymentId: e.data.paymentId,
        refundId: e.data.refundId,
        points: e.data.pointsReversed,
      };
    default:
      return assertNever(e);
  }
}

export function walletCreditsReactor(store: EventStore, newId: () => string): Reactor {
  return reactor({
    name: 'wallet_credits',
    events: walletCreditsEvents,
    async handle(events) {
      // Wallets are independent: each wallet's commands run in feed order, different wallets concurrently.
      const byWallet = new Map<string, { command: WalletCommand; cause: Handled }[]>();
      for (const event of events) {
        const command = commandFor(event);
        if (!command) continue;
        const list = byWallet.get(command.walletId) ?? [];
        list.push({ command, cause: event });
        byWallet.set(command.walletId, list);
      }
      await Promise.all(
        [...byWallet.entries()].map(async ([walletId, commands]) => {
          for (const { command, cause } of commands) {
            await handleCommand(store, walletStream(walletId), walletDecider, command, {
              newId,
              metadata: {
                correlationId: cause.metadata.correlationId ?? cause.id,
                causationId: cause.id,
                actor: 'system:wallet-credits',
              },
            });
          }
        }),
      );
    },
  });
}
