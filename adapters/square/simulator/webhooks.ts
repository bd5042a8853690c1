/**
 * Square's webhook delivery, as Square does it: the envelope of its published examples, the signature header
 * `x-square-hmacsha256-signature` = base64(HMAC-SHA256(signature key, notification URL + raw body)), a JSON POST.
 * Used by the simulator and by `npm run square -- send` (any Tally, any payload file).
 */
import { createHmac, randomUUID } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-square-hmacsha256-signature';

export function squareSignature(signatureKey: string, notificationUrl: string, body: string): string {
  return createHmac('sha256', signatureKey).update(notificationUrl + body).digest('base64');
}

/** A notification envelope: `merchant_id`, `type`, `event_id`, `created_at`, `data.type`, `data.id`, `data.object.<type>`. */
export function webhookEnvelope(options: {
  type: string;
  merchantId: string;
  dataType: string;
  objectId: string;
  object: Record<string, unknown>;
  createdAt: string;
  eventId?: string;
}) {
  return {
    merchant_id: options.merchantId,
    type: options.type,
    event_id: options.eventId ?? randomUUID(),
    created_at: options.createdAt,
    data: { type: options.dataType, id: options.objectId, object: options.object },
  };
}

export interface Delivery {
  eventId: string | undefined;
  type: string | undefined;
  /** The HTTP status the receiver answered, or null when it could not be reached. */
  status: number | null;
  /** The receiver's answer (text), or why it could not be reached. */
  answer: string;
}

/** Signs `body` (sent byte for byte as given) and POSTs it to `notificationUrl`. Never throws for a receiver's failure. */
export async function deliverWebhook(options: { notificationUrl: string; signatureKey: string; body: string; timeoutMs?: number }): Promise<Delivery> {
  let eventId: string | undefined;
  let type: string | undefined;
  try {
    const parsed = JSON.parse(options.body) as { event_id?: unknown; type?: unknown };
    eventId = typeof parsed.event_id === 'string' ? parsed.event_id : undefined;
    type = typeof parsed.type === 'string' ? parsed.type : undefined;
  } catch {
    // Sent as given: a receiver must refuse what is not JSON, and that is worth seeing.
  }
  try {
    const response = await fetch(options.notificationUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Square Connect v2',
        [SIGNATURE_HEADER]: squareSignature(options.signatureKey, options.notificationUrl, options.body),
      },
      body: options.body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    return { eventId, type, status: response.status, answer: await response.text() };
  } catch (error) {
    return { eventId, type, status: null, answer: error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error) };
  }
}
