/**
 * The Square port (`domain/ports/square.ts`) on the `square` SDK (v46). The only module that imports `square`:
 * it turns the SDK's camelCase objects and `bigint` money into the port's plain types, and its errors into
 * `SquareApiError`.
 *
 * Retries: the SDK would retry 408/429/5xx twice on its own, sleeping up to 60 s per attempt (honouring
 * `Retry-After`), inside the call and invisible to us. We set `maxRetries: 0` so that a call fails fast with
 * `retryable` and `retryAfterSeconds`, and the caller (a webhook handler that must answer within 10 s, or a poll
 * job with a checkpoint) decides when to try again. The SDK never retries timeouts or connection errors anyway.
 *
 * Loading: the SDK is 4,000 CommonJS files, about 1.3 s of CPU to load, so it is imported on the first call to
 * Square, not when the service starts: a process that never calls Square (most tests, the operations commands, a
 * service waiting for its first merchant) never pays for it, and `/readyz` answers that much sooner. The first call
 * waits for the load once.
 */
import type { Square, SquareClient } from 'square';
import {
  MAX_BULK_CUSTOMERS,
  SquareApiError,
  type AuthorizeUrlOptions,
  type ListPaymentsQuery,
  type ListRefundsQuery,
  type SquareApi,
  type SquareCustomer,
  type SquareEnvironmentName,
  type SquareGateway,
  type SquareLocation,
  type SquareMerchant,
  type SquareCatalogObject,
  type SquareOAuth,
  type SquareOperation,
  type SquareOrder,
  type SquarePayment,
  type SquareRefund,
  type SquareTokens,
} from '../../domain/ports/square.ts';
import { z } from 'zod';
import { squareFetch } from './fetch.ts';

export interface SquareAdapterConfig {
  /** The application id (`sq0idp-…`), sent as `client_id`. */
  appId: string;
  /** The application secret (`sq0csp-…`): token requests and `Authorization: Client <secret>` on revoke. */
  appSecret: string;
  environment: SquareEnvironmentName;
  /** Overrides the environment's host for every endpoint, OAuth included (a local stand-in, a proxy). */
  baseUrl?: string;
  /** Per request, until the response headers arrive; defaults to 30 (the SDK's own default is 60). */
  timeoutSeconds?: number;
}

const DEFAULT_TIMEOUT_SECONDS = 30;

/** The SDK's `SquareEnvironment`, known before it is loaded (`tests/integration/square-adapter.test.ts` compares them). */
export const SQUARE_HOSTS = { production: 'https://connect.squareup.com', sandbox: 'https://connect.squareupsandbox.com' } as const;

type Sdk = typeof import('square');
let sdkLoading: Promise<Sdk> | undefined;
/** The SDK once loaded: set before any call of ours can fail with one of its errors. */
let sdk: Sdk | undefined;

function loadSdk(): Promise<Sdk> {
  sdkLoading ??= import('square').then(
    (module) => (sdk = module),
    (error: unknown) => {
      sdkLoading = undefined;
      throw error;
    },
  );
  return sdkLoading;
}

/** The host every call goes to: the override if configured, else the environment's. */
function squareHost(config: SquareAdapterConfig): string {
  if (config.baseUrl) return config.baseUrl.replace(/\/+$/, '');
  return SQUARE_HOSTS[config.environment];
}

export function createSquareGateway(config: SquareAdapterConfig): SquareGateway {
  return {
    oauth: createSquareOAuth(config),
    forAccessToken: (accessToken) => createSquareApi(config, accessToken),
  };
}

/** An SDK client made on the first call (the SDK loaded then), the same one after. */
function sdkClient(config: SquareAdapterConfig, auth: { token: string } | { auth: false }): () => Promise<SquareClient> {
  let client: SquareClient | undefined;
  return async () => {
    if (client) return client;
    const { SquareClient } = await loadSdk();
    client ??= new SquareClient({
      ...auth,
      baseUrl: squareHost(config),
      timeoutInSeconds: config.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
      maxRetries: 0,
      // node:http underneath: Node's fetch cost several times the CPU per call (see fetch.ts).
      fetch: squareFetch,
    });
    return client;
  };
}

export function createSquareOAuth(config: SquareAdapterConfig): SquareOAuth {
  // Token and revoke calls authenticate with the app's credentials, never with a bearer token: `auth: false`
  // also stops the SDK from falling back to a SQUARE_TOKEN environment variable.
  const client = sdkClient(config, { auth: false });

  const obtain = async (operation: SquareOperation, request: Square.ObtainTokenRequest, fallbackRefreshToken?: string) => {
    const response = await call(operation, async () => (await client()).oAuth.obtainToken(request));
    return toTokens(response, operation, fallbackRefreshToken);
  };

  return {
    authorizeUrl({ state, redirectUri, scopes }: AuthorizeUrlOptions): string {
      const url = new URL(`${squareHost(config)}/oauth2/authorize`);
      url.searchParams.set('client_id', config.appId);
      url.searchParams.set('scope', scopes.join(' '));
      url.searchParams.set('session', 'false');
      url.searchParams.set('state', state);
      if (redirectUri) url.searchParams.set('redirect_uri', redirectUri);
      return url.toString();
    },

    exchangeCode: (code, options) =>
      obtain('oauth.exchangeCode', {
        clientId: config.appId,
        clientSecret: config.appSecret,
        code,
        grantType: 'authorization_code',
        ...(options?.redirectUri ? { redirectUri: options.redirectUri } : {}),
      }),

    refresh: (refreshToken) =>
      obtain(
        'oauth.refresh',
        { clientId: config.appId, clientSecret: config.appSecret, refreshToken, grantType: 'refresh_token' },
        refreshToken,
      ),

    async revoke(merchantId) {
      const response = await call('oauth.revoke', async () =>
        (await client()).oAuth.revokeToken(
          { clientId: config.appId, merchantId },
          { headers: { Authorization: `Client ${config.appSecret}` } },
        ),
      );
      if (response.success !== true) invalidResponse('oauth.revoke', 'the revoke response did not report success');
    },
  };
}

export function createSquareApi(config: SquareAdapterConfig, accessToken: string): SquareApi {
  const client = sdkClient(config, { token: accessToken });

  return {
    async getMerchant(): Promise<SquareMerchant> {
      const { merchant } = await call('merchants.get', async () => (await client()).merchants.get({ merchantId: 'me' }));
      const op = 'merchants.get';
      if (!merchant) return invalidResponse(op, 'the response has no merchant');
      return {
        merchantId: required(merchant.id, 'merchant.id', op),
        businessName: merchant.businessName ?? null,
        mainLocationId: merchant.mainLocationId ?? null,
        country: required(merchant.country, 'merchant.country', op),
        currency: required(merchant.currency, 'merchant.currency', op),
      };
    },

    async listLocations(): Promise<SquareLocation[]> {
      const { locations = [] } = await call('locations.list', async () => (await client()).locations.list());
      return locations.map((location) => ({
        id: required(location.id, 'location.id', 'locations.list'),
        name: location.name ?? null,
        status: required(location.status, `location ${location.id}: status`, 'locations.list'),
        timezone: location.timezone ?? null,
      }));
    },

    getCustomer: (customerId): Promise<SquareCustomer | null> =>
      unlessNotFound(async () => {
        const answer = customerAnswer.safeParse(await passthroughGet(await client(), 'customers.get', `/v2/customers/${encodeURIComponent(customerId)}`));
        if (!answer.success) return invalidResponse('customers.get', `the customer is not what Square answers: ${answer.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        const { customer } = answer.data;
        if (!customer) return invalidResponse('customers.get', 'the response has no customer');
        return {
          id: required(customer.id, 'customer.id', 'customers.get'),
          emailAddress: customer.email_address ?? null,
          phoneNumber: customer.phone_number ?? null,
        };
      }),

    async getCustomers(customerIds): Promise<Map<string, SquareCustomer | null | SquareApiError>> {
      const op = 'customers.bulkRetrieve';
      if (customerIds.length === 0 || customerIds.length > MAX_BULK_CUSTOMERS) throw new RangeError(`getCustomers takes 1 to ${MAX_BULK_CUSTOMERS} ids, not ${customerIds.length}`);
      const { responses = {} } = await call(op, async () => (await client()).customers.bulkRetrieveCustomers({ customerIds: [...customerIds] }));
      const answers = new Map<string, SquareCustomer | null | SquareApiError>();
      for (const id of new Set(customerIds)) {
        const answer = responses[id];
        const refused = answer?.errors?.[0];
        if (!answer) answers.set(id, new SquareApiError({ code: 'INVALID_RESPONSE', operation: op, detail: `the response has no answer for customer ${id}` }));
        else if (refused?.code === 'NOT_FOUND') answers.set(id, null);
        else if (refused) answers.set(id, new SquareApiError({ code: refused.code, operation: op, detail: refused.detail ?? refused.code }));
        else if (!answer.customer) answers.set(id, new SquareApiError({ code: 'INVALID_RESPONSE', operation: op, detail: `the answer for customer ${id} has no customer` }));
        else {
          const { customer } = answer;
          answers.set(id, { id: required(customer.id, 'customer.id', op), emailAddress: customer.emailAddress ?? null, phoneNumber: customer.phoneNumber ?? null });
        }
      }
      return answers;
    },

    listPayments({ locationId, updatedAtBeginTime, limit }: ListPaymentsQuery): AsyncIterable<SquarePayment> {
      return paged('payments.list', toPayment, async () =>
        (await client()).payments.list({ locationId, updatedAtBeginTime, limit, sortField: 'UPDATED_AT', sortOrder: 'ASC' }),
      );
    },

    listRefunds({ updatedAtBeginTime, beginTime, locationId, limit }: ListRefundsQuery = {}): AsyncIterable<SquareRefund> {
      return paged('refunds.list', toRefund, async () =>
        (await client()).refunds.list({ updatedAtBeginTime, beginTime, locationId, limit, sortField: 'UPDATED_AT', sortOrder: 'ASC' }),
      );
    },

    async grantedScopes(): Promise<string[]> {
      const status = await call('oauth.tokenStatus', async () => (await client()).oAuth.retrieveTokenStatus());
      return status.scopes ?? [];
    },

    getPayment: (paymentId): Promise<SquarePayment | null> =>
      unlessNotFound(async () => {
        const { payment } = await call('payments.get', async () => (await client()).payments.get({ paymentId }));
        return payment ? toPayment(payment) : invalidResponse('payments.get', 'the response has no payment');
      }),

    getOrder: (orderId): Promise<SquareOrder | null> =>
      unlessNotFound(async () => {
        const { order } = await call('orders.get', async () => (await client()).orders.get({ orderId }));
        return order ? toOrder(order) : invalidResponse('orders.get', 'the response has no order');
      }),

    async getCatalogObjects(ids, { includeRelated = false, includeDeleted = false } = {}): Promise<SquareCatalogObject[]> {
      if (!ids.length) return [];
      const response = await call('catalog.batchGet', async () =>
        (await client()).catalog.batchGet({ objectIds: [...ids], includeRelatedObjects: includeRelated, includeDeletedObjects: includeDeleted }),
      );
      return [...(response.objects ?? []), ...(response.relatedObjects ?? [])].map(toCatalogObject);
    },
  };
}

/** Square's order, money as minor units. A missing money field is 0 (Square leaves zero amounts out). */
function toOrder(order: Square.Order): SquareOrder {
  const op = 'orders.get';
  const id = required(order.id, 'order.id', op);
  const amount = (money: Square.Money | undefined, name: string) => (money?.amount == null ? 0 : minorUnits(money.amount, `order ${id}: ${name}`, op));
  return {
    id,
    locationId: required(order.locationId, `order ${id}: location_id`, op),
    state: order.state ?? null,
    lineItems: (order.lineItems ?? []).map((line, i) => ({
      uid: line.uid ?? `line-${i + 1}`,
      name: line.name ?? null,
      catalogObjectId: line.catalogObjectId ?? null,
      itemType: line.itemType ?? null,
      quantity: required(line.quantity, `order ${id}: line_items[${i}].quantity`, op),
      totalMinor: amount(line.totalMoney, `line_items[${i}].total_money`),
      totalTaxMinor: amount(line.totalTaxMoney, `line_items[${i}].total_tax_money`),
      totalDiscountMinor: amount(line.totalDiscountMoney, `line_items[${i}].total_discount_money`),
    })),
    totalMinor: amount(order.totalMoney, 'total_money'),
    totalTaxMinor: amount(order.totalTaxMoney, 'total_tax_money'),
    totalTipMinor: amount(order.totalTipMoney, 'total_tip_money'),
    totalDiscountMinor: amount(order.totalDiscountMoney, 'total_discount_money'),
    currency: order.totalMoney?.currency ?? null,
  };
}

function toCatalogObject(object: Square.CatalogObject): SquareCatalogObject {
  const id = required(object.id, 'catalog object id', 'catalog.batchGet');
  switch (object.type) {
    case 'ITEM_VARIATION':
      return { type: 'ITEM_VARIATION', id, itemId: object.itemVariationData?.itemId ?? null, name: object.itemVariationData?.name ?? null };
    case 'ITEM': {
      const data = object.itemData;
      // `categories` since 2023-12-13; `category_id` before (deprecated, still sent for older items).
      const categoryIds = [...new Set([...(data?.categories ?? []).flatMap((c) => (c.id ? [c.id] : [])), ...(data?.categoryId ? [data.categoryId] : [])])];
      return { type: 'ITEM', id, categoryIds, name: data?.name ?? null };
    }
    case 'CATEGORY':
      return { type: 'CATEGORY', id, name: object.categoryData?.name ?? null };
    default:
      return { type: 'OTHER', id, squareType: object.type };
  }
}

/** Iterates an SDK pager lazily (it fetches the next page with the cursor as the caller reaches it). */
async function* paged<Item, Out>(
  operation: SquareOperation,
  convert: (item: Item) => Out,
  firstPage: () => Promise<AsyncIterable<Item>>,
): AsyncGenerator<Out> {
  const pager = await call(operation, firstPage);
  const items = pager[Symbol.asyncIterator]();
  try {
    while (true) {
      const next = await call(operation, () => items.next());
      if (next.done) return;
      yield convert(next.value);
    }
  } finally {
    // The caller stopped early (break, or a throw of its own): let the SDK's iterator finish too.
    await items.return?.();
  }
}

/**
 * What a customer look-up reads of Square's answer: the three fields the port has (anything else passes). Read here
 * rather than by the SDK's method, whose answer parsing turns every field of a Customer from snake_case to camelCase
 * through its generic schemas: in the ingestion benchmark's profile that transform alone was 9 % of the service
 * thread's CPU, for a look-up per eight webhooks.
 */
const customerAnswer = z.looseObject({
  customer: z.looseObject({ id: z.string().nullish(), email_address: z.string().nullish(), phone_number: z.string().nullish() }).nullish(),
});

/**
 * A GET through the SDK's passthrough request (its auth and default headers, its timeout, our `fetch`), answering the
 * parsed JSON body. Failures become what the SDK's own methods raise, then mapped by `toSquareApiError`: an error
 * status a `SquareError` of that body, no answer in time a `SquareTimeoutError`, no answer at all a `SquareError`
 * caused by fetch's failure.
 */
async function passthroughGet(client: SquareClient, operation: SquareOperation, path: string): Promise<object> {
  const { SquareError, SquareTimeoutError } = await loadSdk();
  let response: Response;
  let text: string;
  try {
    response = await client.fetch(path, { method: 'GET' });
    text = await response.text();
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'AbortError';
    throw toSquareApiError(timedOut ? new SquareTimeoutError('Timeout exceeded', { cause: error }) : new SquareError({ message: 'fetch failed', cause: error }), operation);
  }
  let body: unknown = text || undefined;
  try {
    if (text) body = JSON.parse(text);
  } catch {
    // Not JSON (an HTML page from a proxy): the text is the body, as the SDK keeps it.
  }
  if (!response.ok) throw toSquareApiError(new SquareError({ statusCode: response.status, body, rawResponse: response }), operation);
  if (body === null || typeof body !== 'object') return invalidResponse(operation, 'the response is not a JSON object');
  return body;
}

/** Square's NOT_FOUND as null: the object does not exist (or is another merchant's). */
async function unlessNotFound<T>(request: () => Promise<T>): Promise<T | null> {
  try {
    return await request();
  } catch (error) {
    if (error instanceof SquareApiError && error.code === 'NOT_FOUND') return null;
    throw error;
  }
}

async function call<T>(operation: SquareOperation, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    throw toSquareApiError(error, operation);
  }
}

function toTokens(response: Square.ObtainTokenResponse, operation: SquareOperation, fallbackRefreshToken?: string): SquareTokens {
  return {
    accessToken: required(response.accessToken, 'access_token', operation),
    refreshToken: required(response.refreshToken ?? fallbackRefreshToken, 'refresh_token', operation),
    expiresAt: required(response.expiresAt, 'expires_at', operation),
    merchantId: required(response.merchantId, 'merchant_id', operation),
  };
}

/** Reads one object of a list answer: a missing or invalid field is reported with the object's kind and id. */
function objectReader(kind: 'payment' | 'refund', rawId: string | null | undefined, operation: SquareOperation) {
  const id = required(rawId, `${kind}.id`, operation);
  const field = (name: string) => `${kind} ${id}: ${name}`;
  return {
    id,
    required: <T>(value: T | null | undefined, name: string) => required(value, field(name), operation),
    minorUnits: (amount: bigint | number | null | undefined, name: string) => minorUnits(amount, field(name), operation),
  };
}

function toPayment(payment: Square.Payment): SquarePayment {
  const read = objectReader('payment', payment.id, 'payments.list');
  return {
    id: read.id,
    status: read.required(payment.status, 'status'),
    amountMinor: read.minorUnits(payment.amountMoney?.amount, 'amount_money.amount'),
    tipMinor: payment.tipMoney ? read.minorUnits(payment.tipMoney.amount, 'tip_money.amount') : 0,
    totalMinor: read.minorUnits(payment.totalMoney?.amount, 'total_money.amount'),
    currency: read.required(payment.amountMoney?.currency, 'amount_money.currency'),
    customerId: payment.customerId ?? null,
    buyerEmail: payment.buyerEmailAddress ?? null,
    locationId: read.required(payment.locationId, 'location_id'),
    orderId: payment.orderId ?? null,
    createdAt: read.required(payment.createdAt, 'created_at'),
    updatedAt: read.required(payment.updatedAt, 'updated_at'),
  };
}

function toRefund(refund: Square.PaymentRefund): SquareRefund {
  const read = objectReader('refund', refund.id, 'refunds.list');
  return {
    id: read.id,
    paymentId: refund.paymentId ?? null,
    status: read.required(refund.status, 'status'),
    amountMinor: read.minorUnits(refund.amountMoney?.amount, 'amount_money.amount'),
    currency: read.required(refund.amountMoney?.currency, 'amount_money.currency'),
    createdAt: read.required(refund.createdAt, 'created_at'),
    updatedAt: read.required(refund.updatedAt, 'updated_at'),
    locationId: refund.locationId ?? null,
  };
}

/**
 * The SDK parses every amount into a `bigint`. A `number` is exact only up to 2^53 − 1, so anything larger (or
 * negative, or missing) is refused rather than rounded.
 */
function minorUnits(amount: bigint | number | null | undefined, field: string, operation: SquareOperation): number {
  if (amount === null || amount === undefined) return invalidResponse(operation, `${field} is missing`);
  const inRange =
    typeof amount === 'bigint'
      ? amount >= 0n && amount <= BigInt(Number.MAX_SAFE_INTEGER)
      : Number.isSafeInteger(amount) && amount >= 0;
  if (!inRange) {
    return invalidResponse(operation, `${field} is ${String(amount)}: not a whole amount between 0 and ${Number.MAX_SAFE_INTEGER}`);
  }
  return Number(amount);
}

function required<T>(value: T | null | undefined, field: string, operation: SquareOperation): T {
  if (value === null || value === undefined || value === '') return invalidResponse(operation, `${field} is missing`);
  return value;
}

function invalidResponse(operation: SquareOperation, detail: string): never {
  throw new SquareApiError({ code: 'INVALID_RESPONSE', operation, detail });
}

/**
 * Square's code for a status when the body carried none we can use (an HTML error page, a v1-style body). A 401
 * is `HTTP_401`, not Square's `UNAUTHORIZED`: a proxy's page proves nothing about the merchant's token, and
 * `UNAUTHORIZED` (Square's own JSON answer to a bad token) turns the connection `needs_reconnect`.
 */
function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BAD_REQUEST';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 408:
      return 'REQUEST_TIMEOUT';
    case 429:
      return 'RATE_LIMITED';
    case 502:
      return 'BAD_GATEWAY';
    case 503:
      return 'SERVICE_UNAVAILABLE';
    case 504:
      return 'GATEWAY_TIMEOUT';
    default:
      return status >= 500 ? 'INTERNAL_SERVER_ERROR' : `HTTP_${status}`;
  }
}

const OAUTH_OPERATIONS = new Set<SquareOperation>(['oauth.exchangeCode', 'oauth.refresh', 'oauth.revoke']);

/**
 * What a 401 from Square's OAuth endpoints is about. They answer in the v1 shape, `{"message", "type":
 * "service.not_authorized"}` for both causes, and only the message tells them apart: `Not Authorized` when the
 * app's client_id/client_secret are wrong (a rotated or mistyped secret), a message naming the grant when the app
 * is fine and the grant is not (`Invalid refresh token` for a revoked one; `Authorization code not found for app
 * …` on an exchange). Anything else, an HTML page from a proxy included, stays a plain `HTTP_401`: no proof of
 * either.
 */
function oauthRefusal(operation: SquareOperation, status: number, detail: string | undefined): string | undefined {
  if (status !== 401 || !OAUTH_OPERATIONS.has(operation) || !detail) return undefined;
  if (/^\s*not authorized\.?\s*$/i.test(detail)) return 'APP_CREDENTIALS_REJECTED';
  if (operation === 'oauth.refresh' && /refresh[ _]token/i.test(detail)) return 'REFRESH_TOKEN_REJECTED';
  return undefined;
}

/** `Retry-After` is either whole seconds or an HTTP date. */
function retryAfterSeconds(header: string | null | undefined): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function toSquareApiError(error: unknown, operation: SquareOperation): unknown {
  if (error instanceof SquareApiError) return error;
  // Not loaded: the error cannot be the SDK's (loading it failed, or nothing was sent).
  if (!sdk) return error;
  const { SquareError, SquareTimeoutError } = sdk;
  // On Node's fetch the SDK's timeout aborts with the bare string "timeout" as reason, which fetch rethrows
  // as-is: it then surfaces as a plain SquareError whose cause is that string, never as SquareTimeoutError.
  if (error instanceof SquareTimeoutError || (error instanceof SquareError && error.cause === 'timeout')) {
    return new SquareApiError({ code: 'TIMEOUT', operation, detail: 'Square did not answer in time', cause: error });
  }
  if (!(error instanceof SquareError)) return error;

  const status = error.statusCode;
  if (status === undefined) {
    // Without a cause it is the SDK refusing to send (a configuration error of ours): not Square's doing.
    if (error.cause === undefined) return error;
    // No HTTP answer at all: fetch failed (refused, reset, DNS). The cause holds the reason.
    // Node's fetch throws `TypeError: fetch failed` and puts the socket error (ECONNRESET…) in its own cause.
    const fetchError = error.cause instanceof Error ? error.cause : undefined;
    const reason = fetchError?.cause instanceof Error ? fetchError.cause.message : (fetchError?.message ?? error.message);
    return new SquareApiError({ code: 'NETWORK', operation, detail: `could not reach Square: ${reason}`, cause: error });
  }
  // A body without Square's `errors` array (an HTML page from a proxy, a v1-style OAuth body) gets the SDK's
  // placeholder code or a v1 `type`: name the error after the status instead, and keep what it said as detail.
  const first = error.errors[0];
  const usable = first && first.category !== 'V1_ERROR' && first.code !== 'Unknown';
  const detail = first?.detail ?? (typeof error.body === 'string' && error.body ? error.body.slice(0, 200) : `HTTP ${status}`);
  return new SquareApiError({
    code: oauthRefusal(operation, status, first?.detail) ?? (usable ? first.code : codeForStatus(status)),
    operation,
    statusCode: status,
    retryAfterSeconds: retryAfterSeconds(error.rawResponse?.headers.get('retry-after')),
    detail,
    cause: error,
  });
}
