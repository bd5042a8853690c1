/**
 * Turns one stored Square webhook into domain commands. The webhook's event id is the causation of what it
 * leads to, so a re-driven webhook finds its own effect instead of counting as a duplicate.
 */
import type { EventMetadata } from '../ports/event-store.ts';
import { parseSquareWebhook } from '../square/webhook.ts';
import type { IngestionResult, IngestionService } from './ingestion.ts';

export interface WebhookHandlerDependencies {
  ingestion: IngestionService;
  /** The tenant whose connection to this Square merchant is active. */
  tenantForMerchant(merchantId: string): Promise<string | undefined>;
  /** `oauth.authorization.revoked`: marks the merchant's connection revoked. */
  markRevoked(merchantId: string, revocation: { revokedAt: string; revokerType: string | null }, metadata: EventMetadata): Promise<string | undefined>;
}

export interface StoredWebhook {
  eventId: string;
  rawBody: string;
}

export function webhookHandler(deps: WebhookHandlerDependencies) {
  return async (webhook: StoredWebhook): Promise<IngestionResult & { tenantId: string | null }> => {
    const event = parseSquareWebhook(JSON.parse(webhook.rawBody));
    const metadata: EventMetadata = {
      correlationId: `webhook:${webhook.eventId}`,
      causationId: `webhook:${webhook.eventId}`,
      actor: `square:${event.merchantId}`,
    };
    const source = `webhook:${webhook.eventId}`;
    switch (event.kind) {
      case 'other':
        return { tenantId: null, outcome: 'ignored', position: undefined };
      case 'authorization-revoked': {
        const tenantId = await deps.markRevoked(event.merchantId, event.object, metadata);
        return { tenantId: tenantId ?? null, outcome: tenantId ? 'revoked' : 'no_connection', position: undefined };
      }
      case 'payment': {
        const tenantId = await deps.tenantForMerchant(event.merchantId);
        if (!tenantId) return { tenantId: null, outcome: 'no_connection', position: undefined };
        return { tenantId, ...(await deps.ingestion.ingestPayment(tenantId, event.merchantId, event.object, source, metadata)) };
      }
      case 'refund': {
        const tenantId = await deps.tenantForMerchant(event.merchantId);
        if (!tenantId) return { tenantId: null, outcome: 'no_connection', position: undefined };
        // A refund of another merchant's payment cannot be keyed to ours: the payment stream carries the tenant.
        return { tenantId, ...(await deps.ingestion.ingestRefund(tenantId, event.object, `webhook:${webhook.eventId}:${event.object.id}`, metadata)) };
      }
      default: {
        const unexpected: never = event;
        return unexpected;
      }
    }
  };
}

export type WebhookHandler = ReturnType<typeof webhookHandler>;
