/**
 * What a purchase event does to a wallet: a completion credited to a consumer credits the wallet, a refund of
 * it reverses the refunded share, a claim of held points credits them. One rule, used both by batched
 * ingestion (which appends the wallet event in the same atomic append as the purchase event) and by the
 * wallet-credits reactor (which appends it from the feed when the store cannot append atomically, and for
 * claims and events stored before batching).
 */
import { unreachable } from '../shared/exhaustive.ts';
import type { WalletCommand } from '../wallets/wallet.ts';
import type { PaymentEvent } from './payment.ts';

export function walletCommandFor(event: PaymentEvent): WalletCommand | undefined {
  switch (event.type) {
    case 'PurchaseCompleted': {
      const d = event.data;
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
        walletId: event.data.walletId,
        tenantId: event.data.tenantId,
        consumerId: event.data.consumerId,
        paymentId: event.data.paymentId,
        points: event.data.points,
        // The claim carries the points the purchase already decided; rule details stay on the purchase stream.
        ruleId: 'claim',
        ruleVersion: 0,
        basis: 'amount',
        basisAmountMinor: 0,
        via: 'claim',
      };
    case 'RefundApplied':
      if (!event.data.walletId || !event.data.consumerId || event.data.pointsReversed <= 0) return undefined;
      return {
        type: 'ReversePoints',
        walletId: event.data.walletId,
        tenantId: event.data.tenantId,
        consumerId: event.data.consumerId,
        paymentId: event.data.paymentId,
        refundId: event.data.refundId,
        points: event.data.pointsReversed,
      };
    case 'PaymentStatusObserved':
    case 'RefundHeld':
    case 'PurchaseIdentityAttached':
    case 'PurchaseCustomerLinked':
      return undefined;
    default:
      return unreachable(event);
  }
}

/** True when the event's wallet effect was appended with it, so the reactor must not issue it again. */
export const walletEffectIsInline = (event: PaymentEvent): boolean =>
  (event.type === 'PurchaseCompleted' || event.type === 'RefundApplied') && event.data.walletEffect === 'inline';
