/**
 * Square facts become purchase commands here, whether a webhook or a poll reported them: one path, so a
 * payment is credited once whatever mix of sources reports it. Outcomes use the seed's names.
 */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { EventMetadata, EventStore, Position } from '../ports/event-store.ts';
import type { IdentityHasher, Runtime } from '../ports/identity.ts';
import type { SquarePayment, SquareRefund } from '../ports/square.ts';
import type { RewardRule } from '../rewards/rule.ts';
import { tryNormaliseEmail, tryNormalisePhone } from '../identity/normalise.ts';
import { purchaseDecider, purchaseStream, type CreditOutcome, type PurchaseState, type Resolution } from './purchase.ts';

export type IngestionOutcome =
  | CreditOutcome
  | 'duplicate'
  | 'recorded'
  | 'stale'
  | 'refund_applied'
  | 'refund_held'
  | 'refund_pending'
  | 'ignored'
  | 'no_connection'
  | 'revoked'
  | 'failed';

export interface IngestionDependencies {
  store: EventStore;
  runtime: Runtime;
  hasher: IdentityHasher;
  activeRule(tenantId: string): Promise<{ ruleId: string; version: number; rule: RewardRule } | null>;
  /** The Square customer's contact details as the merchant typed them, or null when Square does not know it. */
  customerContacts(tenantId: string, customerId: string): Promise<{ email: string | null; phone: string | null } | null>;
  /** The approved consumer one of these identity hashes belongs to. */
  consumerByIdentity(identityHashes: readonly string[]): Promise<string | undefined>;
  walletIdFor(tenantId: string, consumerId: string): string;
}

export interface IngestionResult {
  outcome: IngestionOutcome;
  position: Position | undefined;
  detail?: Record<string, unknown>;
}

function outcomeOf(before: PurchaseState, source: string): IngestionOutcome {
  // A source whose effect is already recorded (a crash between append and acknowledgement) gets its own outcome back.
  if (before.status === 'completed') return before.source === source ? before.outcome : 'duplicate';
  return 'stale';
}

export function ingestionService(deps: IngestionDependencies) {
  const context = (metadata: EventMetadata) => ({ newId: deps.runtime.newId, metadata });

  async function identify(tenantId: string, customerId: string | null): Promise<{ hashes: string[]; resolution: Resolution }> {
    if (!customerId) return { hashes: [], resolution: { kind: 'anonymous' } };
    const contacts = await deps.customerContacts(tenantId, customerId);
    const email = tryNormaliseEmail(contacts?.email);
    const phone = tryNormalisePhone(contacts?.phone);
    const hashes = [...(email ? [deps.hasher.hashEmail(email)] : []), ...(phone ? [deps.hasher.hashPhone(phone)] : [])];
    const consumerId = hashes.length ? await deps.consumerByIdentity(hashes) : undefined;
    return {
      hashes,
      resolution: consumerId ? { kind: 'consumer', consumerId, walletId: deps.walletIdFor(tenantId, consumerId) } : { kind: 'anonymous' },
    };
  }

  return {
    async ingestPayment(tenantId: string, merchantId: string, payment: SquarePayment, source: string, metadata: EventMetadata): Promise<IngestionResult> {
      const stream = purchaseStream(payment.id);
      const loaded = await loadState(deps.store, stream, purchaseDecider);
      const before = loaded.state;
      if (before.status === 'completed') return { outcome: outcomeOf(before, source), position: undefined };
      // Only a completion needs the customer and the rule; other statuses are recorded as they are.
      const completing = payment.status === 'COMPLETED';
      const identity = completing ? await identify(tenantId, payment.customerId) : { hashes: [], resolution: { kind: 'anonymous' } as const };
      const activeRule = completing ? await deps.activeRule(tenantId) : null;
      const result = await handleCommand(
        deps.store,
        stream,
        purchaseDecider,
        {
          type: 'ObservePayment',
          tenantId,
          merchantId,
          payment: {
            paymentId: payment.id,
            status: payment.status,
            amountMinor: payment.amountMinor,
            tipMinor: payment.tipMinor,
            totalMinor: payment.totalMinor,
            currency: payment.currency,
            customerId: payment.customerId,
            locationId: payment.locationId,
            updatedAt: payment.updatedAt,
            createdAt: payment.createdAt,
          },
          identityHashes: identity.hashes,
          resolution: identity.resolution,
          activeRule,
          source,
        },
        context(metadata),
        loaded,
      );
      const completion = result.events.find((e) => e.type === 'PurchaseCompleted');
      if (completion?.type === 'PurchaseCompleted') {
        return { outcome: completion.data.outcome, position: result.position, detail: { points: completion.data.points, paymentId: payment.id } };
      }
      if (result.events.length) return { outcome: 'recorded', position: result.position, detail: { status: payment.status } };
      return { outcome: outcomeOf(result.state, source), position: undefined };
    },

    async ingestRefund(tenantId: string, refund: SquareRefund, source: string, metadata: EventMetadata): Promise<IngestionResult> {
      if (!refund.paymentId) return { outcome: 'ignored', position: undefined, detail: { reason: 'refund without a payment' } };
      if (refund.status !== 'COMPLETED') return { outcome: 'refund_pending', position: undefined, detail: { status: refund.status } };
      const result = await handleCommand(
        deps.store,
        purchaseStream(refund.paymentId),
        purchaseDecider,
        { type: 'ObserveRefund', tenantId, refundId: refund.id, paymentId: refund.paymentId, status: refund.status, amountMinor: refund.amountMinor, source },
        context(metadata),
      );
      const event = result.events[0];
      if (event?.type === 'RefundApplied') return { outcome: 'refund_applied', position: result.position, detail: { pointsReversed: event.data.pointsReversed } };
      if (event?.type === 'RefundHeld') return { outcome: 'refund_held', position: result.position };
      if (result.state.status === 'completed' && result.state.tenantId !== tenantId) {
        return { outcome: 'ignored', position: undefined, detail: { reason: "the refund's merchant did not take this payment" } };
      }
      return { outcome: 'duplicate', position: undefined };
    },
  };
}

export type IngestionService = ReturnType<typeof ingestionService>;
