/**
 * Square webhooks: verify the signature over the raw bytes (constant time), store the webhook durably,
 * acknowledge. Processing happens after the reply, from the inbox; nothing unsigned is ever stored.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import getRawBody from 'raw-body';
import { InvalidSquareWebhook, parseSquareWebhook, type SquareWebhookEvent } from '../../domain/square/webhook.ts';
import { InboxBusy, type WebhookInbox } from '../../adapters/postgres/webhook-inbox.ts';
import { HttpError } from '../errors.ts';
import { UNSTORABLE_TEXT_MESSAGE, unstorableTextAt, utf8Text } from '../text.ts';
import { z } from 'zod';
import { route, type DirectCaller, type RouteSpec } from './table.ts';
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
  /** A webhook was stored (not a repeated delivery); called before its answer is written, so it must only schedule work. */
  onStored(event: SquareWebhookEvent): void;
  onSignatureFailure?(): void;
  /** A signed webhook was refused with 400 (it is logged at warn as well): Square retries it, then drops it. */
  onRefused?(reason: WebhookRefusal): void;
  /** Bad signatures count as authentication failures of their source. */
  failures: FailureLimiter;
  /**
   * A webhook request's whole body has arrived, and its answer is being written: the inbox worker gives way to
   * webhooks being acknowledged when they queue (adapters/workers/acknowledgements.ts).
   */
  onReceived?(): void;
  onAnswered?(): void;
}

/** base64(HMAC-SHA256(key, notificationUrl + body)), compared in constant time. */
export function signatureMatches(key: string | KeyObject, notificationUrl: string, body: Buffer, header: string): boolean {
  const expected = createHmac('sha256', key).update(notificationUrl).update(body).digest();
  // Not base64 at all decodes to fewer bytes (Buffer.from never throws on it): a mismatch like any other.
  const given = Buffer.from(header, 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const header = (request: IncomingMessage, name: string): string => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : '';
};

async function readBody(request: IncomingMessage): Promise<Buffer> {
  try {
    return await getRawBody(request, { limit: MAX_BODY_BYTES, length: header(request, 'content-length') || undefined });
  } catch (error) {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') throw new HttpError('PAYLOAD_TOO_LARGE', 'The body is larger than 1 MiB');
    throw new HttpError('VALIDATION_FAILED', 'The body could not be read');
  }
}

/** Why a signed webhook was refused with 400: the label of `tally_webhooks_refused_total`. */
export type WebhookRefusal = 'invalid_json' | 'invalid_shape' | 'unstorable_text';

/** At most this many characters of an id, and this many problems, in a refusal's log line. */
const LOGGED_ID_CHARS = 200;
const LOGGED_PROBLEMS = 20;

/** The envelope's ids of a parsed body, where they are strings: never a value of its object (personal data). */
function envelopeIds(json: unknown): Record<string, string> {
  const ids: Record<string, string> = {};
  if (!json || typeof json !== 'object' || Array.isArray(json)) return ids;
  const body = json as Record<string, unknown>;
  for (const [key, field] of [['eventId', 'event_id'], ['type', 'type'], ['merchantId', 'merchant_id']] as const) {
    const value = body[field];
    if (typeof value === 'string') ids[key] = value.slice(0, LOGGED_ID_CHARS);
  }
  return ids;
}

/**
 * A signed webhook refused with 400: Square retries it for 24 hours and then drops it, so it is said (warn, with its
 * envelope's ids where readable and the problems, never the body: it names people) and counted by reason. Returns
 * the error to throw.
 */
const refusal =
  (deps: Pick<WebhookRouteDependencies, 'onRefused'>) =>
  (log: () => Logger, reason: WebhookRefusal, json: unknown, problems: readonly string[], error: HttpError): HttpError => {
    deps.onRefused?.(reason);
    log().warn(
      { ...envelopeIds(json), reason, problems: problems.slice(0, LOGGED_PROBLEMS), ...(problems.length > LOGGED_PROBLEMS ? { problemCount: problems.length } : {}) },
      'a signed webhook was refused (400): Square delivers it again for 24 hours, then drops it',
    );
    return error;
  };

const receivedAnswer = z.object({ received: z.literal(true), duplicate: z.boolean() });

/**
 * The acknowledgement: signature over the raw bytes, the payload validated, one durable insert, 200. Nothing
 * else runs before the answer. Served straight from node:http (the route's `direct`), and through Koa otherwise.
 */
function webhookAcceptor(deps: WebhookRouteDependencies) {
  // The key is imported once: an HMAC over a KeyObject skips turning the string into a key on every webhook.
  const key = deps.signatureKey ? createSecretKey(Buffer.from(deps.signatureKey, 'utf8')) : undefined;
  const refuse = refusal(deps);
  const accept = async (key: KeyObject, body: Buffer, request: IncomingMessage, ip: string, log: () => Logger) => {
    const signature = header(request, 'x-square-hmacsha256-signature');
    if (!signature || !signatureMatches(key, deps.notificationUrl, body, signature)) {
      deps.onSignatureFailure?.();
      deps.failures.fail(ip, 'webhook');
      throw new HttpError('UNAUTHENTICATED', signature ? 'The webhook signature does not match' : 'The x-square-hmacsha256-signature header is missing');
    }
    const text = utf8Text(body);
    if (text === undefined) {
      const message = 'The webhook body is not valid UTF-8';
      throw refuse(log, 'invalid_json', undefined, [message], new HttpError('INVALID_JSON', message));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      const message = 'The webhook body is not valid JSON';
      throw refuse(log, 'invalid_json', undefined, [message], new HttpError('INVALID_JSON', message));
    }
    // A NUL or an unpaired surrogate can only come from a `\u` escape: decoded UTF-8 holds neither, and JSON refuses
    // raw control characters. A body without one (almost every webhook) is not walked.
    const bad = text.includes('\\u') ? unstorableTextAt(json, 'body') : undefined;
    if (bad) {
      const message = `${bad} ${UNSTORABLE_TEXT_MESSAGE}`;
      throw refuse(log, 'unstorable_text', json, [message], new HttpError('VALIDATION_FAILED', message));
    }
    let event;
    try {
      event = parseSquareWebhook(json);
    } catch (error) {
      if (error instanceof InvalidSquareWebhook) {
        throw refuse(log, 'invalid_shape', json, error.problems, new HttpError('VALIDATION_FAILED', error.message, { problems: error.problems }));
      }
      throw error;
    }
    const headers: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const value = header(request, name);
      if (value) headers[name] = value;
    }
    const objectId = event.kind === 'payment' || event.kind === 'refund' ? event.object.id : event.dataId;
    let inserted: boolean;
    try {
      ({ inserted } = await deps.inbox.record({ eventId: event.eventId, merchantId: event.merchantId, eventType: event.type, objectId, rawBody: text, headers }));
    } catch (error) {
      if (error instanceof InboxBusy) throw new HttpError('UNAVAILABLE', error.message);
      throw error;
    }
    if (inserted) deps.onStored(event);
    return { status: 200, body: { received: true as const, duplicate: !inserted } };
  };
  /** `log`: the request's logger, made only when a refusal is logged. */
  return async (request: IncomingMessage, ip: string, log: () => Logger) => {
    if (!key) {
      throw new HttpError('WEBHOOKS_NOT_CONFIGURED', 'SQUARE_WEBHOOK_SIGNATURE_KEY is not configured: unsigned webhooks are never accepted');
    }
    // Counted from its whole body on (acknowledgements.ts): a request still sending its body costs the thread
    // nothing, and a client that dribbles one must not hold the worker back.
    const body = await readBody(request);
    deps.onReceived?.();
    try {
      return await accept(key, body, request, ip, log);
    } finally {
      deps.onAnswered?.();
    }
  };
}

export function webhookRoutes(deps: WebhookRouteDependencies): RouteSpec[] {
  const accept = webhookAcceptor(deps);
  return [
    route({
      method: 'post',
      path: WEBHOOK_PATH,
      access: 'public',
      summary: 'Square webhook notifications (signed with x-square-hmacsha256-signature). The body is read raw and verified before it is parsed.',
      headers: z.object({
        'x-square-hmacsha256-signature': z.string().meta({ description: 'base64(HMAC-SHA256(SQUARE_WEBHOOK_SIGNATURE_KEY, notification URL + raw body))' }),
      }),
      response: receivedAnswer,
      // Typed here: a `direct` function does not tell the route's kind to the compiler (route table, `Route`).
      handler: ({ ctx }: { ctx: Context }) => accept(ctx.req, ctx.ip, () => ctx.log),
      direct: (request: IncomingMessage, caller: DirectCaller) => accept(request, caller.ip, caller.log),
    }),
  ];
}
