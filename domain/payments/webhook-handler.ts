/**
 * Turns stored Square webhooks into domain commands, a batch at a time. The webhook's event id is the causation
 * of what it leads to, so a re-driven webhook finds its own effect instead of counting as a duplicate.
 *
 * Which tenant holds a merchant comes from the in-memory ingestion state, brought to the feed's head before
 * the batch is decided (see `ingestion-state.ts`): no stream is read per webhook for it.
 */
import { unreachable } from '../shared/exhaustive.ts';
import type { EventMetadata, Position, StreamAppend } from '../ports/event-store.ts';
import { parseSquareWebhook, type SquareCustomerChange, type SquareWebhookEvent } from '../square/webhook.ts';
import type { FactResult, IngestionFact, IngestionResult, IngestionService } from './ingestion.ts';

export interface WebhookHandlerDependencies {
  ingestion: IngestionService;
  /** Brings the ingestion state to the feed's head. */
  catchUp(): Promise<void>;
  /** The tenant whose connection to this Square merchant is active, on the caught-up state. */
  tenantForMerchant(merchantId: string): string | undefined;
  /** `oauth.authorization.revoked`: marks the merchant's connection revoked. */
  /** The tenant that held the merchant (undefined: nobody), and whether the revocation predates its authorization. */
  markRevoked(
    merchantId: string,
    revocation: { revokedAt: string; revokerType: string | null },
    metadata: EventMetadata,
  ): Promise<{ tenantId: string; outdated: boolean } | undefined>;
  /**
   * `customer.created` / `customer.updated` / `customer.deleted`: cached contacts of this customer are stale, on every
   * instance: recorded for them all before the webhook settles (a failure fails the webhook, which is retried).
   */
  forgetCustomer(tenantId: string, customerId: string): Promise<void>;
  /** The customer's email or phone is attached to its purchases held for nobody; answers how many took it. */
  attachIdentity(tenantId: string, change: SquareCustomerChange, source: string, metadata: EventMetadata): Promise<number>;
  /**
   * The webhook as its acknowledgement in this process parsed it, if still held (once per webhook): what parsing
   * its stored body again would give. Omitted, or undefined: the body is parsed.
   */
  parsedAtAcknowledgement?(eventId: string): SquareWebhookEvent | undefined;
}

export interface StoredWebhook {
  eventId: string;
  rawBody: string;
}

export type WebhookResult = { ok: true; tenantId: string | null; result: IngestionResult } | { ok: false; tenantId: string | null; error: unknown };

/** Writes the batch's appends and settles the webhooks with their results (one transaction where it can). */
export type WebhookCommit = (requests: readonly StreamAppend[], results: readonly WebhookResult[]) => Promise<Position | undefined>;

const done = (tenantId: string | null, outcome: IngestionResult['outcome'], detail?: Record<string, unknown>): WebhookResult => ({
  ok: true,
  tenantId,
  result: { outcome, position: undefined, ...(detail ? { detail } : {}) },
});

// Over 80 lines because it is a factory whose one method, handleBatch, is the whole batch path (see there).
export function webhookHandler(deps: WebhookHandlerDependencies) {
  const metadataFor = (webhook: StoredWebhook, merchantId: string): EventMetadata => ({
    correlationId: `webhook:${webhook.eventId}`,
    causationId: `webhook:${webhook.eventId}`,
    actor: `square:${merchantId}`,
  });

  /**
   * Handles a batch of webhooks; one result per webhook, in order. `commit` writes the appends and settles the
   * webhooks (default: the ingestion's own append; the caller then settles them).
   */
  // Over 80 lines because the batch path reads as one sequence (parse, revocations, facts by merchant, ingest, results) over arrays indexed by webhook, which each step would otherwise pass on.
  async function handleBatch(webhooks: readonly StoredWebhook[], commit?: WebhookCommit): Promise<WebhookResult[]> {
    const results: (WebhookResult | undefined)[] = webhooks.map(() => undefined);
    const parsed: (SquareWebhookEvent | undefined)[] = webhooks.map((webhook, i) => {
      try {
        return deps.parsedAtAcknowledgement?.(webhook.eventId) ?? parseSquareWebhook(JSON.parse(webhook.rawBody));
      } catch (error) {
        results[i] = { ok: false, tenantId: null, error };
        return undefined;
      }
    });

    // Revocations first, each on its own: payments after them in the batch must see the connection revoked.
    let revoked = false;
    for (const [i, event] of parsed.entries()) {
      const webhook = webhooks[i];
      if (event?.kind !== 'authorization-revoked' || !webhook) continue;
      try {
        const held = await deps.markRevoked(event.merchantId, event.object, metadataFor(webhook, event.merchantId));
        results[i] = done(held?.tenantId ?? null, !held ? 'no_connection' : held.outdated ? 'stale' : 'revoked');
        revoked ||= held !== undefined && !held.outdated;
      } catch (error) {
        results[i] = { ok: false, tenantId: null, error };
      }
    }
    await deps.catchUp();
    if (revoked) await deps.catchUp();

    const facts: IngestionFact[] = [];
    const factOf: number[] = [];
    for (const [i, event] of parsed.entries()) {
      const webhook = webhooks[i];
      if (!event || !webhook || results[i]) continue;
      switch (event.kind) {
        case 'other':
          results[i] = done(null, 'ignored');
          break;
        case 'authorization-revoked':
          break;
        case 'customer-changed': {
          const tenantId = deps.tenantForMerchant(event.merchantId) ?? null;
          if (!tenantId) {
            results[i] = done(null, 'ignored', { reason: 'no active connection for this merchant' });
            break;
          }
          try {
            await deps.forgetCustomer(tenantId, event.object.customerId);
            const attached = await deps.attachIdentity(tenantId, event.object, `webhook:${webhook.eventId}`, metadataFor(webhook, event.merchantId));
            results[i] = attached
              ? done(tenantId, 'identity_attached', { purchases: attached })
              : done(tenantId, 'ignored', { reason: 'no purchase of this customer holds points for nobody; its contacts will be read afresh' });
          } catch (error) {
            results[i] = { ok: false, tenantId, error };
          }
          break;
        }
        case 'payment':
        case 'refund': {
          const tenantId = deps.tenantForMerchant(event.merchantId);
          if (!tenantId) {
            results[i] = done(null, 'no_connection');
            break;
          }
          const metadata = metadataFor(webhook, event.merchantId);
          factOf.push(i);
          facts.push(
            event.kind === 'payment'
              ? { kind: 'payment', tenantId, merchantId: event.merchantId, payment: event.object, source: `webhook:${webhook.eventId}`, metadata }
              : // A refund of another merchant's payment cannot be keyed to ours: the payment stream carries the tenant.
                { kind: 'refund', tenantId, refund: event.object, source: `webhook:${webhook.eventId}:${event.object.id}`, metadata },
          );
          break;
        }
        default:
          return unreachable(event);
      }
    }

    const withFacts = (factResults: readonly FactResult[]): WebhookResult[] => {
      const all = [...results];
      factResults.forEach((r, f) => {
        const i = factOf[f];
        const fact = facts[f];
        if (i === undefined || !fact) return;
        all[i] = r.ok ? { ok: true, tenantId: fact.tenantId, result: r.result } : { ok: false, tenantId: fact.tenantId, error: r.error };
      });
      return all.map((r) => r ?? { ok: false, tenantId: null, error: new Error('webhook was not handled') });
    };
    const factResults = await deps.ingestion.ingestBatch(
      facts,
      commit ? (requests, factResults) => commit(requests, withFacts(factResults)) : undefined,
      { caughtUp: true },
    );
    return withFacts(factResults);
  }

  return { handleBatch };
}

export type WebhookHandler = ReturnType<typeof webhookHandler>;
