/**
 * Square webhook payloads: the envelope and the objects the core acts on, parsed with zod from the JSON body
 * (after the signature has been checked over the raw bytes, which is the HTTP layer's job).
 *
 * Dedupe and keying, from Square's own examples: `event_id` is the delivery dedupe key, but
 * `refund.created` and `refund.updated` can share one `event_id`, and `data.id` need not be the payment's id
 * (see `payment.created`). Key business effects on the object's own id (`object.id`) and its status.
 */
import { z } from 'zod';
import { DomainError } from '../shared/errors.ts';
import type { SquarePayment, SquareRefund } from '../ports/square.ts';

export const PAYMENT_EVENT_TYPES = ['payment.created', 'payment.updated'] as const;
export const REFUND_EVENT_TYPES = ['refund.created', 'refund.updated'] as const;
export const AUTHORIZATION_REVOKED = 'oauth.authorization.revoked';
/**
 * A Square customer was created, changed or deleted: cached contacts of it are dropped, and an email or phone it
 * now has is attached to its purchases whose points are held for nobody.
 */
export const CUSTOMER_CHANGE_TYPES = ['customer.created', 'customer.updated', 'customer.deleted'] as const;

/** The customer a customer event names, with the contacts its payload carries (none for a deletion). */
export interface SquareCustomerChange {
  customerId: string;
  email: string | null;
  phone: string | null;
  /**
   * A merge in the Square Dashboard: the customers merged into this new one, and deleted
   * (`event_context.merge.from_customer_ids` of `customer.created`); empty otherwise.
   */
  mergedFrom: string[];
}

/** Envelope fields every Square event carries. */
export interface SquareWebhookEnvelope {
  /** Delivery dedupe key (Square retries for up to 24 h). */
  eventId: string;
  /** E.g. `payment.updated`. */
  type: string;
  merchantId: string;
  createdAt: string;
  /** `data.type`, e.g. `payment`. */
  dataType: string;
  /** `data.id`: the affected object's id as Square labels it; prefer `object.id`. */
  dataId: string;
}

/** `oauth.authorization.revoked`: the merchant (or Square) revoked the app; stop calling with its tokens. */
export interface SquareRevocation {
  revokedAt: string;
  /** `MERCHANT`, `APPLICATION` or `SQUARE`. */
  revokerType: string | null;
}

/** A parsed event; `kind` tells which `object` it carries. Types the core does not act on are `other`. */
export type SquareWebhookEvent =
  | (SquareWebhookEnvelope & { kind: 'payment'; object: SquarePayment })
  | (SquareWebhookEnvelope & { kind: 'refund'; object: SquareRefund })
  | (SquareWebhookEnvelope & { kind: 'authorization-revoked'; object: SquareRevocation })
  | (SquareWebhookEnvelope & { kind: 'customer-changed'; object: SquareCustomerChange })
  | (SquareWebhookEnvelope & { kind: 'other'; object: undefined });

/** The body is not a Square event we can read. `problems` name each field and what is wrong with it. */
export class InvalidSquareWebhook extends DomainError {
  constructor(readonly problems: string[]) {
    super('INVALID_SQUARE_WEBHOOK', `Invalid Square webhook: ${problems.join('; ')}`, { problems });
    this.name = 'InvalidSquareWebhook';
  }
}

const text = z.string().min(1, 'must not be empty');
const timestamp = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' });
const optionalText = text.nullish().transform((value) => value ?? null);
/**
 * Square's ids are a few dozen characters. Bounded, because they are stored in indexed columns (the inbox, the
 * payments): a signed event id of 7,000 characters was a 500 (an index row too large) instead of a 400.
 */
const MAX_ID = 200;
const id = text.max(MAX_ID, `must be at most ${MAX_ID} characters`);
const optionalId = id.nullish().transform((value) => value ?? null);

/** Minor units as a JSON number: a whole, non-negative, exactly representable number. */
const minorUnits = z
  .number()
  .refine(Number.isInteger, 'must be a whole number of minor units')
  .refine((n) => n >= 0, 'must not be negative')
  .refine((n) => n <= Number.MAX_SAFE_INTEGER, `must not exceed ${Number.MAX_SAFE_INTEGER}`);

const money = z.object({
  amount: minorUnits,
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter ISO 4217 code'),
});

const payment = z
  .object({
    id,
    status: text,
    amount_money: money,
    tip_money: money.nullish(),
    total_money: money,
    customer_id: optionalId,
    buyer_email_address: optionalText,
    location_id: id,
    order_id: optionalId,
    created_at: timestamp,
    updated_at: timestamp,
  })
  .transform(
    (p): SquarePayment => ({
      id: p.id,
      status: p.status,
      amountMinor: p.amount_money.amount,
      tipMinor: p.tip_money?.amount ?? 0,
      totalMinor: p.total_money.amount,
      currency: p.amount_money.currency,
      customerId: p.customer_id,
      buyerEmail: p.buyer_email_address,
      locationId: p.location_id,
      orderId: p.order_id,
      createdAt: p.created_at,
      updatedAt: p.updated_at,
    }),
  );

const refund = z
  .object({
    id,
    payment_id: optionalId,
    status: text,
    amount_money: money,
    location_id: optionalId,
    created_at: timestamp,
    updated_at: timestamp,
  })
  .transform(
    (r): SquareRefund => ({
      id: r.id,
      paymentId: r.payment_id,
      status: r.status,
      amountMinor: r.amount_money.amount,
      currency: r.amount_money.currency,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      locationId: r.location_id,
    }),
  );

/** Only the contacts are read; a customer object without them (or a deletion) has none. */
const customer = z.object({ email_address: z.string().nullish(), phone_number: z.string().nullish() }).passthrough();

const revocation = z
  .object({ revoked_at: timestamp, revoker_type: optionalText })
  .transform((r): SquareRevocation => ({ revokedAt: r.revoked_at, revokerType: r.revoker_type }));

/** The envelope; `data.object` is read afterwards by the schema of the event's type (`objects`). */
const envelope = z.object({
  event_id: id,
  type: id,
  merchant_id: id,
  created_at: timestamp,
  data: z.object({ type: text, id, object: z.unknown().optional() }),
});

/** `data.object` per kind of event, checked only as far as the core reads it. */
const objects = {
  payment: z.object({ payment }),
  refund: z.object({ refund }),
  revocation: z.object({ revocation }),
  customer: z
    .object({
      customer: customer.optional(),
      event_context: z.object({ merge: z.object({ from_customer_ids: z.array(id).max(100).nullish() }).nullish() }).nullish(),
    })
    .optional(),
};

const article = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

/** Issue messages that read after the field name: "event_id is required", "data.id must be a string". */
const describeIssue: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') return issue.input === undefined ? 'is required' : `must be ${article(issue.expected)}`;
  return undefined;
};

function problemsOf(error: z.ZodError, at: readonly PropertyKey[]): string[] {
  return error.issues.map((issue) => {
    const path = [...at, ...issue.path];
    const field = path.length ? path.join('.') : 'the body';
    const message = issue.code === 'invalid_type' && !path.length ? 'must be a JSON object' : issue.message;
    return `${field} ${message}`;
  });
}

/** Parses `json`, found at `at` in the body (problems are named from the body's root). */
function parseWith<S extends z.ZodType>(schema: S, json: unknown, at: readonly PropertyKey[] = []): z.output<S> {
  const result = schema.safeParse(json, { error: describeIssue });
  if (!result.success) throw new InvalidSquareWebhook(problemsOf(result.error, at));
  return result.data;
}

const DATA_OBJECT = ['data', 'object'] as const;

const envelopeOf = (e: z.output<typeof envelope>): SquareWebhookEnvelope => ({
  eventId: e.event_id,
  type: e.type,
  merchantId: e.merchant_id,
  createdAt: e.created_at,
  dataType: e.data.type,
  dataId: e.data.id,
});

const isOneOf = <T extends string>(list: readonly T[], value: string): value is T => (list as readonly string[]).includes(value);

/**
 * Parses a Square webhook body (already `JSON.parse`d). Payment, refund and revocation events get their object
 * parsed and required; any other event type is returned as its envelope with `object` undefined.
 * Throws `InvalidSquareWebhook` listing every problem found.
 */
export function parseSquareWebhook(json: unknown): SquareWebhookEvent {
  // The envelope is parsed once; its `data.object` (as given, not copied) is then parsed by its type's schema.
  const parsed = parseWith(envelope, json);
  const object = parsed.data.object;
  const head = envelopeOf(parsed);
  if (isOneOf(PAYMENT_EVENT_TYPES, head.type)) {
    return { ...head, kind: 'payment', object: parseWith(objects.payment, object, DATA_OBJECT).payment };
  }
  if (isOneOf(REFUND_EVENT_TYPES, head.type)) {
    return { ...head, kind: 'refund', object: parseWith(objects.refund, object, DATA_OBJECT).refund };
  }
  if (head.type === AUTHORIZATION_REVOKED) {
    return { ...head, kind: 'authorization-revoked', object: parseWith(objects.revocation, object, DATA_OBJECT).revocation };
  }
  if (isOneOf(CUSTOMER_CHANGE_TYPES, head.type)) {
    // `data.id` is the customer's id on customer events (Square's own examples).
    const changed = head.type === 'customer.deleted' ? undefined : parseWith(objects.customer, object, DATA_OBJECT);
    const contacts = changed?.customer;
    const mergedFrom = (changed?.event_context?.merge?.from_customer_ids ?? []).filter((id) => id !== head.dataId);
    return { ...head, kind: 'customer-changed', object: { customerId: head.dataId, email: contacts?.email_address ?? null, phone: contacts?.phone_number ?? null, mergedFrom } };
  }
  return { ...head, kind: 'other', object: undefined };
}
