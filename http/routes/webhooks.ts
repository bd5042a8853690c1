/**
 * Square webhooks: verify the signature over the raw bytes (constant time), store the webhook durably,
 * acknowledge. Processing happens after the reply, from the inbox; nothing unsigned is ever stored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { InvalidSquareWebhook, parseSquareWebhook } from '../../domain/square/webhook.ts';
import type { WebhookInbox } from '../../adapters/postgres/webhook-inbox.ts';
import { HttpError } from '../errors.ts';
import { UNSTORABLE_TEXT_MESSAGE, unstorableTextAt } from '../text.ts';
import { z } from 'zod';
import { route, type RouteSpec } from './table.ts';
import type { FailureLimiter } from '../rate-limit.ts';

export const WEBHOOK_PATH = '/api/v1/webhooks/square';
const MAX_BODY_BYTES = 1024 * 1024;
/** Delivery headers worth keeping for triage. */
const KEPT_HEADERS = ['square-retry-number', 'square-retry-reason', 'square-initial-delivery-timestamp', 'user-agent', 'content-type'];

export interface WebhookRouteDependencies {
  /** Stores the webhook durably before it is acknowledged. */
  inbox: Pick<WebhookInbox, 'record'>;
  signatureKey: string | undefined;
  /** The notification URL exactly as registered on the subscription (part of what Square signs). */
  notificationUrl: string;
  onStored(): void;
  onSignatureFailure?(): void;
  /** Bad signatures count as authentication failures of their source. */
  failures: FailureLimiter;
}

/** base64(HMAC-SHA256(key, notificationUrl + body)), compared in constant time. */
export function signatureMatches(key: string, notificationUrl: string, body: Buffer, header: string): boolean {
  const expected = createHmac('sha256', key).update(notificationUrl).update(body).digest();
  let given: Buffer;
  try {
    given = Buffer.from(header, 'base64');
  } catch {
    return false;
  }
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function readBody(ctx: Context): Promise<Buffer> {
  try {
    return await getRawBody(ctx.req, { limit: MAX_BODY_BYTES, length: ctx.get('content-length') || undefined });
  } catch (error) {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') throw new HttpError('PAYLOAD_TOO_LARGE', 'The body is larger than 1 MiB');
    throw new HttpError('VALIDATION_FAILED', 'The body could not be read');
  }
}

export function webhookRoutes(deps: WebhookRouteDependencies): RouteSpec[] {
  return [
    route({
      method: 'post',
      path: WEBHOOK_PATH,
      access: 'public',
      summary: 'Square webhook notifications (signed with x-square-hmacsha256-signature). The body is read raw and verified before it is parsed.',
      response: z.object({ received: z.literal(true), duplicate: z.boolean() }),
      async handler({ ctx }) {
        if (!deps.signatureKey) {
          throw new HttpError('WEBHOOKS_NOT_CONFIGURED', 'SQUARE_WEBHOOK_SIGNATURE_KEY is not configured: unsigned webhooks are never accepted');
        }
        const body = await readBody(ctx);
        const signature = ctx.get('x-square-hmacsha256-signature');
        if (!signature || !signatureMatches(deps.signatureKey, deps.notificationUrl, body, signature)) {
          deps.onSignatureFailure?.();
          deps.failures.fail(ctx.ip, 'webhook');
          throw new HttpError('UNAUTHENTICATED', signature ? 'The webhook signature does not match' : 'The x-square-hmacsha256-signature header is missing');
        }
        const text = body.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new HttpError('INVALID_JSON', 'The webhook body is not valid JSON');
        }
        const bad = unstorableTextAt(json, 'body');
        if (bad) throw new HttpError('VALIDATION_FAILED', `${bad} ${UNSTORABLE_TEXT_MESSAGE}`);
        let event;
        try {
          event = parseSquareWebhook(json);
        } catch (error) {
          if (error instanceof InvalidSquareWebhook) throw new HttpError('VALIDATION_FAILED', error.message, { problems: error.problems });
          throw error;
        }
        const headers = Object.fromEntries(KEPT_HEADERS.flatMap((name) => (ctx.get(name) ? [[name, ctx.get(name)]] : [])));
        const objectId = event.kind === 'payment' || event.kind === 'refund' ? event.object.id : event.dataId;
        const { inserted } = await deps.inbox.record({ eventId: event.eventId, merchantId: event.merchantId, eventType: event.type, objectId, rawBody: text, headers });
        if (inserted) deps.onStored();
        return { status: 200, body: { received: true as const, duplicate: !inserted } };
      },
    }),
  ];
}
