/**
 * A local stand-in for Square's API: a real HTTP server on 127.0.0.1 that answers the endpoints this service
 * calls, in Square's shapes (built from Square's published examples, tests/fixtures/square/api/), so the
 * adapter is exercised through the real `square` SDK. State lives in memory and is scripted by the tests.
 *
 * What it models: OAuth code exchange (codes single-use, 5 minutes), refresh (same refresh token back), revoke
 * (`Authorization: Client <secret>` only); bearer tokens that can be unknown, revoked, expired or short of a
 * scope; list filters, sort orders and cursor pagination; faults (status codes with `Retry-After`, delays,
 * dropped connections). What it does not: writes, webhooks, Square's undocumented limits, and the one-year
 * default window Square applies to `begin_time`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const TEST_APP_ID = 'sq0idp-test-application';
export const TEST_APP_SECRET = 'sq0csp-test-application-secret';
/** What a code grants unless `issueCode` says otherwise. */
export const DEFAULT_SCOPES = ['MERCHANT_PROFILE_READ', 'PAYMENTS_READ', 'CUSTOMERS_READ'] as const;

export interface TestLocation {
  id: string;
  name: string;
  status?: 'ACTIVE' | 'INACTIVE';
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
  /** Adds or replaces (same id) a payment, as Square updates one in place. */
  addPayment(merchantId: string, payment: TestPayment): void;
  /** Adds or replaces (same id) a refund. */
  addRefund(merchantId: string, refund: TestRefund): void;
  /** The merchant revoked the app: its access tokens answer `ACCESS_TOKEN_REVOKED`, its refresh token is dead. */
  revokeTokensOf(merchantId: string): void;
  /** The merchant's current access tokens answer `ACCESS_TOKEN_EXPIRED`; refreshing still works. */
  expireTokensOf(merchantId: string): void;
  /**
   * The next request whose path starts with `pathPrefix` gets `fault`. Queued faults apply in order. With
   * `merchantId`, only requests whose bearer token belongs to that merchant match; with `skip`, that many
   * matching requests pass normally first (to fail a later page or location).
   */
  failNext(pathPrefix: string, fault: Fault, options?: { merchantId?: string; skip?: number }): void;
  stop(): Promise<void>;
}

interface MerchantState {
  merchant: Required<TestMerchant>;
  customers: Map<string, TestCustomer>;
  payments: Map<string, TestPayment>;
  refunds: Map<string, TestRefund>;
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
  ) {
    super(detail);
  }
}

const CODE_LIFETIME_MS = 5 * 60_000;
const TOKEN_LIFETIME_MS = 30 * 24 * 3600_000;
const MAX_PAGE = 100;

const unauthorized = (detail = 'This request could not be authorized.') =>
  new SquareFailure(401, 'AUTHENTICATION_ERROR', 'UNAUTHORIZED', detail);
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
    family_name: 'Earhart',
    given_name: 'Amelia',
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
    timezone: 'America/New_York',
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

export async function startSquareServer(options: { appId?: string; appSecret?: string } = {}): Promise<SquareTestServer> {
  const appId = options.appId ?? TEST_APP_ID;
  const appSecret = options.appSecret ?? TEST_APP_SECRET;
  const merchants = new Map<string, MerchantState>();
  const codes = new Map<string, Code>();
  const accessTokens = new Map<string, AccessToken>();
  const refreshTokens = new Map<string, Grant>();
  const faults: { pathPrefix: string; fault: Fault; merchantId?: string; skip: number }[] = [];
  const requests: LoggedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const merchantState = (merchantId: string) => {
    const state = merchants.get(merchantId);
    if (!state) throw new Error(`Test server: no merchant ${merchantId}; call addMerchant first`);
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

  const obtainToken = (body: Record<string, unknown>): Reply => {
    if (body.client_id !== appId || body.client_secret !== appSecret) throw unauthorized('Not Authorized');
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
      if (!grant) throw unauthorized('The refresh token is invalid or has been revoked.');
      return tokenResponse(grant, refreshToken);
    }
    throw badRequest('INVALID_VALUE', `Unsupported grant_type: ${String(body.grant_type)}.`, 'grant_type');
  };

  const revokeAll = (merchantId: string) => {
    let found = false;
    for (const grant of accessTokens.values()) {
      if (grant.merchantId === merchantId) {
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

  const route = async (request: IncomingMessage, url: URL, body: unknown): Promise<Reply> => {
    const method = request.method ?? 'GET';
    const path = url.pathname;
    const post = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    let match: RegExpExecArray | null;

    if (method === 'POST' && path === '/oauth2/token') return obtainToken(post);
    if (method === 'POST' && path === '/oauth2/revoke') return revokeToken(request, post);
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
    if (path === '/v2/payments') {
      const state = authorize(request, 'PAYMENTS_READ');
      // Square's documented quirk: without location_id, only the main location's payments.
      const locationId = url.searchParams.get('location_id') ?? state.merchant.mainLocationId;
      if (!state.merchant.locations.some((l) => l.id === locationId)) throw notFound(`Location \`${locationId}\` not found.`);
      const payments = [...state.payments.values()].filter((p) => p.locationId === locationId);
      const result = page(payments, listQuery(url.searchParams), url.searchParams);
      const currency = state.merchant.currency;
      return {
        status: 200,
        body: result.items.length
          ? { payments: result.items.map((p) => paymentJson(p, p.currency ?? currency)), ...(result.cursor ? { cursor: result.cursor } : {}) }
          : {},
      };
    }
    if (path === '/v2/refunds') {
      const state = authorize(request, 'PAYMENTS_READ');
      const locationId = url.searchParams.get('location_id');
      const status = url.searchParams.get('status');
      const refunds = [...state.refunds.values()].filter(
        (r) => (locationId === null || r.locationId === locationId) && (status === null || (r.status ?? 'COMPLETED') === status),
      );
      const result = page(refunds, listQuery(url.searchParams), url.searchParams);
      const currency = state.merchant.currency;
      return {
        status: 200,
        body: result.items.length
          ? { refunds: result.items.map((r) => refundJson(r, r.currency ?? currency)), ...(result.cursor ? { cursor: result.cursor } : {}) }
          : {},
      };
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
    response.end(toJson(reply.body));
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const body = await readBody(request);
    requests.push({
      method: request.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: request.headers.authorization,
      squareVersion: typeof request.headers['square-version'] === 'string' ? request.headers['square-version'] : undefined,
      body,
    });

    const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    const requestMerchant = bearer ? accessTokens.get(bearer)?.merchantId : undefined;
    const faultIndex = faults.findIndex((f) => url.pathname.startsWith(f.pathPrefix) && (f.merchantId === undefined || f.merchantId === requestMerchant));
    let fault: Fault | undefined;
    if (faultIndex >= 0 && faults[faultIndex]!.skip > 0) faults[faultIndex]!.skip -= 1;
    else if (faultIndex >= 0) fault = faults.splice(faultIndex, 1)[0]!.fault;
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

    try {
      send(response, await route(request, url, body));
    } catch (error) {
      if (!(error instanceof SquareFailure)) throw error;
      send(response, {
        status: error.status,
        body: { errors: [{ category: error.category, code: error.code, detail: error.detail, ...(error.field ? { field: error.field } : {}) }] },
      });
    }
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      send(response, {
        status: 500,
        body: { errors: [{ category: 'API_ERROR', code: 'INTERNAL_SERVER_ERROR', detail: `Test server bug: ${String(error)}` }] },
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    appId,
    appSecret,
    requests,

    addMerchant(merchant) {
      const main = merchant.mainLocationId ?? merchant.locations[0]?.id;
      if (!main) throw new Error('Test server: a merchant needs at least one location');
      merchants.set(merchant.merchantId, {
        merchant: { country: 'US', currency: 'USD', ...merchant, mainLocationId: main },
        customers: new Map(),
        payments: new Map(),
        refunds: new Map(),
      });
    },

    issueCode(merchantId, { scopes = DEFAULT_SCOPES, redirectUri } = {}) {
      merchantState(merchantId);
      const code = token('sq0cgp-');
      codes.set(code, { merchantId, scopes, redirectUri, expiresAtMs: Date.now() + CODE_LIFETIME_MS, used: false });
      return code;
    },

    issueAccessToken(merchantId, { scopes = DEFAULT_SCOPES } = {}) {
      merchantState(merchantId);
      return newAccessToken({ merchantId, scopes }).accessToken;
    },

    addCustomer(merchantId, customer) {
      merchantState(merchantId).customers.set(customer.id, customer);
    },

    addPayment(merchantId, payment) {
      merchantState(merchantId).payments.set(payment.id, payment);
    },

    addRefund(merchantId, refund) {
      merchantState(merchantId).refunds.set(refund.id, refund);
    },

    revokeTokensOf(merchantId) {
      revokeAll(merchantId);
    },

    expireTokensOf(merchantId) {
      for (const grant of accessTokens.values()) if (grant.merchantId === merchantId && grant.state === 'active') grant.state = 'expired';
    },

    failNext(pathPrefix, fault, options = {}) {
      faults.push({ pathPrefix, fault, skip: options.skip ?? 0, ...(options.merchantId ? { merchantId: options.merchantId } : {}) });
    },

    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
