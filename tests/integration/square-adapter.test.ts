/**
 * The Square adapter through the real `square` SDK against the local Square server (tests/support/square-server.ts):
 * OAuth, reads, pagination, and how Square's failures reach the core as `SquareApiError`.
 * Each test gets its own server, so scripted state and injected faults stay within the test.
 */
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSquareGateway, SQUARE_HOSTS, type SquareAdapterConfig } from '../../adapters/square/client.ts';
import { SQUARE_SCOPES, SquareApiError, type SquarePayment } from '../../domain/ports/square.ts';
import { startSquareServer, type SquareTestServer } from '../support/square-server.ts';

const MERCHANT = 'MLQW2MYBY81PZ';

async function setup(t: ExecutionContext, config: Partial<SquareAdapterConfig> = {}, latencyMs?: (method: string, path: string) => number) {
  const server = await startSquareServer(latencyMs ? { latencyMs } : {});
  t.teardown(() => server.stop());
  server.addMerchant({
    merchantId: MERCHANT,
    businessName: 'Apple A Day',
    locations: [
      { id: 'L-MAIN', name: 'Main Street' },
      { id: 'L-PIER', name: 'Pier Kiosk' },
      { id: 'L-OLD', name: 'Closed Shop', status: 'INACTIVE' },
    ],
  });
  const square = createSquareGateway({
    appId: server.appId,
    appSecret: server.appSecret,
    environment: 'production',
    baseUrl: server.url,
    // Shorter than the adapter's 30 s: when fetch rejects, the SDK leaves its timeout's timer running
    // (square/core/fetcher/makeRequest.js clears it only after an answer), which kept this file's process alive for
    // 30 s after its last test. The local server answers in milliseconds.
    timeoutSeconds: 5,
    ...config,
  });
  const api = (accessToken = server.issueAccessToken(MERCHANT)) => square.forAccessToken(accessToken);
  return { server, square, api };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function squareError(t: ExecutionContext, promise: Promise<unknown>): Promise<SquareApiError> {
  const error = await t.throwsAsync(promise, { instanceOf: SquareApiError });
  return error!;
}

const requestsTo = (server: SquareTestServer, path: string) => server.requests.filter((r) => r.path === path);

// --- OAuth ---------------------------------------------------------------------------------------------------

test('the authorize URL points at sandbox, production or the override, with the app id, scopes and state', (t) => {
  const base = { appId: 'sq0idp-app', appSecret: 'secret' };
  const options = { state: 'csrf-123', redirectUri: 'https://api.example.com/square/callback', scopes: SQUARE_SCOPES };

  const sandbox = new URL(createSquareGateway({ ...base, environment: 'sandbox' }).oauth.authorizeUrl(options));
  t.is(`${sandbox.origin}${sandbox.pathname}`, 'https://connect.squareupsandbox.com/oauth2/authorize');
  t.deepEqual(Object.fromEntries(sandbox.searchParams), {
    client_id: 'sq0idp-app',
    scope: 'PAYMENTS_READ CUSTOMERS_READ MERCHANT_PROFILE_READ ORDERS_READ ITEMS_READ',
    session: 'false',
    state: 'csrf-123',
    redirect_uri: 'https://api.example.com/square/callback',
  });

  const production = new URL(createSquareGateway({ ...base, environment: 'production' }).oauth.authorizeUrl(options));
  t.is(`${production.origin}${production.pathname}`, 'https://connect.squareup.com/oauth2/authorize');

  const override = createSquareGateway({ ...base, environment: 'production', baseUrl: 'http://127.0.0.1:4010/' }).oauth;
  const local = new URL(override.authorizeUrl({ state: 's', scopes: ['PAYMENTS_READ'] }));
  t.is(`${local.origin}${local.pathname}`, 'http://127.0.0.1:4010/oauth2/authorize');
  t.false(local.searchParams.has('redirect_uri'), 'no redirect_uri unless given');
});

test('the hosts known before the SDK is loaded are the SDK\'s own environments', async (t) => {
  const { SquareEnvironment } = await import('square');
  t.deepEqual(SQUARE_HOSTS, { production: SquareEnvironment.Production, sandbox: SquareEnvironment.Sandbox });
});

test('the SDK is loaded on the first call to Square, not with the adapter', async (t) => {
  const { server } = await setup(t);
  // A process of its own: this one may have loaded the SDK already.
  const script = `
    const { createSquareGateway } = await import(${JSON.stringify(pathToFileURL(path.resolve('.build/adapters/square/client.js')).href)});
    const loaded = () => Object.keys(require.cache).some((file) => file.includes('/node_modules/square/'));
    const gateway = createSquareGateway({ appId: 'a', appSecret: 's', environment: 'sandbox', baseUrl: process.argv[1] });
    gateway.oauth.authorizeUrl({ state: 's', scopes: ['PAYMENTS_READ'] });
    gateway.forAccessToken('t');
    const before = loaded();
    await gateway.forAccessToken('t').getMerchant().catch(() => undefined); // refused: not a token the server issued
    console.log(JSON.stringify({ before, after: loaded() }));`;
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) =>
    // The compiled adapter (tests/run.ts compiles the tree with the tests): no TypeScript loader to start.
    execFile(process.execPath, ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); ${script}`, server.url], (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    ),
  );
  t.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { before: false, after: true });
});

test('a code is exchanged once for tokens that work; the request carries the app credentials', async (t) => {
  const { server, square } = await setup(t);
  const code = server.issueCode(MERCHANT);
  const tokens = await square.oauth.exchangeCode(code);

  t.is(tokens.merchantId, MERCHANT);
  t.regex(tokens.accessToken, /^EAAA/);
  t.regex(tokens.refreshToken, /^EQAA/);
  const daysLeft = (Date.parse(tokens.expiresAt) - Date.now()) / 86_400_000;
  t.true(daysLeft > 29 && daysLeft <= 30, `expires in ${daysLeft} days`);
  t.like(requestsTo(server, '/oauth2/token')[0]?.body, {
    client_id: server.appId,
    client_secret: server.appSecret,
    code,
    grant_type: 'authorization_code',
  });
  t.is((await square.forAccessToken(tokens.accessToken).getMerchant()).merchantId, MERCHANT);

  const reused = await squareError(t, square.oauth.exchangeCode(code));
  t.like(reused, { code: 'BAD_REQUEST', statusCode: 400, operation: 'oauth.exchangeCode', retryable: false, needsReconnect: false });
  t.regex(reused.detail, /already redeemed/);
});

test('the redirect URI given to authorize must be repeated on the exchange', async (t) => {
  const { server, square } = await setup(t);
  const redirectUri = 'https://api.example.com/square/callback';
  const code = server.issueCode(MERCHANT, { redirectUri });
  t.like(await squareError(t, square.oauth.exchangeCode(code)), { code: 'BAD_REQUEST' });
  t.is((await square.oauth.exchangeCode(code, { redirectUri })).merchantId, MERCHANT);
});

test('a wrong app secret is a 401 that blames our configuration, not the merchant', async (t) => {
  const { server } = await setup(t);
  const misconfigured = createSquareGateway({ appId: server.appId, appSecret: 'sq0csp-wrong', environment: 'sandbox', baseUrl: server.url });
  const error = await squareError(t, misconfigured.oauth.exchangeCode(server.issueCode(MERCHANT)));
  t.like(error, { code: 'APP_CREDENTIALS_REJECTED', statusCode: 401, needsReconnect: false, retryable: false, appCredentialsRejected: true });
  t.false(error.message.includes('sq0csp-wrong'), 'the secret never reaches the message');
});

test('a refresh Square refuses for the app secret blames our configuration; for a revoked grant, the merchant; an HTML 401 proves neither', async (t) => {
  const { server, square } = await setup(t);
  const tokens = await square.oauth.exchangeCode(server.issueCode(MERCHANT));

  // The secret rotated in the Developer Dashboard, the deployment still sends the old one.
  const stale = createSquareGateway({ appId: server.appId, appSecret: 'sq0csp-rotated-away', environment: 'sandbox', baseUrl: server.url });
  const wrongSecret = await squareError(t, stale.oauth.refresh(tokens.refreshToken));
  t.like(wrongSecret, { code: 'APP_CREDENTIALS_REJECTED', statusCode: 401, operation: 'oauth.refresh', needsReconnect: false, appCredentialsRejected: true });
  t.deepEqual(server.requests.filter((r) => r.path === '/oauth2/token').at(-1)?.body, {
    client_id: server.appId,
    client_secret: 'sq0csp-rotated-away',
    grant_type: 'refresh_token',
    refresh_token: tokens.refreshToken,
  });

  server.failNext('/oauth2/token', { status: 401, html: '<html><body>401 Authorization Required</body></html>' });
  const proxy = await squareError(t, square.oauth.refresh(tokens.refreshToken));
  t.like(proxy, { code: 'HTTP_401', statusCode: 401, needsReconnect: false, appCredentialsRejected: false });

  t.is((await square.oauth.refresh(tokens.refreshToken)).merchantId, MERCHANT, 'the grant was never at fault');

  server.revokeTokensOf(MERCHANT);
  const revoked = await squareError(t, square.oauth.refresh(tokens.refreshToken));
  t.like(revoked, { code: 'REFRESH_TOKEN_REJECTED', statusCode: 401, needsReconnect: true, appCredentialsRejected: false });
});

test('refresh returns a new access token and the same refresh token', async (t) => {
  const { server, square } = await setup(t);
  const first = await square.oauth.exchangeCode(server.issueCode(MERCHANT));
  const refreshed = await square.oauth.refresh(first.refreshToken);
  t.is(refreshed.refreshToken, first.refreshToken);
  t.not(refreshed.accessToken, first.accessToken);
  t.is(refreshed.merchantId, MERCHANT);
  t.like(requestsTo(server, '/oauth2/token')[1]?.body, { grant_type: 'refresh_token', refresh_token: first.refreshToken });
  t.is((await square.forAccessToken(refreshed.accessToken).getMerchant()).merchantId, MERCHANT);
});

test('an expired access token asks for a refresh, not a reconnect', async (t) => {
  const { server, square } = await setup(t);
  const tokens = await square.oauth.exchangeCode(server.issueCode(MERCHANT));
  server.expireTokensOf(MERCHANT);
  const error = await squareError(t, square.forAccessToken(tokens.accessToken).listLocations());
  t.like(error, { code: 'ACCESS_TOKEN_EXPIRED', statusCode: 401, needsRefresh: true, needsReconnect: false });
  const refreshed = await square.oauth.refresh(tokens.refreshToken);
  t.is((await square.forAccessToken(refreshed.accessToken).listLocations()).length, 3);
});

test('revoke sends Authorization: Client <secret>; afterwards the tokens need a reconnect', async (t) => {
  const { server, square } = await setup(t);
  const tokens = await square.oauth.exchangeCode(server.issueCode(MERCHANT));
  await square.oauth.revoke(MERCHANT);

  const [revoke] = requestsTo(server, '/oauth2/revoke');
  t.is(revoke?.authorization, `Client ${server.appSecret}`);
  t.deepEqual(revoke?.body, { client_id: server.appId, merchant_id: MERCHANT });

  const call = await squareError(t, square.forAccessToken(tokens.accessToken).getMerchant());
  t.like(call, { code: 'ACCESS_TOKEN_REVOKED', statusCode: 401, needsReconnect: true, retryable: false });
  const refresh = await squareError(t, square.oauth.refresh(tokens.refreshToken));
  t.like(refresh, { code: 'REFRESH_TOKEN_REJECTED', operation: 'oauth.refresh', needsReconnect: true });
});

test('a token the merchant revoked in Square is reported as needing a reconnect', async (t) => {
  const { server, api } = await setup(t);
  const merchant = api();
  server.revokeTokensOf(MERCHANT);
  t.like(await squareError(t, collect(merchant.listPayments({ locationId: 'L-MAIN' }))), {
    code: 'ACCESS_TOKEN_REVOKED',
    operation: 'payments.list',
    needsReconnect: true,
  });
  t.like(await squareError(t, api('EAAA-never-issued').getMerchant()), { code: 'UNAUTHORIZED', needsReconnect: true });
});

test('a 401 without Square’s error body (a proxy’s HTML page) on a merchant call is HTTP_401: no proof the grant is gone', async (t) => {
  const { server, api } = await setup(t);
  server.failNext('/v2/locations', { status: 401, html: '<html><body>401 Authorization Required</body></html>' });
  t.like(await squareError(t, api().listLocations()), { code: 'HTTP_401', statusCode: 401, operation: 'locations.list', needsReconnect: false });
  t.true((await api().listLocations()).length > 0, 'the grant was never at fault');
});

test('a token without a scope we need is reported as needing a reconnect', async (t) => {
  const { server, api } = await setup(t);
  const merchant = api(server.issueAccessToken(MERCHANT, { scopes: ['MERCHANT_PROFILE_READ', 'PAYMENTS_READ'] }));
  t.like(await squareError(t, merchant.getCustomer('C1')), { code: 'INSUFFICIENT_SCOPES', statusCode: 403, needsReconnect: true });
});

// --- Reads -----------------------------------------------------------------------------------------------------

test('the merchant profile and its locations', async (t) => {
  const { api } = await setup(t);
  const merchant = api();
  t.deepEqual(await merchant.getMerchant(), {
    merchantId: MERCHANT,
    businessName: 'Apple A Day',
    mainLocationId: 'L-MAIN',
    country: 'US',
    currency: 'USD',
  });
  t.deepEqual(await merchant.listLocations(), [
    // Square's Location carries an IANA time zone (promotion windows are read in the main location's).
    { id: 'L-MAIN', name: 'Main Street', status: 'ACTIVE', timezone: 'America/New_York' },
    { id: 'L-PIER', name: 'Pier Kiosk', status: 'ACTIVE', timezone: 'America/New_York' },
    { id: 'L-OLD', name: 'Closed Shop', status: 'INACTIVE', timezone: 'America/New_York' },
  ]);
});

test('a customer is found with contact details as typed, or is null when Square does not know it', async (t) => {
  const { server, api } = await setup(t);
  server.addCustomer(MERCHANT, { id: 'JDKYHBWT1D4F8MFH63DBMEN8Y4', email: 'Amelia.Earhart@example.com', phone: '+1-212-555-4240' });
  server.addCustomer(MERCHANT, { id: 'NO-CONTACT' });
  const merchant = api();
  t.deepEqual(await merchant.getCustomer('JDKYHBWT1D4F8MFH63DBMEN8Y4'), {
    id: 'JDKYHBWT1D4F8MFH63DBMEN8Y4',
    emailAddress: 'Amelia.Earhart@example.com',
    phoneNumber: '+1-212-555-4240',
  });
  t.deepEqual(await merchant.getCustomer('NO-CONTACT'), { id: 'NO-CONTACT', emailAddress: null, phoneNumber: null });
  t.is(await merchant.getCustomer('GONE'), null);
});

test('customers in bulk: one POST /v2/customers/bulk-retrieve, each id answered (found, without contacts, unknown); 1 to 100 ids', async (t) => {
  const { server, api } = await setup(t);
  server.addCustomer(MERCHANT, { id: 'JDKYHBWT1D4F8MFH63DBMEN8Y4', email: 'Amelia.Earhart@example.com', phone: '+1-212-555-4240' });
  server.addCustomer(MERCHANT, { id: 'NO-CONTACT' });
  const merchant = api();
  const before = server.requests.length;
  const answers = await merchant.getCustomers(['JDKYHBWT1D4F8MFH63DBMEN8Y4', 'NO-CONTACT', 'GONE', 'NO-CONTACT']);
  t.deepEqual(
    [...answers],
    [
      ['JDKYHBWT1D4F8MFH63DBMEN8Y4', { id: 'JDKYHBWT1D4F8MFH63DBMEN8Y4', emailAddress: 'Amelia.Earhart@example.com', phoneNumber: '+1-212-555-4240' }],
      ['NO-CONTACT', { id: 'NO-CONTACT', emailAddress: null, phoneNumber: null }],
      ['GONE', null],
    ],
  );
  t.deepEqual(
    server.requests.slice(before).map((r) => [r.method, r.path, r.body]),
    [['POST', '/v2/customers/bulk-retrieve', { customer_ids: ['JDKYHBWT1D4F8MFH63DBMEN8Y4', 'NO-CONTACT', 'GONE', 'NO-CONTACT'] }]],
  );
  await t.throwsAsync(merchant.getCustomers([]), { instanceOf: RangeError });
  await t.throwsAsync(merchant.getCustomers(Array.from({ length: 101 }, (_, i) => `C${i}`)), { instanceOf: RangeError });
  t.is((await merchant.getCustomers(Array.from({ length: 100 }, (_, i) => `C${i}`))).size, 100);
});

test('the simulator answers after the latency it is given, per request (the ingestion benchmark holds customer look-ups so)', async (t) => {
  const delays: string[] = [];
  const { server, api } = await setup(t, {}, (method, path) => (delays.push(`${method} ${path}`), path.startsWith('/v2/customers') ? 150 : 0));
  server.addCustomer(MERCHANT, { id: 'C1', email: 'c1@example.com' });
  const merchant = api();
  const started = performance.now();
  t.like((await merchant.getCustomers(['C1'])).get('C1'), { emailAddress: 'c1@example.com' });
  t.true(performance.now() - started >= 150, 'held at least the latency given');
  await merchant.getMerchant();
  t.deepEqual(delays, ['POST /v2/customers/bulk-retrieve', 'GET /v2/merchants/me'], 'asked once per request, with its method and path');
});

test('customers in bulk fail as a whole as every call does: scopes, status and Retry-After', async (t) => {
  const { server, api } = await setup(t);
  const narrow = api(server.issueAccessToken(MERCHANT, { scopes: ['MERCHANT_PROFILE_READ', 'PAYMENTS_READ'] }));
  t.like(await squareError(t, narrow.getCustomers(['C1'])), { code: 'INSUFFICIENT_SCOPES', statusCode: 403, needsReconnect: true, operation: 'customers.bulkRetrieve' });
  server.failNext('/v2/customers/bulk-retrieve', { status: 429, retryAfter: 2 });
  t.like(await squareError(t, api().getCustomers(['C1'])), { code: 'RATE_LIMITED', statusCode: 429, retryAfterSeconds: 2, retryable: true, operation: 'customers.bulkRetrieve' });
});

test('payments are paged with cursors per location, oldest update first, from the updated_at filter on', async (t) => {
  const { server, api } = await setup(t);
  const at = (minute: number) => new Date(Date.UTC(2025, 0, 10, 12, minute)).toISOString();
  // Added out of order; created long before some were updated.
  for (const [id, updated] of [['P5', 50], ['P1', 10], ['P3', 30], ['P0', 0], ['P4', 40], ['P2', 20]] as const) {
    server.addPayment(MERCHANT, { id, locationId: 'L-MAIN', amount: 1000 + updated, createdAt: at(0), updatedAt: at(updated) });
  }
  server.addPayment(MERCHANT, {
    id: 'PIER-1',
    locationId: 'L-PIER',
    amount: 555,
    tip: 100,
    customerId: 'W92WH6P11H4Z77CTET0RNTGFW8',
    orderId: 'ORDER-1',
    status: 'APPROVED',
    createdAt: at(15),
    updatedAt: at(16),
  });

  const merchant = api();
  const since = at(10);
  const byLocation: Record<string, SquarePayment[]> = {};
  for (const location of await merchant.listLocations()) {
    byLocation[location.id] = await collect(merchant.listPayments({ locationId: location.id, updatedAtBeginTime: since, limit: 2 }));
  }

  t.deepEqual(byLocation['L-MAIN']?.map((p) => p.id), ['P1', 'P2', 'P3', 'P4', 'P5'], 'P0 was updated before the filter');
  t.deepEqual(byLocation['L-PIER'], [
    {
      id: 'PIER-1',
      status: 'APPROVED',
      amountMinor: 555,
      tipMinor: 100,
      totalMinor: 655,
      currency: 'USD',
      customerId: 'W92WH6P11H4Z77CTET0RNTGFW8',
      buyerEmail: null,
      locationId: 'L-PIER',
      orderId: 'ORDER-1',
      createdAt: at(15),
      updatedAt: at(16),
    },
  ]);
  t.deepEqual(byLocation['L-OLD'], []);
  t.like(byLocation['L-MAIN']?.[0], { amountMinor: 1010, tipMinor: 0, totalMinor: 1010, customerId: null, orderId: null });
  t.true(byLocation['L-MAIN']!.every((p) => typeof p.amountMinor === 'number'), 'no bigint leaks out');

  const mainPages = requestsTo(server, '/v2/payments').filter((r) => r.query.location_id === 'L-MAIN');
  t.is(mainPages.length, 3, 'five payments at two a page');
  t.like(mainPages[0]?.query, { sort_field: 'UPDATED_AT', sort_order: 'ASC', updated_at_begin_time: since, limit: '2' });
  t.falsy(mainPages[0]?.query.cursor);
  t.truthy(mainPages[1]?.query.cursor);
  t.like(mainPages[1]?.query, { sort_field: 'UPDATED_AT', updated_at_begin_time: since });
});

test('refunds of every location, oldest update first; an unlinked refund has no payment id', async (t) => {
  const { server, api } = await setup(t);
  server.addRefund(MERCHANT, { id: 'R-OLD', paymentId: 'P1', locationId: 'L-MAIN', amount: 100, createdAt: '2025-01-01T00:00:00Z' });
  server.addRefund(MERCHANT, {
    id: 'R-PIER',
    paymentId: 'PIER-1',
    locationId: 'L-PIER',
    amount: 555,
    status: 'PENDING',
    createdAt: '2025-02-01T00:00:00Z',
    updatedAt: '2025-02-02T00:00:00Z',
  });
  server.addRefund(MERCHANT, { id: 'R-FREE', locationId: 'L-MAIN', amount: 250, createdAt: '2025-02-01T10:00:00Z' });

  const refunds = await collect(api().listRefunds({ updatedAtBeginTime: '2025-01-15T00:00:00Z', limit: 1 }));
  t.deepEqual(refunds, [
    {
      id: 'R-FREE',
      paymentId: null,
      status: 'COMPLETED',
      amountMinor: 250,
      currency: 'USD',
      createdAt: '2025-02-01T10:00:00Z',
      updatedAt: '2025-02-01T10:00:00Z',
      locationId: 'L-MAIN',
    },
    {
      id: 'R-PIER',
      paymentId: 'PIER-1',
      status: 'PENDING',
      amountMinor: 555,
      currency: 'USD',
      createdAt: '2025-02-01T00:00:00Z',
      updatedAt: '2025-02-02T00:00:00Z',
      locationId: 'L-PIER',
    },
  ]);
  t.is(requestsTo(server, '/v2/refunds').length, 2);
  t.deepEqual((await collect(api().listRefunds({ locationId: 'L-MAIN' }))).map((r) => r.id), ['R-OLD', 'R-FREE']);
});

test('catalog objects deleted since are left out unless asked for, then marked as Square marks them', async (t) => {
  const { server, api } = await setup(t);
  server.setCatalog(MERCHANT, {
    categories: [{ id: 'CAT-COFFEE', name: 'Coffee' }],
    items: [{ id: 'ITEM-OLD', name: 'Old blend', categoryIds: ['CAT-COFFEE'], variations: [{ id: 'VAR-OLD', name: 'Cup', priceMinor: 300 }], deleted: true }],
  });
  t.deepEqual(await api().getCatalogObjects(['VAR-OLD'], { includeRelated: true }), []);
  const kept = await api().getCatalogObjects(['VAR-OLD'], { includeRelated: true, includeDeleted: true });
  t.deepEqual(kept.map((o) => o.type === 'ITEM' ? { id: o.id, categoryIds: o.categoryIds } : { id: o.id }), [
    { id: 'VAR-OLD' },
    { id: 'ITEM-OLD', categoryIds: ['CAT-COFFEE'] },
    { id: 'CAT-COFFEE' },
  ]);
  t.like(server.requests.filter((r) => r.path === '/v2/catalog/batch-retrieve').at(-1)?.body, { include_deleted_objects: true });
});

test('an amount beyond 2^53 - 1 is refused rather than rounded', async (t) => {
  const { server, api } = await setup(t);
  server.addPayment(MERCHANT, { id: 'HUGE', locationId: 'L-MAIN', amount: 2n ** 60n, createdAt: '2025-01-01T00:00:00Z' });
  const error = await squareError(t, collect(api().listPayments({ locationId: 'L-MAIN' })));
  t.like(error, { code: 'INVALID_RESPONSE', statusCode: undefined, retryable: false });
  t.regex(error.detail, /payment HUGE: amount_money\.amount is 1152921504606846976/);
});

// --- Failures --------------------------------------------------------------------------------------------------

test('a 429 surfaces at once with its Retry-After: the SDK does not sleep and retry behind our back', async (t) => {
  const { server, api } = await setup(t);
  server.failNext('/v2/locations', { status: 429, retryAfter: 2 });
  const error = await squareError(t, api().listLocations());
  t.like(error, { code: 'RATE_LIMITED', statusCode: 429, retryAfterSeconds: 2, retryable: true, needsReconnect: false });
  t.is(requestsTo(server, '/v2/locations').length, 1, 'one request: no hidden retry');
});

test('a customer look-up (the SDK\'s passthrough request, three fields read) fails as every SDK call does: status, detail, Retry-After, HTML, dropped connection', async (t) => {
  const { server, api } = await setup(t);
  const token = server.issueAccessToken(MERCHANT);
  const merchant = api(token);
  server.failNext('/v2/customers', { status: 429, retryAfter: 2 });
  t.like(await squareError(t, merchant.getCustomer('C1')), { code: 'RATE_LIMITED', statusCode: 429, retryAfterSeconds: 2, retryable: true, operation: 'customers.get' });
  server.failNext('/v2/customers', { status: 500 });
  t.like(await squareError(t, merchant.getCustomer('C1')), { code: 'INTERNAL_SERVER_ERROR', statusCode: 500, detail: 'Injected fault: INTERNAL_SERVER_ERROR.' });
  server.failNext('/v2/customers', { status: 502, html: '<html><body>Bad Gateway</body></html>' });
  const html = await squareError(t, merchant.getCustomer('C1'));
  t.like(html, { code: 'BAD_GATEWAY', statusCode: 502, retryable: true });
  t.regex(html.detail, /Bad Gateway/);
  server.failNext('/v2/customers', { dropConnection: true });
  const dropped = await squareError(t, merchant.getCustomer('C1'));
  t.like(dropped, { code: 'NETWORK', statusCode: undefined, retryable: true });
  t.regex(dropped.detail, /^could not reach Square: /);
  const sent = requestsTo(server, '/v2/customers/C1');
  t.is(sent.length, 4, 'one request each: no hidden retry');
  t.true(sent.every((r) => r.authorization === `Bearer ${token}`), 'each with the merchant’s token');
});

test('a failure on a later page is thrown from the iteration, after the earlier pages were yielded', async (t) => {
  const { server, api } = await setup(t);
  for (const n of [1, 2, 3]) {
    server.addPayment(MERCHANT, { id: `P${n}`, locationId: 'L-MAIN', amount: n, createdAt: `2025-01-0${n}T00:00:00Z` });
  }
  const merchant = api();
  const seen: string[] = [];
  const listing = merchant.listPayments({ locationId: 'L-MAIN', limit: 2 });
  // The first page is fetched when iteration starts; fail whatever comes next.
  const iterate = (async () => {
    for await (const payment of listing) {
      seen.push(payment.id);
      if (seen.length === 1) server.failNext('/v2/payments', { status: 503 });
    }
  })();
  t.like(await squareError(t, iterate), { code: 'SERVICE_UNAVAILABLE', statusCode: 503, retryable: true });
  t.deepEqual(seen, ['P1', 'P2'], 'resume from the last one seen');
});

test('a 500 is retryable and carries Square’s detail', async (t) => {
  const { server, api } = await setup(t);
  server.failNext('/v2/merchants', { status: 500 });
  const error = await squareError(t, api().getMerchant());
  t.like(error, { code: 'INTERNAL_SERVER_ERROR', statusCode: 500, retryable: true, operation: 'merchants.get' });
  t.is(error.detail, 'Injected fault: INTERNAL_SERVER_ERROR.');
});

test('no answer within the timeout is a retryable TIMEOUT', async (t) => {
  const { server, api } = await setup(t, { timeoutSeconds: 0.2 });
  // The SDK is loaded (once per process, on the first call) before the clock starts; that call may itself time out.
  await api().getMerchant().catch(() => undefined);
  server.failNext('/v2/customers', { delayMs: 2_000 });
  const started = Date.now();
  const error = await squareError(t, api().getCustomer('C1'));
  t.like(error, { code: 'TIMEOUT', statusCode: undefined, retryable: true, operation: 'customers.get' });
  t.true(Date.now() - started < 2_000, 'gave up at the timeout, before the server answered (at 2 s)');
});

test('a dropped connection is a retryable NETWORK error', async (t) => {
  const { server, api } = await setup(t);
  server.failNext('/v2/locations', { dropConnection: true });
  const error = await squareError(t, api().listLocations());
  t.like(error, { code: 'NETWORK', statusCode: undefined, retryable: true });
  t.regex(error.detail, /^could not reach Square: /);
});

test('an HTML error page from a proxy is named after its status', async (t) => {
  const { server, api } = await setup(t);
  server.failNext('/v2/locations', { status: 502, html: '<html><body>Bad Gateway</body></html>' });
  const error = await squareError(t, api().listLocations());
  t.like(error, { code: 'BAD_GATEWAY', statusCode: 502, retryable: true });
  t.regex(error.detail, /Bad Gateway/);
});
