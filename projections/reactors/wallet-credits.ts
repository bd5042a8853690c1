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
import type { CommandPath } from '../../domain/shared/command-path.ts';
import { eventCodec, type Decoded, type EventsOf } from '../../domain/shared/codec.ts';
import { walletDecider, walletStream, type WalletCommand } from '../../domain/wallets/wallet.ts';
import { reactor, type Reactor } from '../projection.ts';
import { walletCommandFor, walletEffectIsInline } from '../../domain/payments/wallet-effects.ts';

/** The purchase outcomes that move points in a wallet. */
export const walletCreditsEvents = eventCodec(undefined, purchaseCompleted, heldPointsClaimed, refundApplied);
type Handled = Decoded<EventsOf<typeof walletCreditsEvents>>;

function commandFor(e: Handled): WalletCommand | undefined {
  // Batched ingestion appended this event's wallet effect in the same atomic append: nothing left to do.
  if (walletEffectIsInline(e)) return undefined;
  return walletCommandFor(e);
}

export function walletCreditsReactor(store: EventStore, newId: () => string, path: CommandPath): Reactor {
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
              path,
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
