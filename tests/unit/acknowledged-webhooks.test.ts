/**
 * A webhook is parsed once: the inline worker takes the event its acknowledgement parsed (AcknowledgedWebhooks),
 * once, within a bound; a webhook not held is parsed from its stored body, as before.
 */
import test from 'ava';
import { AcknowledgedWebhooks } from '../../adapters/workers/acknowledged-webhooks.ts';
import { webhookHandler } from '../../domain/payments/webhook-handler.ts';
import type { IngestionService } from '../../domain/payments/ingestion.ts';
import { parseSquareWebhook } from '../../domain/square/webhook.ts';
import { paymentWebhook } from '../support/square-webhooks.ts';

const event = (eventId: string) => parseSquareWebhook(paymentWebhook({ eventId, merchantId: 'M-1', paymentId: `pay-${eventId}`, amount: 1000 }));

test('a kept webhook is taken once; past the capacity the oldest go', (t) => {
  const held = new AcknowledgedWebhooks(2);
  held.keep(event('e1'));
  held.keep(event('e2'));
  held.keep(event('e3'));
  t.is(held.size, 2);
  t.is(held.take('e1'), undefined, 'the oldest went');
  t.is(held.take('e2')?.eventId, 'e2');
  t.is(held.take('e2'), undefined, 'taken once: a retry parses the body again');
  t.is(held.take('e3')?.eventId, 'e3');
});

test('the batch decides on the event its acknowledgement parsed, and parses the body of one not held', async (t) => {
  const held = new AcknowledgedWebhooks();
  held.keep(event('held'));
  const handler = webhookHandler({
    ingestion: { ingestBatch: async () => [] } as unknown as IngestionService,
    catchUp: async () => undefined,
    // No connection for the merchant: a payment is settled as `no_connection` without reaching the ingestion.
    tenantForMerchant: () => undefined,
    markRevoked: async () => undefined,
    forgetCustomer: async () => undefined,
    attachIdentity: async () => 0,
    parsedAtAcknowledgement: (eventId) => held.take(eventId),
  });
  // The stored bodies are not JSON: only the one held is decided without reading its body.
  const [fromAck, fromBody] = await handler.handleBatch([
    { eventId: 'held', rawBody: '{' },
    { eventId: 'not-held', rawBody: '{' },
  ]);
  t.like(fromAck, { ok: true, result: { outcome: 'no_connection' } });
  t.like(fromBody, { ok: false });
  t.is(held.size, 0);
});
