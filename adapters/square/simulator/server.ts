/**
 * The Square simulator: a stand-in for Square's API that answers the endpoints Tally calls, in Square's shapes
 * (built from Square's published examples, tests/fixtures/square/api/), so the adapter is exercised through the
 * real `square` SDK. Two users: the tests (a server on 127.0.0.1, state in memory, scripted through the methods
 * below), and development (`npm start` with no SQUARE_APP_ID mounts it inside Tally's own HTTP server, state in
 * a file under DATA_DIR, driven by `npm run square`).
 *
 * What it models: OAuth authorize (a consent page; Allow or Deny redirects to the callback as Square does), code
 * exchange (codes single-use, 5 minutes), refresh (same refresh token back), revoke (`Authorization: Client
 * <secret>` only); bearer tokens that can be unknown, revoked, expired or short of a scope; list filters, sort
 * orders and cursor pagination; faults (status codes with `Retry-After`, delays, dropped connections); payments,
 * refunds (never above what remains), customers and revocations made through its control endpoints
 * (`/simulator/…`), each announced by a signed webhook to the configured notification URL. What it does not:
 * Square's undocumented limits, webhook retries, and the one-year default window Square applies to `begin_time`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { authorizeErrorPage, consentPage } from './authorize-page.ts';
import { deliverWebhook, webhookEnvelope, type Delivery } from './webhooks.ts';
import { isTimeZone } from '../../../domain/shared/time-zone.ts';
import { batchRetrieve, catalogLine, orderAmount, orderJson, type TestCatalog, type TestOrder, type TestOrderLine } from './orders.ts';

export type { TestCatalog, TestCatalogItem, TestCategory, TestOrder, TestOrderLine, TestVariation } from './orders.ts';

export const TEST_APP_ID = 'sq0idp-test-application';
export const TEST_APP_SECRET = 'sq0csp-test-application-secret';
/** What a code grants unless `issueCode` says otherwise. */
export const DEFAULT_SCOPES = ['MERCHANT_PROFILE_READ', 'PAYMENTS_READ', 'CUSTOMERS_READ', 'ORDERS_READ', 'ITEMS_READ'] as const;
/** What a connection made before issue 19 was granted: no orders, no catalog. */
export const PAYMENT_ONLY_SCOPES = ['MERCHANT_PROFILE_READ', 'PAYMENTS_READ', 'CUSTOMERS_READ'] as const;

export interface TestLocation {
  id: string;
  name: string;
  status?: 'ACTIVE' | 'INACTIVE';
  /** IANA time zone, as Square's Location `timezone`; defaults to `America/New_York`. */
  timezone?: string;
}

export interface TestMerchant {
  merchantId: string;
  businessName: string;
  /** The first location is the main one unless given. */
  locations: TestLocation[];
  mainLocationId?: string;
  country?: string;
  currency?: string;
}

export interface TestCustomer {
  id: string;
  email?: string | null;
  phone?: string | null;
  givenName?: string;
  familyName?: string;
}

/** Amounts are minor units; a `bigint` is written to the JSON as an exact integer (to test huge values). */
export interface TestPayment {
  id: string;
  locationId: string;
  amount: number | bigint;
  tip?: number | bigint;
  /** Defaults to amount + tip. */
  total?: number | bigint;
  currency?: string;
  status?: string;
  customerId?: string;
  /** `buyer_email_address` (a Square Online checkout). */
  buyerEmail?: string;
  orderId?: string;
  createdAt: string;
  /** Defaults to `createdAt`. */
  updatedAt?: string;
}

export interface TestRefund {
  id: string;
  /** Omit for an unlinked refund. */
  paymentId?: string;
  locationId: string;
  amount: number | bigint;
  currency?: string;
  status?: string;
  createdAt: string;
  updatedAt?: string;
}

/** What the next matching request gets instead of (or before) its normal answer. */
export type Fault =
  /**
   * An error status in Square's shape; `retryAfter` (seconds) becomes a `Retry-After` header. `html` answers with
   * an HTML page instead, as a proxy or load balancer in front of Square would.
   */
  | { status: number; retryAfter?: number; code?: string; html?: string }
  /** The normal answer, but only after this long (for client timeouts). */
  | { delayMs: number }
  /** The normal answer, held until `released` settles: the test decides when Square answers, whatever the machine's speed. */
  | { released: Promise<unknown> }
  /** The connection is destroyed without an answer. */
  | { dropConnection: true };

export interface LoggedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** The `Authorization` header as sent. */
  authorization: string | undefined;
  squareVersion: string | undefined;
  /** The parsed JSON body of a POST. */
  body: unknown;
}

/** Where the simulator announces what happens, as a Square webhook subscription would. */
export interface WebhookSubscription {
  /** The notification URL, byte for byte as Tally verifies it. */
  notificationUrl: string;
  /** The subscription's signature key; when not given, the simulator makes one (as Square does) and keeps it in its state. */
  signatureKey?: string;
}

export interface SimulatorOptions {
  appId?: string;
  appSecret?: string;
  /** The path the simulator is mounted under when it shares another server (`/square-simulator`); none by default. */
  basePath?: string;
  /** A JSON file holding every merchant, customer, payment, refund and grant: read at start, written on each change. */
  stateFile?: string;
  /** Webhooks for the control endpoints' changes; without it, changes are made and nothing is sent. */
  webhooks?: WebhookSubscription;
  /** The application's registered redirect URL, used when an authorize request names none (as Square does). */
  redirectUri?: string;
  /** Merchants to start with when there is no state file yet (a fresh DATA_DIR). */
  seedMerchants?: TestMerchant[];
  /** The catalog the seeded merchants start with (items, variations, categories). */
  seedCatalog?: TestCatalog;
  /** The application's name on the consent page. */
  appName?: string;
  /**
   * Called after a webhook was accepted (2xx), before the control endpoint answers: the composition root uses it to
   * wait until Tally has processed the event, so a `trigger` is visible in Tally once it returns. Its text is shown.
   */
  afterDelivery?: (eventId: string) => Promise<string | undefined>;
}

/** What a control endpoint did: the object it made and the webhooks it sent. */
export interface Triggered<T> {
  object: T;
  webhooks: (Delivery & { processed?: string })[];
}

export interface SquareSimulator extends SquareTestServer {
  /** Answers one request (the path may carry `basePath`); for mounting inside another HTTP server. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** True when a request path belongs to the simulator (starts with `basePath`). */
  owns(pathname: string): boolean;
  /** Fills `url` in once the hosting server listens. */
  setUrl(url: string): void;
  /** The key webhooks are signed with (given, or made and kept by the simulator); undefined without a subscription. */
  webhookSignatureKey: string | undefined;
}

export interface SquareTestServer {
  /** Base URL to give the SDK (`baseUrl`). */
  url: string;
  appId: string;
  appSecret: string;
  /** Every request received, oldest first. */
  readonly requests: readonly LoggedRequest[];
  addMerchant(merchant: TestMerchant): void;
  /** An authorization code, as the OAuth callback would carry; single-use, valid 5 minutes. */
  issueCode(merchantId: string, options?: { scopes?: readonly string[]; redirectUri?: string }): string;
  /** An access token without the OAuth dance, for tests of the API calls. */
  issueAccessToken(merchantId: string, options?: { scopes?: readonly string[] }): string;
  addCustomer(merchantId: string, customer: TestCustomer): void;
  /**
   * Adds or replaces (same id) a payment, as Square updates one in place. With `listed: false`, ListPayments leaves it
   * out (GetPayment finds it) until `listPayment`: Square listing an update late, after a later-updated payment was
   * listed (two tills committing out of order, indexing lag).
   */
  addPayment(merchantId: string, payment: TestPayment, options?: { listed?: boolean }): void;
  /** ListPayments shows a payment added with `listed: false` from now on. */
  listPayment(merchantId: string, paymentId: string): void;
  /** Adds or replaces (same id) a refund. */
  addRefund(merchantId: string, refund: TestRefund): void;
  /** Replaces the merchant's catalog (items with their variations, and categories). */
  setCatalog(merchantId: string, catalog: TestCatalog): void;
  /** Adds or replaces (same id) an order; a payment names it with `orderId`. */
  addOrder(merchantId: string, order: TestOrder): void;
  /** The merchant revoked the app: its access tokens answer `ACCESS_TOKEN_REVOKED`, its refresh token is dead. */
  revokeTokensOf(merchantId: string): void;
  /** The merchant's current access tokens answer `ACCESS_TOKEN_EXPIRED`; refreshing still works. */
  expireTokensOf(merchantId: string): void;
  /**
   * The application's secret is now this one (rotated in the Developer Dashboard): token and revoke requests with the
   * old one are refused as Square refuses them. `appSecret` reads the current one.
   */
  rotateAppSecret(secret: string): void;
  /**
   * The next request whose path starts with `pathPrefix` gets `fault`. Queued faults apply in order. With
   * `merchantId`, only requests whose bearer token belongs to that merchant match; with `skip`, that many
   * matching requests pass normally first (to fail a later page or location).
   */
  failNext(pathPrefix: string, fault: Fault, options?: { merchantId?: string; skip?: number }): void;
  /**
   * Every request whose path starts with `pathPrefix` gets `fault` until the returned function is called: for a
   * failure that must hold however many times the service asks (a lookup made ahead, then again by its batch).
   */
  failUntilCleared(pathPrefix: string, fault: Fault): () => void;
  stop(): Promise<void>;
}

interface MerchantState {
  merchant: Required<TestMerchant>;
  customers: Map<string, TestCustomer>;
  payments: Map<string, TestPayment>;
  /** Payments ListPayments does not show yet (tests only: not kept in the state file). */
  unlisted?: Set<string>;
  refunds: Map<string, TestRefund>;
  orders: Map<string, TestOrder>;
  catalog: TestCatalog;
}

interface Grant {
  merchantId: string;
  scopes: readonly string[];
}

interface AccessToken extends Grant {
  state: 'active' | 'revoked' | 'expired';
  expiresAt: string;
}

interface Code extends Grant {
  redirectUri?: string;
  expiresAtMs: number;
  used: boolean;
}

/** An answer: status, JSON body (may hold bigints), extra headers. */
interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

class SquareFailure extends Error {
  constructor(
    readonly status: number,
    readonly category: string,
    readonly code: string,
    readonly detail: string,
    readonly field?: string,
    /** Answered in the v1 shape `{message, type}`, as Square's OAuth endpoints answer their refusals. */
    readonly v1Type?: string,
  ) {
    super(detail);
  }
}

const CODE_LIFETIME_MS = 5 * 60_000;
const TOKEN_LIFETIME_MS = 30 * 24 * 3600_000;
const MAX_PAGE = 100;

const unauthorized = (detail = 'This request could not be authorized.') =>
  new SquareFailure(401, 'AUTHENTICATION_ERROR', 'UNAUTHORIZED', detail);
/**
 * How Square's `/oauth2/token` refuses: the v1 shape with one type for both causes, the message telling them apart
 * (`Not Authorized` for the app's client_id/client_secret, `Invalid refresh token` for a revoked grant).
 */
const oauthRefusal = (message: string) => new SquareFailure(401, 'AUTHENTICATION_ERROR', 'UNAUTHORIZED', message, undefined, 'service.not_authorized');
const badRequest = (code: string, detail: string, field?: string) =>
  new SquareFailure(400, 'INVALID_REQUEST_ERROR', code, detail, field);
const notFound = (detail: string) => new SquareFailure(404, 'INVALID_REQUEST_ERROR', 'NOT_FOUND', detail);

const token = (prefix: string) => `${prefix}${randomBytes(24).toString('base64url')}`;
/** Square writes `expires_at` without fractional seconds. */
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** JSON with bigints written as exact integers, as Square writes amounts. */
function toJson(value: unknown): string {
  const marker = '~bigint~';
  const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}${marker}` : v));
  return text.replace(new RegExp(`"(-?\\d+)${marker}"`, 'g'), '$1');
}

const money = (amount: number | bigint, currency: string) => ({ amount, currency });

/** A payment as Square's ListPayments example writes one, with the scripted values in place. */
function paymentJson(p: TestPayment, currency: string) {
  const tip = p.tip ?? 0;
  const total = p.total ?? (typeof p.amount === 'bigint' || typeof tip === 'bigint' ? BigInt(p.amount) + BigInt(tip) : p.amount + tip);
  const updatedAt = p.updatedAt ?? p.createdAt;
  const completed = (p.status ?? 'COMPLETED') === 'COMPLETED';
  return {
    amount_money: money(p.amount, currency),
    ...(p.tip === undefined ? {} : { tip_money: money(tip, currency) }),
    approved_money: money(total, currency),
    application_details: { application_id: 'sq0ids-Pw67AZAlLVB7hsRmwlJPuA', square_product: 'VIRTUAL_TERMINAL' },
    card_details: {
      avs_status: 'AVS_ACCEPTED',
      card: { bin: '411111', card_brand: 'VISA', card_type: 'DEBIT', exp_month: 11, exp_year: 2030, last_4: '1111', prepaid_type: 'NOT_PREPAID' },
      card_payment_timeline: { authorized_at: p.createdAt, ...(completed ? { captured_at: updatedAt } : {}) },
      cvv_status: 'CVV_ACCEPTED',
      entry_method: 'KEYED',
      status: completed ? 'CAPTURED' : 'AUTHORIZED',
    },
    created_at: p.createdAt,
    ...(p.customerId ? { customer_id: p.customerId } : {}),
    ...(p.buyerEmail ? { buyer_email_address: p.buyerEmail } : {}),
    delay_action: 'CANCEL',
    delay_duration: 'PT168H',
    id: p.id,
    location_id: p.locationId,
    ...(p.orderId ? { order_id: p.orderId } : {}),
    processing_fee: completed ? [{ amount_money: money(34, currency), effective_at: updatedAt, type: 'INITIAL' }] : [],
    receipt_number: p.id.slice(0, 4),
    receipt_url: `https://squareup.com/receipt/preview/${p.id}`,
    source_type: 'CARD',
    status: p.status ?? 'COMPLETED',
    total_money: money(total, currency),
    updated_at: updatedAt,
    version_token: `v-${updatedAt}`,
  };
}

function refundJson(r: TestRefund, currency: string) {
  return {
    amount_money: money(r.amount, currency),
    created_at: r.createdAt,
    id: r.id,
    location_id: r.locationId,
    ...(r.paymentId ? { payment_id: r.paymentId } : { unlinked: true }),
    processing_fee: [],
    reason: 'Example Refund',
    status: r.status ?? 'COMPLETED',
    updated_at: r.updatedAt ?? r.createdAt,
  };
}

function customerJson(c: TestCustomer) {
  return {
    created_at: '2016-03-23T20:21:54.859Z',
    creation_source: 'THIRD_PARTY',
    ...(c.email ? { email_address: c.email } : {}),
    family_name: c.familyName ?? 'Earhart',
    given_name: c.givenName ?? 'Amelia',
    id: c.id,
    ...(c.phone ? { phone_number: c.phone } : {}),
    preferences: { email_unsubscribed: false },
    updated_at: '2016-03-23T20:21:54.859Z',
    version: 1,
  };
}

function merchantJson({ merchant }: MerchantState) {
  return {
    business_name: merchant.businessName,
    country: merchant.country,
    created_at: '2021-12-10T19:25:52.484Z',
    currency: merchant.currency,
    id: merchant.merchantId,
    language_code: 'en-US',
    main_location_id: merchant.mainLocationId,
    status: 'ACTIVE',
  };
}

function locationJson(location: TestLocation, { merchant }: MerchantState) {
  return {
    business_name: merchant.businessName,
    capabilities: ['CREDIT_CARD_PROCESSING'],
    country: merchant.country,
    created_at: '2021-12-10T19:25:52.484Z',
    currency: merchant.currency,
    id: location.id,
    merchant_id: merchant.merchantId,
    name: location.name,
    status: location.status ?? 'ACTIVE',
    timezone: location.timezone ?? 'America/New_York',
    type: 'PHYSICAL',
  };
}

/** List parameters shared by ListPayments and ListPaymentRefunds. */
interface ListQuery {
  sortField: 'CREATED_AT' | 'UPDATED_AT';
  descending: boolean;
  beginTime?: number;
  endTime?: number;
  updatedAtBeginTime?: number;
  updatedAtEndTime?: number;
  limit: number;
}

function timeParam(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    throw badRequest('INVALID_TIME', `Invalid value for ${name}: expected an RFC 3339 timestamp.`, name);
  }
  return ms;
}

function listQuery(query: URLSearchParams): ListQuery {
  const sortField = query.get('sort_field') ?? 'CREATED_AT';
  if (sortField !== 'CREATED_AT' && sortField !== 'UPDATED_AT') {
    throw badRequest('INVALID_ENUM_VALUE', `Invalid value for sort_field: ${sortField}.`, 'sort_field');
  }
  const sortOrder = query.get('sort_order') ?? 'DESC';
  if (sortOrder !== 'ASC' && sortOrder !== 'DESC') throw badRequest('INVALID_SORT_ORDER', `Invalid sort order: ${sortOrder}.`, 'sort_order');
  const limitText = query.get('limit');
  const limit = limitText === null ? MAX_PAGE : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1) throw badRequest('INVALID_VALUE', `Invalid value for limit: ${limitText}.`, 'limit');
  return {
    sortField,
    descending: sortOrder === 'DESC',
    beginTime: timeParam(query, 'begin_time'),
    endTime: timeParam(query, 'end_time'),
    updatedAtBeginTime: timeParam(query, 'updated_at_begin_time'),
    updatedAtEndTime: timeParam(query, 'updated_at_end_time'),
    limit: Math.min(limit, MAX_PAGE),
  };
}

/** A list answer as Square writes it: one page under `key`, with its cursor if more follow; `{}` when the page is empty. */
function listReply<T extends { id: string; createdAt: string; updatedAt?: string }>(key: string, items: T[], query: URLSearchParams, json: (item: T) => unknown): Reply {
  const result = page(items, listQuery(query), query);
  return { status: 200, body: result.items.length ? { [key]: result.items.map(json), ...(result.cursor ? { cursor: result.cursor } : {}) } : {} };
}

/**
 * One page of a filtered, sorted list. The cursor names the last item's sort key and the query it belongs to
 * (Square refuses a cursor with a changed query), so items added meanwhile neither repeat nor shift the pages.
 */
function page<T extends { id: string; createdAt: string; updatedAt?: string }>(
  items: Iterable<T>,
  list: ListQuery,
  rawQuery: URLSearchParams,
): { items: T[]; cursor?: string } {
  const key = (item: T) => Date.parse(list.sortField === 'UPDATED_AT' ? (item.updatedAt ?? item.createdAt) : item.createdAt);
  const compare = (a: [number, string], b: [number, string]) => (a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)) * (list.descending ? -1 : 1);
  const within = (t: number, begin?: number, end?: number) => (begin === undefined || t >= begin) && (end === undefined || t < end);

  const signature = [...rawQuery.entries()].filter(([name]) => name !== 'cursor' && name !== 'limit').sort().map(([n, v]) => `${n}=${v}`).join('&');
  let after: [number, string] | undefined;
  const cursor = rawQuery.get('cursor');
  if (cursor) {
    try {
      const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { q: string; k: [number, string] };
      if (decoded.q !== signature) throw new Error('query changed');
      after = decoded.k;
    } catch {
      throw badRequest('INVALID_CURSOR', 'The pagination cursor is invalid or does not match the request.', 'cursor');
    }
  }

  const sorted = [...items]
    .filter((item) => within(Date.parse(item.createdAt), list.beginTime, list.endTime))
    .filter((item) => within(Date.parse(item.updatedAt ?? item.createdAt), list.updatedAtBeginTime, list.updatedAtEndTime))
    .map((item) => ({ item, k: [key(item), item.id] as [number, string] }))
    .sort((a, b) => compare(a.k, b.k))
    .filter(({ k }) => after === undefined || compare(k, after) > 0);
  const taken = sorted.slice(0, list.limit);
  const last = taken.at(-1);
  return {
    items: taken.map(({ item }) => item),
    ...(sorted.length > list.limit && last
      ? { cursor: Buffer.from(JSON.stringify({ q: signature, k: last.k })).toString('base64url') }
      : {}),
  };
}

const sleep = (ms: number, timers: Set<NodeJS.Timeout>) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      resolve();
    }, ms);
    timers.add(timer);
  });

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** What the state file holds; amounts that are bigints are written as `{ "$bigint": "…" }`. */
interface Snapshot {
  version: 1;
  /** `orders` and `catalog` since issue 19: a state file written before has neither. */
  merchants: { merchant: Required<TestMerchant>; customers: TestCustomer[]; payments: TestPayment[]; refunds: TestRefund[]; orders?: TestOrder[]; catalog?: TestCatalog }[];
  codes: [string, Code][];
  accessTokens: [string, AccessToken][];
  refreshTokens: [string, Grant][];
  signatureKey?: string;
}

const snapshotText = (snapshot: Snapshot) =>
  JSON.stringify(snapshot, (_key, v: unknown) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v), 2);
const parseSnapshot = (text: string) =>
  JSON.parse(text, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && typeof (v as { $bigint?: unknown }).$bigint === 'string' ? BigInt((v as { $bigint: string }).$bigint) : v,
  ) as Snapshot;

/** Square's id style: upper-case letters and digits. */
const squareId = (length: number) => {
  const alphabet = 'ABCDEFGHJKMNPQRSTVWXYZ0123456789';
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
};

/** Reads a control endpoint's JSON body field by field; a bad field is refused in Square's error shape, naming it. */
function fields(body: unknown) {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const optionalText = (name: string): string | undefined => {
    const value = record[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value.trim() === '' || value.length > 255) throw badRequest('INVALID_VALUE', `${name} must be a non-empty string.`, name);
    return value;
  };
  const text = (name: string): string => {
    const value = optionalText(name);
    if (value === undefined) throw badRequest('MISSING_REQUIRED_PARAMETER', `Missing required parameter: ${name}.`, name);
    return value;
  };
  const optionalAmount = (name: string, min: number): number | undefined => {
    const value = record[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw badRequest(min > 0 ? 'AMOUNT_TOO_LOW' : 'INVALID_VALUE', `${name} must be an integer amount of at least ${min} (minor units).`, name);
    }
    return value;
  };
  const amount = (name: string, min: number): number => {
    const value = optionalAmount(name, min);
    if (value === undefined) throw badRequest('MISSING_REQUIRED_PARAMETER', `Missing required parameter: ${name}.`, name);
    return value;
  };
  return { optionalText, text, optionalAmount, amount, flag: (name: string) => record[name] === true };
}

const PAYMENT_STATUSES = ['APPROVED', 'PENDING', 'COMPLETED', 'CANCELED', 'FAILED'] as const;

/** The simulator without a socket of its own: `handle` answers requests; `startSquareServer` gives it one. */
export function createSquareSimulator(options: SimulatorOptions = {}): SquareSimulator {
  const appId = options.appId ?? TEST_APP_ID;
  let appSecret = options.appSecret ?? TEST_APP_SECRET;
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const merchants = new Map<string, MerchantState>();
  const codes = new Map<string, Code>();
  const accessTokens = new Map<string, AccessToken>();
  const refreshTokens = new Map<string, Grant>();
  const faults: { pathPrefix: string; fault: Fault; merchantId?: string; skip: number; lasting?: boolean }[] = [];
  const requests: LoggedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let baseUrl = '';
  let signatureKey = options.webhooks?.signatureKey;

  const fresh = !options.stateFile || !existsSync(options.stateFile);
  if (options.stateFile && !fresh) {
    const snapshot = parseSnapshot(readFileSync(options.stateFile, 'utf8'));
    for (const m of snapshot.merchants) {
      merchants.set(m.merchant.merchantId, {
        merchant: m.merchant,
        customers: new Map(m.customers.map((c) => [c.id, c])),
        payments: new Map(m.payments.map((p) => [p.id, p])),
        refunds: new Map(m.refunds.map((r) => [r.id, r])),
        orders: new Map((m.orders ?? []).map((o) => [o.id, o])),
        catalog: m.catalog ?? { categories: [], items: [] },
      });
    }
    for (const [k, v] of snapshot.codes) codes.set(k, v);
    for (const [k, v] of snapshot.accessTokens) accessTokens.set(k, v);
    for (const [k, v] of snapshot.refreshTokens) refreshTokens.set(k, v);
    signatureKey ??= snapshot.signatureKey;
  }
  if (options.webhooks && !signatureKey) signatureKey = randomBytes(16).toString('base64url');

  /** Written whole, to a temporary file renamed over the old one, so a crash never leaves half a state. */
  const persist = () => {
    if (!options.stateFile) return;
    const snapshot: Snapshot = {
      version: 1,
      merchants: [...merchants.values()].map((m) => ({
        merchant: m.merchant,
        customers: [...m.customers.values()],
        payments: [...m.payments.values()],
        refunds: [...m.refunds.values()],
        orders: [...m.orders.values()],
        catalog: m.catalog,
      })),
      codes: [...codes],
      accessTokens: [...accessTokens],
      refreshTokens: [...refreshTokens],
      ...(signatureKey && !options.webhooks?.signatureKey ? { signatureKey } : {}),
    };
    mkdirSync(path.dirname(options.stateFile), { recursive: true });
    const temporary = `${options.stateFile}.${process.pid}.tmp`;
    writeFileSync(temporary, snapshotText(snapshot), { mode: 0o600 });
    renameSync(temporary, options.stateFile);
  };

  const addMerchant = (merchant: TestMerchant, catalog: TestCatalog = { categories: [], items: [] }) => {
    const main = merchant.mainLocationId ?? merchant.locations[0]?.id;
    if (!main) throw new Error('Test server: a merchant needs at least one location');
    merchants.set(merchant.merchantId, {
      merchant: { country: 'US', currency: 'USD', ...merchant, mainLocationId: main },
      customers: new Map(),
      payments: new Map(),
      refunds: new Map(),
      orders: new Map(),
      catalog,
    });
  };
  if (fresh) for (const merchant of options.seedMerchants ?? []) addMerchant(merchant, options.seedCatalog);
  if (fresh || (options.webhooks && !options.webhooks.signatureKey)) persist();

  const merchantState = (merchantId: string) => {
    const state = merchants.get(merchantId);
    if (!state) throw new Error(`Test server: no merchant ${merchantId}; call addMerchant first`);
    return state;
  };
  /** For the control endpoints: an unknown merchant is Square's 404, not a bug. */
  const knownMerchant = (merchantId: string) => {
    const state = merchants.get(merchantId);
    if (!state) throw notFound(`Merchant with ID \`${merchantId}\` not found.`);
    return state;
  };

  const newAccessToken = (grant: Grant): { accessToken: string; expiresAt: string } => {
    const accessToken = token('EAAA');
    const expiresAt = isoSeconds(Date.now() + TOKEN_LIFETIME_MS);
    accessTokens.set(accessToken, { ...grant, state: 'active', expiresAt });
    return { accessToken, expiresAt };
  };

  const tokenResponse = (grant: Grant, refreshToken: string): Reply => {
    const { accessToken, expiresAt } = newAccessToken(grant);
    return {
      status: 200,
      body: {
        access_token: accessToken,
        expires_at: expiresAt,
        merchant_id: grant.merchantId,
        refresh_token: refreshToken,
        short_lived: false,
        token_type: 'bearer',
      },
    };
  };

  /** The merchant behind a request's bearer token, once the token and its scope check out. */
  const authorize = (request: IncomingMessage, scope: string): MerchantState => {
    const match = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '');
    const grant = match ? accessTokens.get(match[1]!) : undefined;
    if (!grant) throw unauthorized();
    if (grant.state === 'revoked') throw new SquareFailure(401, 'AUTHENTICATION_ERROR', 'ACCESS_TOKEN_REVOKED', 'The access token has been revoked.');
    if (grant.state === 'expired') throw new SquareFailure(401, 'AUTHENTICATION_ERROR', 'ACCESS_TOKEN_EXPIRED', 'The access token has expired.');
    if (!grant.scopes.includes(scope)) {
      throw new SquareFailure(403, 'AUTHENTICATION_ERROR', 'INSUFFICIENT_SCOPES', `The merchant has not given your application sufficient permissions to do that. The application requires the ${scope} scope.`);
    }
    return merchantState(grant.merchantId);
  };

  const issueCode = (merchantId: string, scopes: readonly string[], redirectUri?: string) => {
    const code = token('sq0cgp-');
    codes.set(code, { merchantId, scopes, redirectUri, expiresAtMs: Date.now() + CODE_LIFETIME_MS, used: false });
    return code;
  };

  const obtainToken = (body: Record<string, unknown>): Reply => {
    if (body.client_id !== appId || body.client_secret !== appSecret) throw oauthRefusal('Not Authorized');
    if (body.grant_type === 'authorization_code') {
      const code = typeof body.code === 'string' ? codes.get(body.code) : undefined;
      if (!code) throw badRequest('BAD_REQUEST', 'Authorization code not found.', 'code');
      if (code.used) throw badRequest('BAD_REQUEST', 'Authorization code is already redeemed.', 'code');
      if (Date.now() > code.expiresAtMs) throw badRequest('BAD_REQUEST', 'Authorization code is expired.', 'code');
      if (code.redirectUri !== undefined && body.redirect_uri !== code.redirectUri) {
        throw badRequest('BAD_REQUEST', 'redirect_uri does not match the one given to the authorize endpoint.', 'redirect_uri');
      }
      code.used = true;
      // One refresh token per merchant authorization; a new authorization replaces it.
      for (const [existing, grant] of refreshTokens) if (grant.merchantId === code.merchantId) refreshTokens.delete(existing);
      const refreshToken = token('EQAA');
      refreshTokens.set(refreshToken, { merchantId: code.merchantId, scopes: code.scopes });
      return tokenResponse(code, refreshToken);
    }
    if (body.grant_type === 'refresh_token') {
      const refreshToken = typeof body.refresh_token === 'string' ? body.refresh_token : '';
      const grant = refreshTokens.get(refreshToken);
      if (!grant) throw oauthRefusal('Invalid refresh token');
      return tokenResponse(grant, refreshToken);
    }
    throw badRequest('INVALID_VALUE', `Unsupported grant_type: ${String(body.grant_type)}.`, 'grant_type');
  };

  const revokeAll = (merchantId: string) => {
    let found = false;
    for (const grant of accessTokens.values()) {
      if (grant.merchantId === merchantId && grant.state !== 'revoked') {
        grant.state = 'revoked';
        found = true;
      }
    }
    for (const [refreshToken, grant] of refreshTokens) {
      if (grant.merchantId === merchantId) {
        refreshTokens.delete(refreshToken);
        found = true;
      }
    }
    return found;
  };

  const revokeToken = (request: IncomingMessage, body: Record<string, unknown>): Reply => {
    if (request.headers.authorization !== `Client ${appSecret}`) throw unauthorized('Revoke requires the header Authorization: Client <application secret>.');
    if (body.client_id !== appId) throw unauthorized('Not Authorized');
    const merchantId =
      typeof body.merchant_id === 'string'
        ? body.merchant_id
        : typeof body.access_token === 'string'
          ? accessTokens.get(body.access_token)?.merchantId
          : undefined;
    if (!merchantId) throw badRequest('MISSING_REQUIRED_PARAMETER', 'Either access_token or merchant_id is required.', 'merchant_id');
    if (!revokeAll(merchantId)) throw notFound(`No tokens for merchant ${merchantId}.`);
    return { status: 200, body: { success: true } };
  };

  // ---- OAuth authorize: the consent page and its decision ----

  /** Checks an authorize request as Square does; the problem is shown on a page, never redirected (the client is unknown). */
  const authorizeRequest = (query: URLSearchParams) => {
    if (query.get('client_id') !== appId) return { problem: `Unknown client_id ${query.get('client_id') ?? '(none)'}: this is not a registered application.` };
    const scopes = (query.get('scope') ?? '').split(/[\s+]+/).filter(Boolean);
    if (!scopes.length) return { problem: 'The request names no scope.' };
    const redirectUri = query.get('redirect_uri') ?? options.redirectUri;
    if (!redirectUri) return { problem: 'No redirect_uri, and the application has no redirect URL registered.' };
    return { scopes, redirectUri, state: query.get('state') };
  };

  const html = (status: number, text: string): Reply => ({ status, body: text, headers: { 'Content-Type': 'text/html; charset=utf-8' } });

  const authorizePage = (query: URLSearchParams): Reply => {
    const checked = authorizeRequest(query);
    if ('problem' in checked) return html(400, authorizeErrorPage(checked.problem!));
    if (!merchants.size) return html(400, authorizeErrorPage('The simulator has no merchant to sign in as: add one with npm run square -- merchants add --name "Demo Bakery".'));
    return html(
      200,
      consentPage({
        appName: options.appName ?? 'Tally',
        merchants: [...merchants.values()].map((m) => ({ id: m.merchant.merchantId, name: m.merchant.businessName })),
        scopes: checked.scopes,
      }),
    );
  };

  const authorizeDecision = (query: URLSearchParams, form: URLSearchParams): Reply => {
    const checked = authorizeRequest(query);
    if ('problem' in checked) return html(400, authorizeErrorPage(checked.problem!));
    const target = new URL(checked.redirectUri);
    const decision = form.get('decision');
    if (decision === 'deny') {
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_description', 'user_denied');
    } else if (decision === 'allow') {
      const merchantId = form.get('merchant_id') ?? (merchants.size === 1 ? [...merchants.keys()][0]! : '');
      if (!merchants.has(merchantId)) return html(400, authorizeErrorPage(`Unknown merchant ${merchantId || '(none chosen)'}.`));
      target.searchParams.set('code', issueCode(merchantId, checked.scopes, query.get('redirect_uri') ?? undefined));
      target.searchParams.set('response_type', 'code');
    } else {
      return html(400, authorizeErrorPage('decision must be allow or deny.'));
    }
    if (checked.state !== null) target.searchParams.set('state', checked.state);
    return { status: 302, body: '', headers: { Location: target.toString() } };
  };

  // ---- Control endpoints: what happens at the merchant's till, announced by webhooks ----

  const announce = async (
    state: MerchantState,
    type: string,
    dataType: string,
    objectId: string,
    object: Record<string, unknown>,
  ): Promise<Delivery & { processed?: string }> => {
    const envelope = webhookEnvelope({ type, merchantId: state.merchant.merchantId, dataType, objectId, object, createdAt: new Date().toISOString() });
    if (!options.webhooks) return { eventId: envelope.event_id, type, status: null, answer: 'no webhook subscription configured: nothing sent' };
    const delivery = await deliverWebhook({ notificationUrl: options.webhooks.notificationUrl, signatureKey: signatureKey!, body: toJson(envelope) });
    if (delivery.status !== null && delivery.status >= 200 && delivery.status < 300 && options.afterDelivery && delivery.eventId) {
      const processed = await options.afterDelivery(delivery.eventId);
      return processed === undefined ? delivery : { ...delivery, processed };
    }
    return delivery;
  };

  const controlMerchant = (body: unknown): Reply => {
    const f = fields(body);
    const name = f.text('name');
    const currency = (f.optionalText('currency') ?? 'USD').toUpperCase();
    const country = (f.optionalText('country') ?? 'US').toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) throw badRequest('INVALID_CURRENCY', 'currency must be an ISO 4217 code such as USD.', 'currency');
    if (!/^[A-Z]{2}$/.test(country)) throw badRequest('INVALID_COUNTRY', 'country must be an ISO 3166 alpha-2 code such as US.', 'country');
    const merchantId = f.optionalText('id') ?? `ML${squareId(11)}`;
    if (merchants.has(merchantId)) throw new SquareFailure(409, 'INVALID_REQUEST_ERROR', 'CONFLICT', `Merchant ${merchantId} already exists.`, 'id');
    const locationId = f.optionalText('location_id') ?? `L${squareId(12)}`;
    const timezone = f.optionalText('timezone');
    if (timezone !== undefined && !isTimeZone(timezone)) throw badRequest('INVALID_TIMEZONE', 'timezone must be an IANA time zone such as America/New_York.', 'timezone');
    addMerchant({ merchantId, businessName: name, currency, country, locations: [{ id: locationId, name: `${name} (main)`, ...(timezone ? { timezone } : {}) }] });
    return { status: 200, body: { merchant: merchantJson(merchants.get(merchantId)!) } };
  };

  /** The customer with this email or phone, made (and announced) if the merchant has none. */
  const customerFor = async (state: MerchantState, contact: { email?: string; phone?: string; givenName?: string; familyName?: string }) => {
    const existing = [...state.customers.values()].find(
      (c) => (contact.email && c.email?.toLowerCase() === contact.email.toLowerCase()) || (contact.phone && c.phone === contact.phone),
    );
    if (existing) return { customer: existing, webhooks: [] };
    const customer: TestCustomer = {
      id: squareId(26),
      ...(contact.email ? { email: contact.email } : {}),
      ...(contact.phone ? { phone: contact.phone } : {}),
      ...(contact.givenName ? { givenName: contact.givenName } : {}),
      ...(contact.familyName ? { familyName: contact.familyName } : {}),
    };
    state.customers.set(customer.id, customer);
    persist();
    return { customer, webhooks: [await announce(state, 'customer.created', 'customer', customer.id, { customer: customerJson(customer) })] };
  };

  const controlCustomer = async (body: unknown): Promise<Reply> => {
    const f = fields(body);
    const state = knownMerchant(f.text('merchant_id'));
    const email = f.optionalText('email');
    const phone = f.optionalText('phone');
    if (!email && !phone) throw badRequest('MISSING_REQUIRED_PARAMETER', 'A customer needs an email or a phone.', 'email');
    const made = await customerFor(state, {
      ...(email ? { email } : {}),
      ...(phone ? { phone } : {}),
      ...(f.optionalText('given_name') ? { givenName: f.optionalText('given_name')! } : {}),
      ...(f.optionalText('family_name') ? { familyName: f.optionalText('family_name')! } : {}),
    });
    return { status: 200, body: { customer: customerJson(made.customer), webhooks: made.webhooks } };
  };

  /**
   * `line_items` of a control payment: `[{ catalog_object_id, quantity?, tax? }]` (a variation of the merchant's
   * catalog, its price from there) or `[{ name, price, quantity?, tax? }]` (a custom amount). Makes the order.
   */
  const orderLines = (state: MerchantState, value: unknown): TestOrderLine[] | undefined => {
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || !value.length) throw badRequest('INVALID_VALUE', 'line_items must be a non-empty list.', 'line_items');
    return value.map((raw: unknown, i) => {
      const f = fields(raw);
      const field = (name: string) => `line_items[${i}].${name}`;
      const record = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
      const quantity = String(record.quantity ?? '1');
      if (!/^\d{1,10}(\.\d{1,5})?$/.test(quantity) || Number(quantity) <= 0) throw badRequest('INVALID_VALUE', `${field('quantity')} must be a positive decimal such as "2".`, field('quantity'));
      const tax = f.optionalAmount('tax', 0);
      const variationId = f.optionalText('catalog_object_id');
      const line = variationId ? catalogLine(state.catalog, variationId, quantity) : { name: f.text('name'), quantity, basePriceMinor: f.amount('price', 0) };
      if (!line) throw notFound(`Catalog object \`${variationId}\` not found (${field('catalog_object_id')}).`);
      return { ...line, ...(tax !== undefined ? { taxMinor: tax } : {}) };
    });
  };

  const controlPayment = async (body: unknown): Promise<Reply> => {
    const f = fields(body);
    const state = knownMerchant(f.text('merchant_id'));
    const lines = orderLines(state, (body as Record<string, unknown> | null)?.line_items);
    const amount = lines ? orderAmount({ id: '', locationId: '', lines, createdAt: '' }) : f.amount('amount', 1);
    const tip = f.optionalAmount('tip', 0);
    const status = f.optionalText('status') ?? 'COMPLETED';
    if (!(PAYMENT_STATUSES as readonly string[]).includes(status)) {
      throw badRequest('INVALID_ENUM_VALUE', `status must be one of ${PAYMENT_STATUSES.join(', ')}.`, 'status');
    }
    const locationId = f.optionalText('location_id') ?? state.merchant.mainLocationId;
    if (!state.merchant.locations.some((l) => l.id === locationId)) throw notFound(`Location \`${locationId}\` not found.`);
    const email = f.optionalText('email');
    const phone = f.optionalText('phone');
    let customerId = f.optionalText('customer_id');
    if (customerId && !state.customers.has(customerId)) throw notFound(`Customer with ID \`${customerId}\` not found.`);
    const webhooks: Triggered<unknown>['webhooks'] = [];
    if (!customerId && (email || phone)) {
      const made = await customerFor(state, { ...(email ? { email } : {}), ...(phone ? { phone } : {}) });
      customerId = made.customer.id;
      webhooks.push(...made.webhooks);
    }
    const createdAt = new Date().toISOString();
    const order: TestOrder | undefined = lines ? { id: squareId(24), locationId, lines, ...(tip !== undefined ? { tipMinor: tip } : {}), createdAt } : undefined;
    if (order) state.orders.set(order.id, order);
    const payment: TestPayment = {
      id: squareId(29),
      locationId,
      amount,
      ...(tip !== undefined ? { tip } : {}),
      status: status === 'COMPLETED' ? 'APPROVED' : status,
      ...(customerId ? { customerId } : {}),
      ...(order ? { orderId: order.id } : {}),
      createdAt,
    };
    state.payments.set(payment.id, payment);
    persist();
    // As Square: payment.created (usually APPROVED), then payment.updated when it completes.
    webhooks.push(await announce(state, 'payment.created', 'payment', payment.id, { payment: paymentJson(payment, state.merchant.currency) }));
    if (status === 'COMPLETED') {
      payment.status = 'COMPLETED';
      payment.updatedAt = new Date(Math.max(Date.now(), Date.parse(createdAt) + 1)).toISOString();
      persist();
      webhooks.push(await announce(state, 'payment.updated', 'payment', payment.id, { payment: paymentJson(payment, state.merchant.currency) }));
    }
    return { status: 200, body: { payment: paymentJson(payment, state.merchant.currency), webhooks } };
  };

  const findPayment = (paymentId: string) => {
    for (const state of merchants.values()) {
      const payment = state.payments.get(paymentId);
      if (payment) return { state, payment };
    }
    throw notFound(`Payment with ID \`${paymentId}\` not found.`);
  };

  const controlRefund = async (body: unknown): Promise<Reply> => {
    const f = fields(body);
    const { state, payment } = findPayment(f.text('payment_id'));
    const amount = f.amount('amount', 1);
    if (payment.status !== 'COMPLETED') {
      throw badRequest('PAYMENT_NOT_REFUNDABLE', `Payment ${payment.id} is ${payment.status ?? 'COMPLETED'}: only a completed payment can be refunded.`, 'payment_id');
    }
    const total = BigInt(payment.total ?? BigInt(payment.amount) + BigInt(payment.tip ?? 0));
    const refunded = [...state.refunds.values()]
      .filter((r) => r.paymentId === payment.id && r.status !== 'FAILED' && r.status !== 'REJECTED')
      .reduce((sum, r) => sum + BigInt(r.amount), 0n);
    if (BigInt(amount) > total - refunded) {
      throw badRequest('REFUND_AMOUNT_INVALID', `The requested refund amount exceeds the amount available to refund (${total - refunded} remaining).`, 'amount_money.amount');
    }
    const createdAt = new Date().toISOString();
    const refund: TestRefund = { id: `${payment.id}_${squareId(40)}`, paymentId: payment.id, locationId: payment.locationId, amount, status: 'PENDING', createdAt };
    state.refunds.set(refund.id, refund);
    persist();
    // As Square: refund.created (PENDING), then refund.updated when it completes.
    const webhooks = [await announce(state, 'refund.created', 'refund', refund.id, { refund: refundJson(refund, state.merchant.currency) })];
    refund.status = 'COMPLETED';
    refund.updatedAt = new Date(Math.max(Date.now(), Date.parse(createdAt) + 1)).toISOString();
    persist();
    webhooks.push(await announce(state, 'refund.updated', 'refund', refund.id, { refund: refundJson(refund, state.merchant.currency) }));
    return { status: 200, body: { refund: refundJson(refund, state.merchant.currency), webhooks } };
  };

  const controlRevoke = async (body: unknown): Promise<Reply> => {
    const state = knownMerchant(fields(body).text('merchant_id'));
    revokeAll(state.merchant.merchantId);
    persist();
    const revokedAt = new Date().toISOString();
    const webhooks = [await announce(state, 'oauth.authorization.revoked', 'revocation', randomUUID(), { revocation: { revoked_at: revokedAt, revoker_type: 'MERCHANT' } })];
    return { status: 200, body: { merchant_id: state.merchant.merchantId, revoked_at: revokedAt, webhooks } };
  };

  const controlListPayments = (query: URLSearchParams): Reply => {
    const merchantId = query.get('merchant_id');
    const states = merchantId ? [knownMerchant(merchantId)] : [...merchants.values()];
    return {
      status: 200,
      body: {
        payments: states.flatMap((state) =>
          [...state.payments.values()].map((p) => ({
            merchant_id: state.merchant.merchantId,
            ...paymentJson(p, p.currency ?? state.merchant.currency),
            refunds: [...state.refunds.values()].filter((r) => r.paymentId === p.id).map((r) => refundJson(r, state.merchant.currency)),
          })),
        )
          // Newest first, as Square lists payments by default (`list payments --json | json payments.0.id` is the last one made).
          .reverse()
          .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0)),
      },
    };
  };

  const control = async (method: string, path: string, query: URLSearchParams, body: unknown): Promise<Reply> => {
    if (method === 'GET' && path === '/simulator') {
      return {
        status: 200,
        body: {
          merchants: [...merchants.values()].map(merchantJson),
          webhooks: options.webhooks ? { notification_url: options.webhooks.notificationUrl } : null,
        },
      };
    }
    if (method === 'GET' && path === '/simulator/payments') return controlListPayments(query);
    if (method === 'POST' && path === '/simulator/merchants') return controlMerchant(body);
    if (method === 'POST' && path === '/simulator/customers') return controlCustomer(body);
    if (method === 'POST' && path === '/simulator/payments') return controlPayment(body);
    if (method === 'POST' && path === '/simulator/refunds') return controlRefund(body);
    if (method === 'POST' && path === '/simulator/revocations') return controlRevoke(body);
    throw notFound(`No route for ${method} ${path}.`);
  };

  const route = async (request: IncomingMessage, url: URL, body: unknown, path: string): Promise<Reply> => {
    const method = request.method ?? 'GET';
    const post = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    let match: RegExpExecArray | null;

    if (path === '/simulator' || path.startsWith('/simulator/')) return control(method, path, url.searchParams, body);
    if (path === '/oauth2/authorize' && method === 'GET') return authorizePage(url.searchParams);
    if (path === '/oauth2/authorize' && method === 'POST') {
      return authorizeDecision(url.searchParams, new URLSearchParams(typeof body === 'string' ? body : ''));
    }
    if (method === 'POST' && path === '/oauth2/token') return obtainToken(post);
    if (method === 'POST' && path === '/oauth2/revoke') return revokeToken(request, post);
    if (method === 'POST' && path === '/oauth2/token/status') {
      const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
      const grant = bearer ? accessTokens.get(bearer) : undefined;
      if (!grant || grant.state !== 'active') throw unauthorized();
      return { status: 200, body: { client_id: appId, expires_at: grant.expiresAt, merchant_id: grant.merchantId, scopes: [...grant.scopes] } };
    }
    if (method === 'POST' && path === '/v2/catalog/batch-retrieve') {
      const state = authorize(request, 'ITEMS_READ');
      if (!Array.isArray(post.object_ids) || !post.object_ids.length) throw badRequest('MISSING_REQUIRED_PARAMETER', 'Missing required parameter: object_ids.', 'object_ids');
      if (post.object_ids.length > 1000) throw badRequest('INVALID_ARRAY_LENGTH', 'object_ids may hold at most 1000 ids.', 'object_ids');
      return { status: 200, body: batchRetrieve(state.catalog, post, state.merchant.currency) };
    }
    if (method === 'POST' && path === '/v2/customers/bulk-retrieve') {
      const state = authorize(request, 'CUSTOMERS_READ');
      const ids: unknown = post.customer_ids;
      if (!Array.isArray(ids) || !ids.length) throw badRequest('MISSING_REQUIRED_PARAMETER', 'Missing required parameter: customer_ids.', 'customer_ids');
      if (ids.length > 100) throw badRequest('INVALID_ARRAY_LENGTH', 'customer_ids may hold at most 100 ids.', 'customer_ids');
      if (!ids.every((id) => typeof id === 'string')) throw badRequest('INVALID_VALUE', 'customer_ids must hold strings.', 'customer_ids');
      // As Square: one answer per id, the customer or that id's own errors.
      const responses: Record<string, unknown> = {};
      for (const id of ids as string[]) {
        const customer = state.customers.get(id);
        responses[id] = customer
          ? { customer: customerJson(customer) }
          : { errors: [{ category: 'INVALID_REQUEST_ERROR', code: 'NOT_FOUND', detail: `Customer with ID \`${id}\` not found.` }] };
      }
      return { status: 200, body: { responses } };
    }
    if (method !== 'GET') throw new SquareFailure(405, 'INVALID_REQUEST_ERROR', 'METHOD_NOT_ALLOWED', `${method} ${path} is not supported.`);

    if ((match = /^\/v2\/merchants\/([^/]+)$/.exec(path))) {
      const state = authorize(request, 'MERCHANT_PROFILE_READ');
      const id = decodeURIComponent(match[1]!);
      if (id !== 'me' && id !== state.merchant.merchantId) throw notFound(`Merchant with ID \`${id}\` not found.`);
      return { status: 200, body: { merchant: merchantJson(state) } };
    }
    if (path === '/v2/locations') {
      const state = authorize(request, 'MERCHANT_PROFILE_READ');
      return { status: 200, body: { locations: state.merchant.locations.map((l) => locationJson(l, state)) } };
    }
    if ((match = /^\/v2\/customers\/([^/]+)$/.exec(path))) {
      const state = authorize(request, 'CUSTOMERS_READ');
      const id = decodeURIComponent(match[1]!);
      const customer = state.customers.get(id);
      if (!customer) throw notFound(`Customer with ID \`${id}\` not found.`);
      return { status: 200, body: { customer: customerJson(customer) } };
    }
    if ((match = /^\/v2\/payments\/([^/]+)$/.exec(path))) {
      const state = authorize(request, 'PAYMENTS_READ');
      const id = decodeURIComponent(match[1]!);
      const payment = state.payments.get(id);
      if (!payment) throw notFound(`Payment with ID \`${id}\` not found.`);
      return { status: 200, body: { payment: paymentJson(payment, payment.currency ?? state.merchant.currency) } };
    }
    if ((match = /^\/v2\/orders\/([^/]+)$/.exec(path))) {
      const state = authorize(request, 'ORDERS_READ');
      const id = decodeURIComponent(match[1]!);
      const order = state.orders.get(id);
      if (!order) throw notFound(`Order with ID \`${id}\` not found.`);
      return { status: 200, body: { order: orderJson(order, state.merchant.currency) } };
    }
    if (path === '/v2/payments') {
      const state = authorize(request, 'PAYMENTS_READ');
      // Square's documented quirk: without location_id, only the main location's payments.
      const locationId = url.searchParams.get('location_id') ?? state.merchant.mainLocationId;
      if (!state.merchant.locations.some((l) => l.id === locationId)) throw notFound(`Location \`${locationId}\` not found.`);
      const payments = [...state.payments.values()].filter((p) => p.locationId === locationId && !state.unlisted?.has(p.id));
      return listReply('payments', payments, url.searchParams, (p) => paymentJson(p, p.currency ?? state.merchant.currency));
    }
    if (path === '/v2/refunds') {
      const state = authorize(request, 'PAYMENTS_READ');
      const locationId = url.searchParams.get('location_id');
      const status = url.searchParams.get('status');
      const refunds = [...state.refunds.values()].filter(
        (r) => (locationId === null || r.locationId === locationId) && (status === null || (r.status ?? 'COMPLETED') === status),
      );
      return listReply('refunds', refunds, url.searchParams, (r) => refundJson(r, r.currency ?? state.merchant.currency));
    }
    throw notFound(`No route for ${method} ${path}.`);
  };

  const faultReply = (fault: { status: number; retryAfter?: number; code?: string }): Reply => {
    const code = fault.code ?? (fault.status === 429 ? 'RATE_LIMITED' : fault.status === 503 ? 'SERVICE_UNAVAILABLE' : 'INTERNAL_SERVER_ERROR');
    const category = fault.status === 429 ? 'RATE_LIMIT_ERROR' : fault.status >= 500 ? 'API_ERROR' : 'INVALID_REQUEST_ERROR';
    return {
      status: fault.status,
      body: { errors: [{ category, code, detail: `Injected fault: ${code}.` }] },
      headers: fault.retryAfter === undefined ? {} : { 'Retry-After': String(fault.retryAfter) },
    };
  };

  const send = (response: ServerResponse, reply: Reply) => {
    if (response.destroyed || response.writableEnded) return;
    response.writeHead(reply.status, { 'Content-Type': 'application/json', ...reply.headers });
    response.end(typeof reply.body === 'string' ? reply.body : toJson(reply.body));
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.slice(basePath.length) || '/';
    const body = await readBody(request);
    requests.push({
      method: request.method ?? 'GET',
      path,
      query: Object.fromEntries(url.searchParams),
      authorization: request.headers.authorization,
      squareVersion: typeof request.headers['square-version'] === 'string' ? request.headers['square-version'] : undefined,
      body,
    });

    const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    const requestMerchant = bearer ? accessTokens.get(bearer)?.merchantId : undefined;
    const faultIndex = faults.findIndex((f) => path.startsWith(f.pathPrefix) && (f.merchantId === undefined || f.merchantId === requestMerchant));
    let fault: Fault | undefined;
    if (faultIndex >= 0 && faults[faultIndex]!.skip > 0) faults[faultIndex]!.skip -= 1;
    else if (faultIndex >= 0) fault = faults[faultIndex]!.lasting ? faults[faultIndex]!.fault : faults.splice(faultIndex, 1)[0]!.fault;
    if (fault && 'dropConnection' in fault) {
      request.socket.destroy();
      return;
    }
    if (fault && 'status' in fault && fault.html !== undefined) {
      response.writeHead(fault.status, { 'Content-Type': 'text/html' });
      response.end(fault.html);
      return;
    }
    if (fault && 'status' in fault) return send(response, faultReply(fault));
    if (fault && 'delayMs' in fault) await sleep(fault.delayMs, timers);
    if (fault && 'released' in fault) await fault.released;

    try {
      send(response, await route(request, url, body, path));
      if (request.method !== 'GET') persist();
    } catch (error) {
      if (!(error instanceof SquareFailure)) throw error;
      send(response, {
        status: error.status,
        body: error.v1Type
          ? { message: error.detail, type: error.v1Type }
          : { errors: [{ category: error.category, code: error.code, detail: error.detail, ...(error.field ? { field: error.field } : {}) }] },
      });
    }
  };

  return {
    get url() {
      return baseUrl;
    },
    appId,
    get appSecret() {
      return appSecret;
    },
    requests,

    handle(request, response) {
      handle(request, response).catch((error: unknown) => {
        send(response, {
          status: 500,
          body: { errors: [{ category: 'API_ERROR', code: 'INTERNAL_SERVER_ERROR', detail: `Simulator bug: ${String(error)}` }] },
        });
      });
    },
    owns: (pathname) => basePath !== '' && (pathname === basePath || pathname.startsWith(`${basePath}/`)),
    setUrl(url) {
      baseUrl = `${url.replace(/\/+$/, '')}${basePath}`;
    },
    webhookSignatureKey: signatureKey,

    addMerchant(merchant) {
      addMerchant(merchant);
      persist();
    },

    issueCode(merchantId, { scopes = DEFAULT_SCOPES, redirectUri } = {}) {
      merchantState(merchantId);
      const code = issueCode(merchantId, scopes, redirectUri);
      persist();
      return code;
    },

    issueAccessToken(merchantId, { scopes = DEFAULT_SCOPES } = {}) {
      merchantState(merchantId);
      const { accessToken } = newAccessToken({ merchantId, scopes });
      persist();
      return accessToken;
    },

    addCustomer(merchantId, customer) {
      merchantState(merchantId).customers.set(customer.id, customer);
      persist();
    },

    addPayment(merchantId, payment, { listed = true } = {}) {
      const state = merchantState(merchantId);
      state.payments.set(payment.id, payment);
      if (!listed) (state.unlisted ??= new Set()).add(payment.id);
      persist();
    },

    listPayment(merchantId, paymentId) {
      merchantState(merchantId).unlisted?.delete(paymentId);
    },

    addRefund(merchantId, refund) {
      merchantState(merchantId).refunds.set(refund.id, refund);
      persist();
    },

    setCatalog(merchantId, catalog) {
      merchantState(merchantId).catalog = catalog;
      persist();
    },

    addOrder(merchantId, order) {
      if (order.lines.some((l) => l.itemType === 'GIFT_CARD' && l.catalogObjectId)) throw new Error('Test server: GIFT_CARD line items cannot reference a catalog object (Square refuses it)');
      merchantState(merchantId).orders.set(order.id, order);
      persist();
    },

    revokeTokensOf(merchantId) {
      revokeAll(merchantId);
      persist();
    },

    expireTokensOf(merchantId) {
      for (const grant of accessTokens.values()) if (grant.merchantId === merchantId && grant.state === 'active') grant.state = 'expired';
      persist();
    },

    rotateAppSecret(secret) {
      appSecret = secret;
    },

    failNext(pathPrefix, fault, options = {}) {
      faults.push({ pathPrefix, fault, skip: options.skip ?? 0, ...(options.merchantId ? { merchantId: options.merchantId } : {}) });
    },

    failUntilCleared(pathPrefix, fault) {
      const entry = { pathPrefix, fault, skip: 0, lasting: true };
      faults.push(entry);
      return () => {
        const index = faults.indexOf(entry);
        if (index >= 0) faults.splice(index, 1);
      };
    },

    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

/**
 * The simulator on its own socket (127.0.0.1, a free port unless given): what the tests use. With `latencyMs`, a
 * request is handled that long after it arrived (Square answers a customer look-up in 100–300 ms; the ingestion
 * benchmark's stand-in, bench/ingest-square.ts).
 */
export async function startSquareServer(options: SimulatorOptions & { port?: number; latencyMs?: (method: string, path: string) => number } = {}): Promise<SquareTestServer> {
  const simulator = createSquareSimulator(options);
  const { latencyMs } = options;
  const server: Server = createServer((request, response) => {
    const delay = latencyMs?.(request.method ?? 'GET', request.url ?? '/') ?? 0;
    if (delay > 0) setTimeout(() => simulator.handle(request, response), delay);
    else simulator.handle(request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  simulator.setUrl(`http://127.0.0.1:${port}`);
  const stopSimulator = simulator.stop;
  return Object.assign(simulator, {
    async stop() {
      await stopSimulator();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
