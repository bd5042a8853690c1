/**
 * The Square port: what the core needs from Square, in our own plain types. `adapters/square/client.ts`
 * implements it with the `square` SDK; nothing else may import that SDK.
 *
 * Conventions: fields are camelCase; money is an integer `number` of minor units (cents) with its ISO 4217
 * currency beside it; timestamps are the ISO 8601 strings Square sent, unchanged (Square may send up to
 * nanosecond precision, so compare them through `Date` only after truncating, or as given).
 */

export type SquareEnvironmentName = 'sandbox' | 'production';

/**
 * Scopes this service asks for. `ORDERS_READ` and `ITEMS_READ` (issue 19) read a payment's order and the catalog
 * for item, category, before-tax and exclusion rules; a connection made before without them keeps working with
 * payment-only rules (`ORDER_SCOPES` says what it lacks).
 */
export const SQUARE_SCOPES = ['PAYMENTS_READ', 'CUSTOMERS_READ', 'MERCHANT_PROFILE_READ', 'ORDERS_READ', 'ITEMS_READ'] as const;

/** What reading orders and their items' categories needs. */
export const ORDER_SCOPES = ['ORDERS_READ', 'ITEMS_READ'] as const;

/** What the OAuth token endpoint gives for a merchant. Code-flow refresh tokens do not expire. */
export interface SquareTokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires (about 30 days after issue), ISO 8601. Refresh at least every 7 days. */
  expiresAt: string;
  merchantId: string;
}

export interface AuthorizeUrlOptions {
  /** CSRF token echoed back on the callback; the caller stores it and compares. */
  state: string;
  /** Must match a redirect URL registered for the app; omitted, Square uses the app's default. */
  redirectUri?: string;
  scopes: readonly string[];
}

/** App-level OAuth calls, authenticated with the app's id and secret (not with a merchant's token). */
export interface SquareOAuth {
  /**
   * The URL to send the merchant to. Pure: no request is made. `session=false` makes Square ask the merchant to
   * log in even with a browser session, so they pick the right account.
   */
  authorizeUrl(options: AuthorizeUrlOptions): string;
  /** Exchanges the callback's `code` (single-use, valid 5 minutes). `redirectUri` must repeat the authorize one if it was given. */
  exchangeCode(code: string, options?: { redirectUri?: string }): Promise<SquareTokens>;
  /** A new access token; the refresh token comes back unchanged for the code flow. */
  refresh(refreshToken: string): Promise<SquareTokens>;
  /** Revokes every token this app holds for the merchant (`Authorization: Client <secret>`). */
  revoke(merchantId: string): Promise<void>;
}

export interface SquareMerchant {
  merchantId: string;
  businessName: string | null;
  mainLocationId: string | null;
  /** ISO 3166-1 alpha-2, e.g. `US`. */
  country: string;
  /** ISO 4217, e.g. `USD`. */
  currency: string;
}

export interface SquareLocation {
  id: string;
  name: string | null;
  /** `ACTIVE` or `INACTIVE`. */
  status: string;
  /** IANA time zone of the location, e.g. `America/Los_Angeles` (promotion windows are read in the main location's). */
  timezone: string | null;
}

export interface SquareCustomer {
  id: string;
  emailAddress: string | null;
  /** As the merchant typed it, not normalised: `+12126668929` and `+1-212-555-4240` both occur. */
  phoneNumber: string | null;
}

/**
 * A payment. Square sends it several times as it changes (`payment.updated`); credit once per `id`, on
 * `status === 'COMPLETED'` (`APPROVED`, `PENDING`, `CANCELED`, `FAILED` are the others).
 */
export interface SquarePayment {
  id: string;
  status: string;
  /** The amount before the tip (`amount_money`). */
  amountMinor: number;
  /** The tip (`tip_money`); 0 when there is none. */
  tipMinor: number;
  /** Amount plus tip (`total_money`). A rule should say which of the two it counts. */
  totalMinor: number;
  currency: string;
  customerId: string | null;
  /** `buyer_email_address`: given at checkout (Square Online, invoices), often without a customer. */
  buyerEmail: string | null;
  locationId: string;
  /** The order this payment is a tender of: one order may be paid with several payments (gift card + card). */
  orderId: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A refund. Usually created `PENDING`; act on `COMPLETED` (`REJECTED` and `FAILED` are the others). Key by `id`. */
export interface SquareRefund {
  id: string;
  /** The refunded payment; null for an unlinked refund (money returned without a payment). */
  paymentId: string | null;
  status: string;
  amountMinor: number;
  currency: string;
  createdAt: string;
  updatedAt: string;
  locationId: string | null;
}

/** One line of a Square order (`OrderLineItem`). Money in minor units. */
export interface SquareOrderLine {
  uid: string;
  name: string | null;
  /** `catalog_object_id`: the item variation sold; null for an ad hoc amount and for a gift card (Square sends none). */
  catalogObjectId: string | null;
  /** `item_type`: `ITEM`, `CUSTOM_AMOUNT` or `GIFT_CARD` (a gift card sold or loaded); null when Square left it out (an item). */
  itemType: string | null;
  /** Square's decimal string: `"2"`, `"1.5"`. */
  quantity: string;
  /** `total_money`: after the line's discounts, tax included. */
  totalMinor: number;
  totalTaxMinor: number;
  totalDiscountMinor: number;
}

/** A Square order (`GET /v2/orders/{id}`), as rules read it. */
export interface SquareOrder {
  id: string;
  locationId: string;
  state: string | null;
  lineItems: SquareOrderLine[];
  /** `total_money`: lines, service charges and tip. */
  totalMinor: number;
  totalTaxMinor: number;
  totalTipMinor: number;
  totalDiscountMinor: number;
  currency: string | null;
}

/** A catalog object as rules read it: a variation names its item, an item its categories. */
export type SquareCatalogObject =
  | { type: 'ITEM_VARIATION'; id: string; itemId: string | null; name: string | null }
  | { type: 'ITEM'; id: string; categoryIds: string[]; name: string | null }
  | { type: 'CATEGORY'; id: string; name: string | null }
  | { type: 'OTHER'; id: string; squareType: string };

export interface ListPaymentsQuery {
  /** Required: Square lists only the main location's payments without it. Iterate `listLocations()`. */
  locationId: string;
  /** Inclusive lower bound on `updated_at`, ISO 8601; the results come oldest update first. */
  updatedAtBeginTime?: string;
  /** Page size (Square's maximum is 100); pages are fetched as the caller iterates. */
  limit?: number;
}

export interface ListRefundsQuery {
  /** Inclusive lower bound on `updated_at`, ISO 8601; the results come oldest update first. */
  updatedAtBeginTime?: string;
  /** Inclusive lower bound on `created_at`, ISO 8601. */
  beginTime?: string;
  /** Omitted, refunds of every location are listed. */
  locationId?: string;
  limit?: number;
}

/** Square's bound on the ids of one `getCustomers` (`POST /v2/customers/bulk-retrieve`). */
export const MAX_BULK_CUSTOMERS = 100;

/**
 * Square's API on behalf of one merchant (one access token). The lists are lazy: pages are requested as the
 * caller iterates, and a failure on a later page is thrown from the iteration, so checkpoint per item
 * (`updatedAt`) and resume from there.
 */
export interface SquareApi {
  getMerchant(): Promise<SquareMerchant>;
  listLocations(): Promise<SquareLocation[]>;
  /** Null when Square does not know the customer (deleted, or from another merchant). */
  getCustomer(customerId: string): Promise<SquareCustomer | null>;
  /**
   * Several customers in one call (`POST /v2/customers/bulk-retrieve`, 1 to 100 ids): each id's answer, null where
   * Square does not know the customer, a `SquareApiError` where Square refused that id alone. A failure of the whole
   * call (no answer, the token refused) rejects.
   */
  getCustomers(customerIds: readonly string[]): Promise<Map<string, SquareCustomer | null | SquareApiError>>;
  listPayments(query: ListPaymentsQuery): AsyncIterable<SquarePayment>;
  listRefunds(query?: ListRefundsQuery): AsyncIterable<SquareRefund>;
  /** The scopes this access token was granted (`POST /oauth2/token/status`). */
  grantedScopes(): Promise<string[]>;
  /** Null when Square does not know the payment (or it is another merchant's). */
  getPayment(paymentId: string): Promise<SquarePayment | null>;
  /** Null when Square does not know the order. Needs `ORDERS_READ`. */
  getOrder(orderId: string): Promise<SquareOrder | null>;
  /**
   * The catalog objects with these ids (at most 1000), and with `includeRelated` the objects they refer to (a
   * variation's item). Unknown ids are left out, and so are deleted objects unless `includeDeleted` (what a sale
   * made before the deletion sold still has its item and categories). Needs `ITEMS_READ`.
   */
  getCatalogObjects(ids: readonly string[], options?: { includeRelated?: boolean; includeDeleted?: boolean }): Promise<SquareCatalogObject[]>;
}

/** The whole port: the app's OAuth calls, and an API client per merchant access token. */
export interface SquareGateway {
  readonly oauth: SquareOAuth;
  forAccessToken(accessToken: string): SquareApi;
}

/** The call that failed; decides what an error means (see `SquareApiError.needsReconnect`). */
export type SquareOperation =
  | 'oauth.exchangeCode'
  | 'oauth.refresh'
  | 'oauth.revoke'
  | 'merchants.get'
  | 'locations.list'
  | 'customers.get'
  | 'customers.bulkRetrieve'
  | 'payments.list'
  | 'refunds.list'
  | 'oauth.tokenStatus'
  | 'payments.get'
  | 'orders.get'
  | 'catalog.batchGet';

/**
 * Square's error codes that callers act on, plus ours: `TIMEOUT` (no answer in time), `NETWORK` (no
 * connection), `INVALID_RESPONSE` (an answer missing a field we rely on, or an amount beyond 2^53 − 1), and two
 * that name what Square's OAuth endpoints say in words rather than codes: `APP_CREDENTIALS_REJECTED` (the app's
 * `client_id`/`client_secret` were refused: our configuration) and `REFRESH_TOKEN_REJECTED` (the refresh token is
 * revoked or unknown: the merchant's grant is gone). An answer without Square's error body is named after its
 * status: `HTTP_401` is a 401 that is not Square's (a proxy's HTML page) and proves nothing about the grant. Any
 * other Square code passes through as a string.
 */
export type SquareErrorCode =
  | 'UNAUTHORIZED'
  | 'ACCESS_TOKEN_EXPIRED'
  | 'ACCESS_TOKEN_REVOKED'
  | 'INSUFFICIENT_SCOPES'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_REQUEST'
  | 'RATE_LIMITED'
  | 'INTERNAL_SERVER_ERROR'
  | 'SERVICE_UNAVAILABLE'
  | 'TIMEOUT'
  | 'NETWORK'
  | 'INVALID_RESPONSE'
  | 'APP_CREDENTIALS_REJECTED'
  | 'REFRESH_TOKEN_REJECTED'
  | 'HTTP_401'
  | (string & {});

/** Square's own answers (its JSON error body) that the grant is gone or too narrow; never `HTTP_401` (see above). */
const MERCHANT_AUTH_GONE = new Set(['UNAUTHORIZED', 'ACCESS_TOKEN_REVOKED', 'INSUFFICIENT_SCOPES']);
/** These authenticate with the app's credentials alone: an auth failure there is our configuration, not the merchant's. */
const APP_CREDENTIAL_OPERATIONS = new Set<SquareOperation>(['oauth.exchangeCode', 'oauth.revoke']);
/**
 * A refresh sends the app's credentials *and* the merchant's refresh token, so a bare 401 may be either's fault.
 * Only these say the grant is gone; anything else (a wrong secret, a proxy's HTML 401) leaves the connection alone.
 */
const GRANT_GONE_AT_REFRESH = new Set(['REFRESH_TOKEN_REJECTED', 'ACCESS_TOKEN_REVOKED', 'ACCESS_TOKEN_EXPIRED']);

/** A Square call failed. `code` is Square's first error code (or one of ours, see `SquareErrorCode`). */
export class SquareApiError extends Error {
  readonly code: SquareErrorCode;
  readonly operation: SquareOperation;
  /** HTTP status; undefined when no answer came (`TIMEOUT`, `NETWORK`) or for `INVALID_RESPONSE`. */
  readonly statusCode: number | undefined;
  /** From `Retry-After` on a 429 or 503: wait at least this long before calling again. */
  readonly retryAfterSeconds: number | undefined;
  /** Square's explanation (its `detail`), or ours. Never contains a token or secret. */
  readonly detail: string;

  constructor(init: {
    code: SquareErrorCode;
    operation: SquareOperation;
    statusCode?: number;
    retryAfterSeconds?: number;
    detail: string;
    cause?: unknown;
  }) {
    const status = init.statusCode === undefined ? '' : ` (HTTP ${init.statusCode})`;
    super(`Square ${init.operation} failed: ${init.code}${status}: ${init.detail}`, { cause: init.cause });
    this.name = 'SquareApiError';
    this.code = init.code;
    this.operation = init.operation;
    this.statusCode = init.statusCode;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.detail = init.detail;
  }

  /**
   * The merchant's authorization is gone or too narrow: stop using its tokens and ask the merchant to connect
   * again. For calls with the merchant's access token: `ACCESS_TOKEN_REVOKED`, `UNAUTHORIZED` and
   * `INSUFFICIENT_SCOPES`, in Square's JSON error body (a 401 without it, `HTTP_401`, is a proxy's page: the call
   * failed, the grant may be fine). For the refresh: only Square saying the refresh token is dead
   * (`REFRESH_TOKEN_REJECTED`, `ACCESS_TOKEN_REVOKED`, `ACCESS_TOKEN_EXPIRED`); a 401 naming neither is no proof, and
   * `APP_CREDENTIALS_REJECTED` is our configuration. Never for the code exchange or revoke (the app's credentials).
   */
  get needsReconnect(): boolean {
    if (this.appCredentialsRejected || APP_CREDENTIAL_OPERATIONS.has(this.operation)) return false;
    if (this.operation === 'oauth.refresh') return GRANT_GONE_AT_REFRESH.has(this.code);
    return MERCHANT_AUTH_GONE.has(this.code);
  }

  /** Square refused the app's own `client_id`/`client_secret`: fix SQUARE_APP_ID / SQUARE_APP_SECRET; no merchant is at fault. */
  get appCredentialsRejected(): boolean {
    return this.code === 'APP_CREDENTIALS_REJECTED';
  }

  /** The access token expired: refresh it, then repeat the call. */
  get needsRefresh(): boolean {
    return this.code === 'ACCESS_TOKEN_EXPIRED' && this.operation !== 'oauth.refresh';
  }

  /** Worth repeating later (after `retryAfterSeconds` when given): 408, 429, 5xx, a timeout or no connection. */
  get retryable(): boolean {
    if (this.code === 'TIMEOUT' || this.code === 'NETWORK') return true;
    const status = this.statusCode;
    return status !== undefined && (status === 408 || status === 429 || status >= 500);
  }
}
