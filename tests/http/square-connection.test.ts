/**
 * The Square connection over HTTP: the real service, the real `square` SDK, and a local server that answers like
 * Square (tests/support/square-server.ts) in place of connect.squareup*.com. The browser's trip through Square is
 * played by the test: it opens the start URL (keeping the nonce cookie, as the merchant's browser does), reads the
 * authorize URL, has the Square server issue a code, and follows the redirect back to the callback by hand, with
 * that browser's cookie, to read the Location header.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { v4 as uuid } from 'uuid';
import { eventually } from '../support/eventually.ts';
import { keyring } from '../../adapters/crypto/keys.ts';
import { postgresOAuthStates } from '../../adapters/oauth/state.ts';
import { postgresTokenVault } from '../../adapters/postgres/token-vault.ts';
import { connectionEvents, UNRECORDED_CLAIM_GRACE_MS } from '../../domain/connections/events.ts';
import { pollStream } from '../../domain/connections/poll-log.ts';
import { merchantReservationEvents } from '../../domain/connections/merchant-reservation.ts';
import type { VaultTokens } from '../../domain/ports/token-vault.ts';
import { heldAnswer, startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { api, openConnectUrl, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';

const ENCRYPTION_KEY = randomBytes(32).toString('base64');
const CRON_SECRET = 'cron-secret-for-the-square-tests-0123';
const API_BASE_URL = 'https://api.tally.test';
const FRONTEND_URL = 'https://app.tally.test';
const REDIRECT_URI = `${API_BASE_URL}/api/v1/oauth/square/callback`;
const ADMIN_EMAIL = 'root@square.test';
const DAY_MS = 24 * 3600_000;

let square: SquareTestServer;
let service: TestService;
/** How far the service's clock is ahead of the real one; serial tests move it and put it back. */
let clockAheadMs = 0;
let call: ReturnType<typeof api>;
let adminToken: string;

test.before(async () => {
  square = await startSquareServer();
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: ADMIN_EMAIL,
    SQUARE_APP_ID: square.appId,
    SQUARE_APP_SECRET: square.appSecret,
    SQUARE_ENVIRONMENT: 'sandbox',
    SQUARE_BASE_URL: square.url,
    API_BASE_URL,
    FRONTEND_URL,
    ENCRYPTION_KEY,
    CRON_SECRET,
  }, { now: () => new Date(Date.now() + clockAheadMs) });
  call = api(service.url);
  adminToken = await tokenFor(`admin-${uuid()}`, ADMIN_EMAIL);
  await call('POST', '/api/v1/me/register', { token: adminToken, body: { role: 'consumer' } });
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

// --- Helpers ---------------------------------------------------------------------------------------------------

interface Client {
  userId: string;
  token: string;
  tenantId: string;
}

async function approvedClient(): Promise<Client> {
  const userId = uuid();
  const token = await tokenFor(userId, `merchant-${userId.slice(0, 8)}@square.test`);
  await call('POST', '/api/v1/me/register', { token, body: { role: 'client', businessName: `Shop ${userId.slice(0, 4)}` } });
  const approval = await call('PATCH', `/api/v1/admin/users/${userId}/approve`, { token: adminToken });
  return { userId, token, tenantId: approval.body.user.tenantId };
}

/** A Square merchant of the stand-in server, unique to the test. */
function newMerchant(): string {
  const merchantId = `ML${randomBytes(6).toString('hex').toUpperCase()}`;
  square.addMerchant({ merchantId, businessName: `Business ${merchantId}`, locations: [{ id: `${merchantId}-L1`, name: 'Main Street' }, { id: `${merchantId}-L2`, name: 'Pier' }] });
  return merchantId;
}

/** The nonce cookie of the browser that started each flow, by the state it was given. */
const browserOf = new Map<string, string>();

/** The client asks for the connect URL; its browser opens it and is sent on to Square's authorize URL. */
async function authorizeUrl(client: Client): Promise<URL> {
  const response = await call('GET', '/api/v1/client/pos/square/connect', { token: client.token });
  if (response.status !== 200) throw new Error(`connect answered ${response.status} ${JSON.stringify(response.body)}`);
  const browser = await openConnectUrl(service.url, response);
  browserOf.set(browser.authorizeUrl.searchParams.get('state') ?? '', browser.cookie);
  return browser.authorizeUrl;
}

/**
 * A browser arrives at the callback with these query parameters; returns where it is sent next. By default it
 * is the browser that started the flow of that state (its cookie goes along); `cookie` plays another browser.
 */
async function callback(params: Record<string, string>, cookie = browserOf.get(params.state ?? '')): Promise<{ status: number; location: URL; setCookie: string }> {
  const response = await call('GET', `/api/v1/oauth/square/callback?${new URLSearchParams(params)}`, cookie ? { headers: { cookie } } : {});
  return { status: response.status, location: new URL(response.headers.get('location') ?? 'about:blank'), setCookie: response.headers.get('set-cookie') ?? '' };
}

/** The service's log lines so far, parsed, that `match` keeps. */
const logLines = (match: (line: Record<string, any>) => boolean): Record<string, any>[] => service.logs.map((line) => JSON.parse(line)).filter(match);

/** The merchant consents on Square for `merchantId`; Square redirects back with a code and the state. */
async function consent(client: Client, merchantId: string): Promise<{ code: string; state: string }> {
  const url = await authorizeUrl(client);
  const code = square.issueCode(merchantId, { redirectUri: url.searchParams.get('redirect_uri') ?? undefined });
  return { code, state: url.searchParams.get('state') ?? '' };
}

async function connect(client: Client, merchantId: string): Promise<URL> {
  const { code, state } = await consent(client, merchantId);
  return (await callback({ code, response_type: 'code', state })).location;
}

/** Connects, for tests about what comes after. */
async function mustConnect(client: Client, merchantId: string): Promise<void> {
  const location = await connect(client, merchantId);
  if (location.toString() !== connected) throw new Error(`connecting failed: ${location}`);
}

const connected = `${FRONTEND_URL}/pos?connected=square`;
const failedWith = (code: string) => `${FRONTEND_URL}/pos?error=${code}`;

/** The tenant's connection as the API shows it, once the read model includes the stream's last event (read-your-writes). */
async function connection(client: Client) {
  const last = (await service.tally.store.readStream(`square-connection-${client.tenantId}`)).at(-1);
  const headers: Record<string, string> = last ? { 'x-min-position': String(last.position) } : {};
  // A 503 with Retry-After means the read models are still catching up (a loaded machine): retry, as a client would.
  const response = await eventually(() => call('GET', '/api/v1/client/pos/square', { token: client.token, headers }), (r: { status: number }) => r.status !== 503, { timeoutMs: 20_000, intervalMs: 250 });
  if (response.status !== 200) throw new Error(`status answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

const vault = () => postgresTokenVault(service.database.pool, keyring(ENCRYPTION_KEY));
async function storedTokens(tenantId: string): Promise<VaultTokens> {
  const read = await vault().read(tenantId);
  if (read.status !== 'ok') throw new Error(`vault: ${read.status}`);
  return read.tokens;
}
const streamTypes = async (stream: string) => (await service.tally.store.readStream(stream)).map((e) => e.type);
const exchanged = (code: string) => square.requests.some((r) => r.path === '/oauth2/token' && (r.body as { code?: string }).code === code);

/** Damages the stored token's authentication tag: the key it names (this instance's) no longer opens it. */
async function damageStoredToken(tenantId: string) {
  await service.database.pool.query('UPDATE square_token_vault SET auth_tag = $2 WHERE tenant_id = $1', [tenantId, randomBytes(16)]);
}

async function connectionUnavailable(t: ExecutionContext, tenantId: string) {
  const error = await t.throwsAsync(service.tally.connections.apiFor(tenantId));
  t.is((error as { code?: string }).code, 'CONNECTION_UNAVAILABLE');
}

/** Gives the connection a token last refreshed 8 days ago (the clock cannot be moved): a history to refresh. */
async function ageToken(tenantId: string) {
  const stream = `square-connection-${tenantId}`;
  const events = (await service.tally.store.readStream(stream)).map((e) => connectionEvents.decode(e));
  const authorized = events.filter((e) => e.type === 'SquareConnectionAuthorized').at(-1);
  if (!authorized) throw new Error(`${stream} has no SquareConnectionAuthorized`);
  const { data } = authorized;
  await service.tally.store.append(
    stream,
    [
      {
        id: uuid(),
        type: 'SquareTokensRefreshed',
        data: {
          tenantId,
          merchantId: data.merchantId,
          authorizationId: data.authorizationId,
          tokenExpiresAt: new Date(Date.now() + 22 * DAY_MS).toISOString(),
          refreshedAt: new Date(Date.now() - 8 * DAY_MS).toISOString(),
        },
      },
    ],
    'any',
  );
}

/** Moves the service's clock `ms` ahead until the test ends. */
function moveClock(t: ExecutionContext, ms: number) {
  clockAheadMs += ms;
  t.teardown(() => void (clockAheadMs -= ms));
}

/**
 * The event store refuses every event for which `condition` (SQL over the inserted row, `NEW`) holds, as a failing
 * database would, until the returned function (also run when the test ends) drops the trigger. Serial tests only.
 */
async function refuseEvents(t: ExecutionContext, name: string, condition: string): Promise<() => Promise<void>> {
  const db = service.database.pool;
  await db.query(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF ${condition} THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
  await db.query(`CREATE TRIGGER ${name} BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION ${name}()`);
  const drop = async () => {
    await db.query(`DROP TRIGGER IF EXISTS ${name} ON events`);
    await db.query(`DROP FUNCTION IF EXISTS ${name}()`);
  };
  t.teardown(drop);
  return drop;
}

const cron = (secret?: string) => call('POST', '/api/v1/internal/cron/square-refresh-tokens', { headers: secret === undefined ? {} : { 'x-cron-secret': secret } });
const reportFor = (body: { connections: { tenantId: string }[] }, tenantId: string) => body.connections.find((c) => c.tenantId === tenantId) as any;

// --- Connect -----------------------------------------------------------------------------------------------------

test('the connect URL sends the merchant to the configured Square host with the app, the scopes, session=false, the exact redirect URI and a fresh state', async (t) => {
  const client = await approvedClient();
  const url = await authorizeUrl(client);
  t.is(`${url.origin}${url.pathname}`, `${square.url}/oauth2/authorize`);
  t.is(url.searchParams.get('client_id'), square.appId);
  t.deepEqual(url.searchParams.get('scope')?.split(' ').sort(), ['CUSTOMERS_READ', 'ITEMS_READ', 'MERCHANT_PROFILE_READ', 'ORDERS_READ', 'PAYMENTS_READ']);
  t.is(url.searchParams.get('session'), 'false');
  t.is(url.searchParams.get('redirect_uri'), REDIRECT_URI);
  const state = decodeJwt(url.searchParams.get('state') ?? '');
  t.is(state.tid, client.tenantId, 'bound to the tenant');
  t.is(state.exp! - state.iat!, 600, 'valid for 10 minutes');
  t.not((await authorizeUrl(client)).searchParams.get('state'), url.searchParams.get('state'));
});

test('a merchant connects: tokens stored encrypted, the connection active, the API usable, and no token in the log, the events or the read model', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  const { code, state } = await consent(client, merchantId);
  const redirect = await callback({ code, response_type: 'code', state });
  t.is(redirect.status, 302);
  t.is(redirect.location.toString(), connected);

  const view = await connection(client);
  t.like(view, { provider: 'square', status: 'active', merchantId, businessName: `Business ${merchantId}`, lastError: null, revokedBy: null });
  t.deepEqual(view.scopes.sort(), ['CUSTOMERS_READ', 'ITEMS_READ', 'MERCHANT_PROFILE_READ', 'ORDERS_READ', 'PAYMENTS_READ']);
  t.deepEqual(view.locations.map((l: { id: string }) => l.id), [`${merchantId}-L1`, `${merchantId}-L2`]);
  const daysLeft = (Date.parse(view.tokenExpiresAt) - Date.now()) / DAY_MS;
  t.true(daysLeft > 29 && daysLeft <= 30, `token expires in ${daysLeft} days`);

  const exchange = square.requests.find((r) => r.path === '/oauth2/token' && (r.body as { code?: string }).code === code);
  t.like(exchange?.body, { client_id: square.appId, grant_type: 'authorization_code', redirect_uri: REDIRECT_URI });

  const { api: merchantApi, merchantId: apiMerchant } = await service.tally.connections.apiFor(client.tenantId);
  t.is(apiMerchant, merchantId);
  t.is((await merchantApi.getMerchant()).merchantId, merchantId);
  t.is(await service.tally.connections.tenantForMerchant(merchantId), client.tenantId);
  t.deepEqual(
    (await service.tally.connections.activeConnections()).find((c) => c.tenantId === client.tenantId),
    { tenantId: client.tenantId, merchantId, pollCursor: null, connectedAt: view.authorizedAt },
    'a first poll starts at the connection',
  );

  const [authorized] = await service.tally.store.readStream(`square-connection-${client.tenantId}`);
  t.is(authorized?.type, 'SquareConnectionAuthorized');
  t.is(authorized?.metadata.actor, `user:${client.userId}`, 'the user who started the flow is recorded');

  const tokens = await storedTokens(client.tenantId);
  const secrets = [tokens.accessToken, tokens.refreshToken, code, square.appSecret, ENCRYPTION_KEY];
  const events = JSON.stringify(await service.tally.store.readAll());
  const readModel = JSON.stringify((await service.database.pool.query('SELECT * FROM pos_connections')).rows);
  const logs = service.logs.join('\n');
  for (const secret of secrets) {
    t.false(events.includes(secret), 'no secret in the event log');
    t.false(readModel.includes(secret), 'no secret in the read model');
    t.false(logs.includes(secret), 'no secret in the log');
  }
});

test('a merchant who declines is sent back with error=access_denied, and nothing is recorded', async (t) => {
  const client = await approvedClient();
  const state = (await authorizeUrl(client)).searchParams.get('state') ?? '';
  const redirect = await callback({ error: 'access_denied', error_description: 'user_denied', state });
  t.is(redirect.status, 302);
  t.is(redirect.location.toString(), failedWith('access_denied'));
  t.deepEqual(await streamTypes(`square-connection-${client.tenantId}`), []);
  t.is((await connection(client)).status, 'not_connected');
  // The log line names the workspace whose attempt it was (the callback has no signed-in caller), and the state is used up.
  t.true(
    service.logs.some((line) => line.includes('"msg":"Square connect failed"') && line.includes('"reason":"access_denied"') && line.includes(`"tenantId":"${client.tenantId}"`)),
    'the failure is logged with its workspace',
  );
  t.like(logLines((line) => line.reason === 'access_denied' && line.tenantId === client.tenantId)[0], { level: 'warn', msg: 'Square connect failed' }, "a workspace's failed attempt is a warning");
  t.is((await callback({ error: 'access_denied', state })).location.toString(), failedWith('access_denied'));
  // The same answer with a state that verifies nothing (anyone can send it): said at info, naming no workspace.
  const marker = `from-anyone-${uuid()}`;
  t.is((await callback({ error: 'access_denied', error_description: marker, state: 'garbage' })).location.toString(), failedWith('access_denied'));
  const anyone = logLines((line) => typeof line.detail === 'string' && line.detail.includes(marker));
  t.is(anyone.length, 1);
  t.like(anyone[0], { level: 'info', msg: 'Square connect failed', reason: 'access_denied' });
  t.is(anyone[0]!.tenantId, undefined);
});

test('a merchant suspended while the connect flow is under way cannot finish it: error=access_denied, nothing connected', async (t) => {
  const client = await approvedClient();
  const { code, state } = await consent(client, newMerchant());
  t.is((await call('PATCH', `/api/v1/admin/users/${client.userId}/suspend`, { token: adminToken, body: { reason: 'chargebacks' } })).status, 200);
  const redirect = await callback({ code, response_type: 'code', state });
  t.is(redirect.location.toString(), failedWith('access_denied'));
  t.deepEqual(await streamTypes(`square-connection-${client.tenantId}`), [], 'nothing recorded');
  t.true(service.logs.some((line) => line.includes('may no longer connect workspace') && line.includes(`"tenantId":"${client.tenantId}"`)), 'the log says why');
  // The start link of a flow begun before the suspension does not open either.
  const again = await approvedClient();
  const response = await call('GET', '/api/v1/client/pos/square/connect', { token: again.token });
  t.is((await call('PATCH', `/api/v1/admin/users/${again.userId}/suspend`, { token: adminToken, body: {} })).status, 200);
  const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0]!;
  const startUrl = new URL(response.body.url);
  const start = await fetch(`${service.url}${startUrl.pathname}${startUrl.search}`, { redirect: 'manual', headers: { cookie } });
  t.is(start.headers.get('location'), failedWith('access_denied'), 'not sent on to Square');
});

test('a forged, expired, reused or missing state is refused with error=invalid_state, without asking Square for a token', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  const claims = { tenantId: client.tenantId, actor: `user:${client.userId}` };
  const nonce = randomBytes(32).toString('base64url');
  const forged = await postgresOAuthStates(service.database.pool, keyring(randomBytes(32).toString('base64'))).issue(claims, nonce, new Date());
  const expired = await postgresOAuthStates(service.database.pool, keyring(ENCRYPTION_KEY)).issue(claims, nonce, new Date(Date.now() - 11 * 60_000));

  for (const [label, state] of [['forged', forged], ['expired', expired], ['missing', undefined]] as const) {
    const code = square.issueCode(merchantId);
    const redirect = await callback({ code, ...(state ? { state } : {}) }, `tally_square_oauth=${nonce}`);
    t.is(redirect.location.toString(), failedWith('invalid_state'), label);
    t.false(exchanged(code), `${label}: the code was not exchanged`);
  }
  t.true(service.logs.some((line) => line.includes('state rejected: expired')), 'the reason is logged');
  t.true(service.logs.some((line) => line.includes('state rejected: bad_signature')));
  // Anyone can send a state that does not verify: an info line each, never a warning.
  const refused = logLines((line) => line.msg === 'Square connect failed' && line.reason === 'invalid_state');
  t.true(refused.length >= 3);
  t.deepEqual([...new Set(refused.map((line) => line.level))], ['info']);

  const { code, state } = await consent(client, merchantId);
  t.is((await callback({ code, state })).location.toString(), connected);
  const replayCode = square.issueCode(merchantId);
  const replay = await callback({ code: replayCode, state });
  t.is(replay.location.toString(), failedWith('invalid_state'), 'a state is accepted once');
  t.false(exchanged(replayCode));
  t.true(service.logs.some((line) => line.includes('state rejected: reused')));
  t.deepEqual(await streamTypes(`square-connection-${client.tenantId}`), ['SquareConnectionAuthorized']);
});

test("an authorize link carrying someone else's state connects nothing: the state is bound to the browser that started the flow", async (t) => {
  const attacker = await approvedClient();
  const victimMerchant = newMerchant();
  // The attacker starts a flow in their own browser and sends the authorize link (with their state) to a merchant.
  const link = await authorizeUrl(attacker);
  const state = link.searchParams.get('state') ?? '';
  const victimCode = square.issueCode(victimMerchant);
  // The merchant's browser comes back with its consent code and the attacker's state, but not the attacker's cookie.
  for (const [label, cookie] of [['no cookie', ''], ['another nonce', `tally_square_oauth=${randomBytes(32).toString('base64url')}`]] as const) {
    const redirect = await callback({ code: victimCode, state }, cookie);
    t.is(redirect.location.toString(), failedWith('invalid_state'), label);
  }
  t.false(exchanged(victimCode), "the merchant's code was never exchanged");
  t.deepEqual(await streamTypes(`square-connection-${attacker.tenantId}`), [], 'nothing connected to the attacker');
  t.true(service.logs.some((line) => line.includes('state rejected: not_this_browser')));
  // Its own browser still completes the flow (the stranger could not burn the state).
  const ownCode = square.issueCode(newMerchant());
  const own = await callback({ code: ownCode, state });
  t.is(own.location.toString(), connected);
  t.regex(own.setCookie, /tally_square_oauth=;.*expires=Thu, 01 Jan 1970/i, 'the callback clears the nonce cookie');
});

test('the connect URL is a one-time start URL; its answer sets an HttpOnly, Secure, SameSite=Lax nonce cookie; the start redirects to Square', async (t) => {
  const client = await approvedClient();
  const response = await call('GET', '/api/v1/client/pos/square/connect', { token: client.token });
  const start = new URL(response.body.url);
  t.is(`${start.origin}${start.pathname}`, `${API_BASE_URL}/api/v1/oauth/square/start`);
  t.truthy(start.searchParams.get('ticket'));
  t.is(response.headers.get('cache-control'), 'no-store');
  const browser = await openConnectUrl(service.url, response);
  t.is(`${browser.authorizeUrl.origin}${browser.authorizeUrl.pathname}`, `${square.url}/oauth2/authorize`);
  t.regex(browser.setCookie, /^tally_square_oauth=[A-Za-z0-9_-]{43};/);
  t.regex(browser.setCookie, /; httponly/i);
  t.regex(browser.setCookie, /; secure/i);
  t.regex(browser.setCookie, /; samesite=lax/i);
  t.regex(browser.setCookie, /; path=\/api\/v1\/oauth\/square/);
  const again = await fetch(`${service.url}${start.pathname}${start.search}`, { redirect: 'manual', headers: { cookie: browser.cookie } });
  t.is(again.status, 302);
  t.is(again.headers.get('location'), failedWith('invalid_state'), 'a ticket opens one flow only');
  t.is(again.headers.get('set-cookie'), null);
  const requestId = uuid();
  const forged = await fetch(`${service.url}/api/v1/oauth/square/start?ticket=forged`, { redirect: 'manual', headers: { cookie: browser.cookie, 'x-request-id': requestId } });
  t.is(forged.headers.get('location'), failedWith('invalid_state'));
  // A forged ticket comes from anyone who opens the public URL: an info line, not a warning.
  t.like(logLines((line) => line.requestId === requestId && line.msg === 'Square connect could not start')[0], { level: 'info', reason: 'invalid_state' });
});

test('a connect URL passed to someone else (another merchant, by link) does not open in their browser, and stays usable for its owner', async (t) => {
  const owner = await approvedClient();
  const other = await approvedClient();
  const shared = await call('GET', '/api/v1/client/pos/square/connect', { token: owner.token });
  const start = new URL(shared.body.url);
  // The other merchant's browser: no cookie of the owner's; with or without a connect cookie of its own.
  const ownOfOther = (await call('GET', '/api/v1/client/pos/square/connect', { token: other.token })).headers.get('set-cookie')!.split(';')[0]!;
  for (const headers of [{}, { cookie: ownOfOther }] as Record<string, string>[]) {
    const opened = await fetch(`${service.url}${start.pathname}${start.search}`, { redirect: 'manual', headers });
    t.is(opened.status, 302);
    t.is(opened.headers.get('location'), failedWith('invalid_state'), 'refused before Square is reached');
  }
  t.true(service.logs.some((l) => l.includes('not_this_browser')), 'the log says why');
  // Not burned by those attempts: the owner's browser still connects with it.
  const browser = await openConnectUrl(service.url, shared);
  const code = square.issueCode(newMerchant(), { redirectUri: browser.authorizeUrl.searchParams.get('redirect_uri') ?? undefined });
  const back = await callback({ code, state: browser.authorizeUrl.searchParams.get('state') ?? '' }, browser.cookie);
  t.is(back.location.toString(), connected);
});

// Serial: the fault injected into the Square server must meet this test's request, not another's.
test.serial('a failed token exchange sends the browser back with error=token_exchange_failed; Square’s detail goes to the log, the code nowhere', async (t) => {
  const client = await approvedClient();
  const bogus = `sq0cgp-${randomBytes(12).toString('hex')}`;
  const { state } = await consent(client, newMerchant());
  const redirect = await callback({ code: bogus, state });
  t.is(redirect.location.toString(), failedWith('token_exchange_failed'));
  t.deepEqual([...redirect.location.searchParams.keys()], ['error'], 'the detail never reaches the URL');
  const line = service.logs.find((l) => l.includes('Authorization code not found'));
  t.truthy(line, 'Square’s explanation is logged');
  t.false(service.logs.join('\n').includes(bogus), 'the code is never logged');

  const outage = await consent(client, newMerchant());
  square.failNext('/oauth2/token', { status: 503 });
  t.is((await callback(outage)).location.toString(), failedWith('token_exchange_failed'));
  t.is((await connection(client)).status, 'not_connected');
});

test('a Square merchant connected to one workspace is refused to another until the first disconnects', async (t) => {
  const [first, second] = [await approvedClient(), await approvedClient()];
  const merchantId = newMerchant();
  t.is((await connect(first, merchantId)).toString(), connected);
  t.is((await connect(second, merchantId)).toString(), failedWith('merchant_already_connected'));
  t.is((await connection(first)).status, 'active', 'the first connection is untouched');
  t.is((await connection(second)).status, 'not_connected');
  t.is(await service.tally.connections.tenantForMerchant(merchantId), first.tenantId);

  t.is((await call('DELETE', '/api/v1/client/pos/square', { token: first.token })).status, 200);
  t.is((await connect(second, merchantId)).toString(), connected);
  t.is(await service.tally.connections.tenantForMerchant(merchantId), second.tenantId);
});

test('two workspaces racing for one merchant: exactly one gets it', async (t) => {
  const clients = [await approvedClient(), await approvedClient(), await approvedClient()];
  const merchantId = newMerchant();
  const consents = await Promise.all(clients.map((client) => consent(client, merchantId)));
  const outcomes = await Promise.all(consents.map((c) => callback(c)));
  const won = outcomes.filter((o) => o.location.toString() === connected);
  t.is(won.length, 1, outcomes.map((o) => o.location.toString()).join(', '));
  t.is(outcomes.filter((o) => o.location.toString() === failedWith('merchant_already_connected')).length, 2);
  const holder = await service.tally.connections.tenantForMerchant(merchantId);
  t.truthy(clients.find((c) => c.tenantId === holder));
});

test('reconnecting replaces the tokens; reconnecting to another merchant frees the first one', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  await mustConnect(client, merchantId);
  const first = await storedTokens(client.tenantId);
  await service.tally.connections.recordPoll(client.tenantId, { cursor: 'cursor-1', polledAt: new Date().toISOString(), summary: { seen: 3 } }, { actor: 'system:poll' });

  t.is((await connect(client, merchantId)).toString(), connected);
  const second = await storedTokens(client.tenantId);
  t.not(second.accessToken, first.accessToken);
  t.not(second.authorizationId, first.authorizationId);
  const usedWith = (token: string) => square.requests.filter((r) => r.authorization === `Bearer ${token}`).length;
  const [oldUses, newUses] = [usedWith(first.accessToken), usedWith(second.accessToken)];
  await (await service.tally.connections.apiFor(client.tenantId)).api.listLocations();
  t.is(usedWith(second.accessToken), newUses + 1, 'the API uses the new token');
  t.is(usedWith(first.accessToken), oldUses);
  await connection(client); // activeConnections() lists tenants from the read model
  t.deepEqual(
    (await service.tally.connections.activeConnections()).find((c) => c.tenantId === client.tenantId)?.pollCursor,
    'cursor-1',
    'polling resumes where it stopped for the same merchant',
  );

  const other = newMerchant();
  // Other tests run alongside: count only revokes of this test's merchants.
  const revokes = () =>
    square.requests
      .filter((r) => r.path === '/oauth2/revoke')
      .map((r) => (r.body as { merchant_id?: string }).merchant_id)
      .filter((m) => m === merchantId || m === other);
  const revokedBefore = revokes().length;
  await mustConnect(client, other);
  t.like(await connection(client), { status: 'active', merchantId: other, lastPolledAt: null });
  t.deepEqual(revokes().slice(revokedBefore), [merchantId], 'the first merchant’s grant is revoked at Square');
  const someoneElse = await approvedClient();
  t.is((await connect(someoneElse, merchantId)).toString(), connected, 'the first merchant was released');
  t.deepEqual(revokes().slice(revokedBefore), [merchantId], 'connecting it elsewhere revokes nothing more');
  t.true((await (await service.tally.connections.apiFor(someoneElse.tenantId)).api.listLocations()).length > 0, 'and its new grant works');
});

test.serial('switching merchants when Square cannot revoke the old grant: the switch stands, the failure is logged with what to do', async (t) => {
  const client = await approvedClient();
  const first = newMerchant();
  await mustConnect(client, first);
  square.failNext('/oauth2/revoke', { status: 503 });
  const other = newMerchant();
  await mustConnect(client, other);
  t.like(await connection(client), { status: 'active', merchantId: other });
  t.true(service.logs.some((line) => line.includes('could not be revoked') && line.includes(first) && line.includes('SERVICE_UNAVAILABLE')));
});

test.serial('a failed reconnect to the same merchant keeps a claim no authorization records: after a disconnect, another workspace gets the merchant once that claim is older than a connect takes', async (t) => {
  const [first, second] = [await approvedClient(), await approvedClient()];
  const merchantId = newMerchant();
  await mustConnect(first, merchantId);
  const allow = await refuseEvents(t, 'refuse_reconnect', `NEW.event_type = 'SquareConnectionAuthorized' AND NEW.stream_name = 'square-connection-${first.tenantId}'`);
  const failed = await connect(first, merchantId);
  await allow();
  t.not(failed.toString(), connected);
  t.like(await connection(first), { status: 'active', merchantId }, 'the connection before the attempt stands');
  const claims = (await service.tally.store.readStream(`square-merchant-${merchantId}`)).map((e) => merchantReservationEvents.decode(e));
  t.deepEqual(claims.map((e) => e.type), ['SquareMerchantClaimed', 'SquareMerchantClaimed'], 'the attempt claimed again and kept it: the connection uses the merchant');
  t.is((await connect(second, merchantId)).toString(), failedWith('merchant_already_connected'));

  t.is((await call('DELETE', '/api/v1/client/pos/square', { token: first.token })).status, 200);
  t.like(await connection(first), { status: 'revoked' });
  t.is((await connect(second, merchantId)).toString(), failedWith('merchant_already_connected'), 'a claim this fresh may be a connect in progress');
  moveClock(t, UNRECORDED_CLAIM_GRACE_MS);
  t.is((await connect(second, merchantId)).toString(), connected);
  t.like(await connection(second), { status: 'active', merchantId });
});

test.serial('switching merchants when the authorization cannot be recorded: the connection, its tokens and its merchant stay as they were; the new grant is revoked', async (t) => {
  const client = await approvedClient();
  const [first, next] = [newMerchant(), newMerchant()];
  await mustConnect(client, first);
  const before = await storedTokens(client.tenantId);
  const allow = await refuseEvents(t, 'refuse_switch', `NEW.event_type = 'SquareConnectionAuthorized' AND NEW.stream_name = 'square-connection-${client.tenantId}'`);
  const failed = await connect(client, next);
  await allow();
  t.not(failed.toString(), connected);
  t.like(await connection(client), { status: 'active', merchantId: first });
  t.deepEqual(await storedTokens(client.tenantId), before, 'the tokens the connection names, untouched');
  t.is((await service.tally.connections.apiFor(client.tenantId)).merchantId, first, 'still usable');
  t.true(square.requests.some((r) => r.path === '/oauth2/revoke' && (r.body as { merchant_id?: string }).merchant_id === next), `${next}'s grant, which nothing uses, is revoked`);
  t.deepEqual(await streamTypes(`square-merchant-${next}`), ['SquareMerchantClaimed', 'SquareMerchantReleased']);
  t.like(await call('GET', '/api/v1/client/debug/square', { token: client.token }), { body: { token: { stored: true, ofConnection: true } } });
});

test.serial('a connect that recorded its authorization but could not store its tokens: the connection needs a reconnect once the flow is surely over; the debug endpoint says why; a disconnect deletes the tokens left', async (t) => {
  const client = await approvedClient();
  const [first, next] = [newMerchant(), newMerchant()];
  await mustConnect(client, first);
  const db = service.database.pool;
  // The vault refuses the write (as a failing database would) after the event store recorded the authorization.
  await db.query(`CREATE FUNCTION refuse_vault_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
  await db.query('CREATE TRIGGER refuse_vault_write BEFORE INSERT OR UPDATE ON square_token_vault FOR EACH ROW EXECUTE FUNCTION refuse_vault_write()');
  const allow = async () => {
    await db.query('DROP TRIGGER IF EXISTS refuse_vault_write ON square_token_vault');
    await db.query('DROP FUNCTION IF EXISTS refuse_vault_write()');
  };
  t.teardown(allow);
  const failed = await connect(client, next);
  await allow();
  t.not(failed.toString(), connected);
  t.like(await connection(client), { status: 'active', merchantId: next });
  t.is((await storedTokens(client.tenantId)).merchantId, first, 'the vault still holds the previous authorization');

  const debug = async () => (await call('GET', '/api/v1/client/debug/square', { token: client.token })).body;
  const shown = await debug();
  t.like(shown.token, { stored: true, ofConnection: false });
  t.true(shown.problems.some((p: string) => p.includes('not the connection’s')), JSON.stringify(shown.problems));

  // Within a connect's time the tokens may be on their way: unusable, nothing recorded.
  const soon = await t.throwsAsync(service.tally.connections.apiFor(client.tenantId));
  t.like(soon, { code: 'CONNECTION_UNAVAILABLE', status: 'token_missing' });
  t.like(await connection(client), { status: 'active' });

  moveClock(t, UNRECORDED_CLAIM_GRACE_MS);
  const lost = await t.throwsAsync(service.tally.connections.apiFor(client.tenantId));
  t.like(lost, { code: 'CONNECTION_UNAVAILABLE' });
  t.like(await connection(client), { status: 'needs_reconnect', lastError: { code: 'TOKEN_MISSING' } });

  t.is((await call('DELETE', '/api/v1/client/pos/square', { token: client.token })).status, 200);
  t.is((await vault().read(client.tenantId)).status, 'missing', 'the tokens left behind are deleted too');
});

test.serial('a first connect that fails between its claim and its record, its release failing too, holds the merchant only as long as a connect takes', async (t) => {
  const [first, second] = [await approvedClient(), await approvedClient()];
  const merchantId = newMerchant();
  const allow = await refuseEvents(
    t,
    'refuse_first_connect',
    `(NEW.event_type = 'SquareConnectionAuthorized' AND NEW.stream_name = 'square-connection-${first.tenantId}') OR (NEW.event_type = 'SquareMerchantReleased' AND NEW.stream_name = 'square-merchant-${merchantId}')`,
  );
  const failed = await connect(first, merchantId);
  await allow();
  t.not(failed.toString(), connected);
  t.like(await connection(first), { status: 'not_connected' });
  t.deepEqual(await streamTypes(`square-merchant-${merchantId}`), ['SquareMerchantClaimed'], 'the claim was left behind');
  t.is((await connect(second, merchantId)).toString(), failedWith('merchant_already_connected'), 'a claim this fresh may be a connect in progress');
  moveClock(t, UNRECORDED_CLAIM_GRACE_MS);
  t.is((await connect(second, merchantId)).toString(), connected);
  t.deepEqual(await streamTypes(`square-merchant-${merchantId}`), ['SquareMerchantClaimed', 'SquareMerchantReleased', 'SquareMerchantClaimed']);
  t.like(await connection(second), { status: 'active', merchantId });
});

// --- Disconnect ------------------------------------------------------------------------------------------------

test.serial('disconnecting revokes at Square with the app secret, records it, deletes the tokens; again is harmless', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  t.is((await call('DELETE', '/api/v1/client/pos/square', { token: client.token })).status, 404, 'nothing to disconnect yet');
  await mustConnect(client, merchantId);
  const tokens = await storedTokens(client.tenantId);

  square.failNext('/oauth2/revoke', { status: 503 });
  const outage = await call('DELETE', '/api/v1/client/pos/square', { token: client.token });
  t.is(outage.status, 502);
  t.like(outage.body.error, { code: 'SQUARE_REQUEST_FAILED' });
  t.regex(outage.body.error.message, /try again shortly/);
  t.is((await connection(client)).status, 'active', 'nothing is recorded when Square did not revoke');

  const response = await call('DELETE', '/api/v1/client/pos/square', { token: client.token });
  t.is(response.status, 200);
  const revoke = square.requests.filter((r) => r.path === '/oauth2/revoke').at(-1);
  t.is(revoke?.authorization, `Client ${square.appSecret}`);
  t.deepEqual(revoke?.body, { client_id: square.appId, merchant_id: merchantId });

  const view = (await call('GET', '/api/v1/client/pos/square', { token: client.token, headers: { 'x-min-position': response.body.position } })).body;
  t.like(view, { status: 'revoked', revokedBy: 'app', merchantId });
  t.deepEqual(await vault().read(client.tenantId), { status: 'missing' }, 'the tokens are deleted');
  await t.throwsAsync(service.tally.connections.apiFor(client.tenantId), { message: /revoked: connect Square again/ });
  const gone = await fetch(`${square.url}/v2/locations`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
  t.is(gone.status, 401, 'Square no longer accepts the old token');

  const again = await call('DELETE', '/api/v1/client/pos/square', { token: client.token });
  t.is(again.status, 200);
  t.deepEqual(await streamTypes(`square-connection-${client.tenantId}`), ['SquareConnectionAuthorized', 'SquareConnectionRevoked']);
});

test('a revocation from Square’s webhook marks the connection revoked by the merchant, once', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  await mustConnect(client, merchantId);
  const revocation = { revokedAt: new Date().toISOString(), revokerType: 'MERCHANT' };
  const first = await service.tally.connections.markRevokedByWebhook(merchantId, revocation, { actor: `square:${merchantId}` });
  t.like(first, { tenantId: client.tenantId, revoked: true });
  t.like(await connection(client), { status: 'revoked', revokedBy: 'merchant' });
  t.is(await service.tally.connections.tenantForMerchant(merchantId), undefined);
  t.deepEqual(await vault().read(client.tenantId), { status: 'missing' });
  t.is(await service.tally.connections.markRevokedByWebhook(merchantId, revocation, {}), undefined, 'a repeated webhook: nobody holds the merchant any more');
  t.deepEqual(await streamTypes(`square-connection-${client.tenantId}`), ['SquareConnectionAuthorized', 'SquareConnectionRevoked']);
  t.is(await service.tally.connections.markRevokedByWebhook(newMerchant(), revocation, {}), undefined, 'a merchant nobody holds');
  await connectionUnavailable(t, client.tenantId);
});

test('a revocation Square timed before the connection was authorized (revoked, connected again, the webhook late) leaves the new connection alone', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  await mustConnect(client, merchantId);
  const revocation = { revokedAt: new Date(Date.now() - 3_600_000).toISOString(), revokerType: 'MERCHANT' };
  t.like(await service.tally.connections.markRevokedByWebhook(merchantId, revocation, {}), { tenantId: client.tenantId, revoked: false, outdated: true });
  t.like(await connection(client), { status: 'active', revokedBy: null });
  t.is(await service.tally.connections.tenantForMerchant(merchantId), client.tenantId);
  t.is((await vault().read(client.tenantId)).status, 'ok');
  t.deepEqual(await streamTypes(`square-connection-${client.tenantId}`), ['SquareConnectionAuthorized']);
});

// --- Refresh -----------------------------------------------------------------------------------------------------

test.serial('the refresh cron needs its secret, refreshes the tokens that are due, leaves the others and reports each', async (t) => {
  t.is((await cron()).status, 401);
  t.is((await cron('wrong-secret-of-the-same-length-0')).status, 401);

  const [fresh, due] = [await approvedClient(), await approvedClient()];
  await mustConnect(fresh, newMerchant());
  await mustConnect(due, newMerchant());
  const before = await storedTokens(due.tenantId);
  await ageToken(due.tenantId);
  // The cron finds connections through the read model: wait until it lists these two.
  await connection(fresh);
  await connection(due);

  const response = await cron(CRON_SECRET);
  t.is(response.status, 200);
  t.like(reportFor(response.body, fresh.tenantId), { outcome: 'not_due', error: null });
  const refreshed = reportFor(response.body, due.tenantId);
  t.like(refreshed, { outcome: 'refreshed', error: null });
  t.true(response.body.counts.refreshed >= 1);

  const after = await storedTokens(due.tenantId);
  t.not(after.accessToken, before.accessToken);
  t.is(after.refreshToken, before.refreshToken, 'Square returns the same refresh token');
  const view = (await call('GET', '/api/v1/client/pos/square', { token: due.token, headers: { 'x-min-position': refreshed.position } })).body;
  t.is(view.status, 'active');
  t.is(Date.parse(view.tokenExpiresAt), Date.parse(refreshed.tokenExpiresAt));
  t.true(Date.now() - Date.parse(view.lastRefreshedAt) < 60_000);

  const second = await cron(CRON_SECRET);
  t.like(reportFor(second.body, due.tenantId), { outcome: 'not_due' }, 'a refreshed token is not due again');
});

test.serial('a refresh Square refuses for good needs a reconnect; a transient failure keeps the connection active', async (t) => {
  const [revoked, flaky] = [await approvedClient(), await approvedClient()];
  const revokedMerchant = newMerchant();
  await mustConnect(revoked, revokedMerchant);
  await mustConnect(flaky, newMerchant());
  await ageToken(revoked.tenantId);
  await ageToken(flaky.tenantId);
  square.revokeTokensOf(revokedMerchant);
  await connection(revoked);
  await connection(flaky);

  const response = await cron(CRON_SECRET);
  t.like(reportFor(response.body, revoked.tenantId), { outcome: 'needs_reconnect', error: { code: 'REFRESH_TOKEN_REJECTED' } });
  t.like(await connection(revoked), { status: 'needs_reconnect', lastError: { code: 'REFRESH_TOKEN_REJECTED' } });
  await connectionUnavailable(t, revoked.tenantId);
  t.like(reportFor(response.body, flaky.tenantId), { outcome: 'refreshed' });
  // The operator hears of it once, at warn, naming the workspace and the merchant.
  const stopped = logLines((line) => line.status === 'needs_reconnect' && line.tenantId === revoked.tenantId && line.msg?.startsWith('Square connection needs a reconnect'));
  t.is(stopped.length, 1);
  t.like(stopped[0], { level: 'warn', merchantId: revokedMerchant, code: 'REFRESH_TOKEN_REJECTED', recordedBy: 'RecordRefreshFailure' });

  await ageToken(flaky.tenantId);
  // Serial tests run before the others, so the flaky connection is the only one due: it meets the fault.
  square.failNext('/oauth2/token', { status: 503 });
  const outage = await cron(CRON_SECRET);
  t.like(reportFor(outage.body, flaky.tenantId), { outcome: 'failed', error: { code: 'SERVICE_UNAVAILABLE' } });
  t.like(await connection(flaky), { status: 'active', lastError: { code: 'SERVICE_UNAVAILABLE' } });
  t.is(reportFor(outage.body, revoked.tenantId), undefined, 'a connection that needs a reconnect is not retried');
  t.deepEqual(logLines((line) => line.tenantId === flaky.tenantId && line.msg?.startsWith('Square connection')), [], 'a transient failure stops nothing');
  t.is(logLines((line) => line.tenantId === revoked.tenantId && line.msg?.startsWith('Square connection needs a reconnect')).length, 1, 'told once');
});

test.serial('a refresh refused for the app secret keeps the merchant connected and polled; fixing the secret is enough; a proxy’s HTML 401 neither', async (t) => {
  const client = await approvedClient();
  await mustConnect(client, newMerchant());
  await ageToken(client.tenantId);
  await connection(client);
  const rightSecret = square.appSecret;
  // Rotated in the Developer Dashboard; Tally still sends the old SQUARE_APP_SECRET.
  square.rotateAppSecret('sq0csp-rotated-in-the-dashboard');
  t.teardown(() => square.rotateAppSecret(rightSecret));

  const refused = await cron(CRON_SECRET);
  t.like(reportFor(refused.body, client.tenantId), { outcome: 'failed', error: { code: 'APP_CREDENTIALS_REJECTED' } });
  t.like(await connection(client), { status: 'active', lastError: { code: 'APP_CREDENTIALS_REJECTED' } });
  t.true(service.logs.some((line) => line.includes('refused the app credentials') && line.includes('SQUARE_APP_SECRET') && line.includes(client.tenantId)), 'said loudly, with the fix');
  const manual = await call('POST', '/api/v1/client/pos/square/refresh', { token: client.token, body: {} });
  t.like(manual.body, { outcome: 'failed', error: { code: 'APP_CREDENTIALS_REJECTED' } });
  const poll = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
  t.like(poll.body.connections.find((c: { tenantId: string }) => c.tenantId === client.tenantId), { status: 'ok' }, 'still polled');

  square.rotateAppSecret(rightSecret);
  // Every due connection meets it (others may be due too), so a lasting fault rather than the next request's.
  const clear = square.failUntilCleared('/oauth2/token', { status: 401, html: '<html><body>401 Authorization Required</body></html>' });
  const proxied = await cron(CRON_SECRET).finally(clear);
  t.like(reportFor(proxied.body, client.tenantId), { outcome: 'failed', error: { code: 'HTTP_401' } });
  t.like(await connection(client), { status: 'active' });

  const fixed = await cron(CRON_SECRET);
  t.like(reportFor(fixed.body, client.tenantId), { outcome: 'refreshed', error: null });
  t.like(await connection(client), { status: 'active' });
});

test.serial('a proxy’s HTML 401 on a poll fails that poll only: the connection stays active and the next poll runs; Square’s own refusal needs a reconnect', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  await mustConnect(client, merchantId);
  await connection(client); // The poll lists connections from the read model: wait until it has this one.
  const poll = async () => {
    const response = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
    return response.body.connections.find((c: { tenantId: string }) => c.tenantId === client.tenantId);
  };
  const clear = square.failUntilCleared('/v2/locations', { status: 401, html: '<html><body>401 Authorization Required</body></html>' });
  const proxied = await poll().finally(clear);
  t.like(await connection(client), { status: 'active', lastError: null });
  // The locations could not be read; the refunds (another list) may have been.
  t.like(proxied, { errors: ['HTTP_401: <html><body>401 Authorization Required</body></html>'] });
  t.not(proxied.status, 'ok');
  t.like(await poll(), { status: 'ok', errors: [] }, 'retried on the next run');

  square.revokeTokensOf(merchantId);
  t.like(await poll(), { status: 'failed' });
  t.like(await connection(client), { status: 'needs_reconnect', lastError: { code: 'ACCESS_TOKEN_REVOKED' } });
  // Said once at warn with the workspace and the merchant (the poll's own line is info), however often it is met again.
  await poll();
  const stopped = logLines((line) => line.tenantId === client.tenantId && line.msg?.startsWith('Square connection needs a reconnect'));
  t.is(stopped.length, 1);
  t.like(stopped[0], { level: 'warn', merchantId, status: 'needs_reconnect', code: 'ACCESS_TOKEN_REVOKED', recordedBy: 'RecordAccessRefused' });
});

test.serial('a refresh racing a disconnect is skipped as superseded, not reported as a token Square rejected', async (t) => {
  const client = await approvedClient();
  await mustConnect(client, newMerchant());
  const tokenCalls = () => square.requests.filter((r) => r.path === '/oauth2/token').length;
  const before = tokenCalls();
  // Square answers the refresh only once the disconnect has revoked the grant: it then rejects the refresh token.
  const held = heldAnswer();
  t.teardown(held.release);
  square.failNext('/oauth2/token', held.fault);
  const refresh = call('POST', '/api/v1/client/pos/square/refresh', { token: client.token, body: {} });
  await eventually(async () => tokenCalls(), (n) => n > before, { timeoutMs: 10_000, intervalMs: 20 });
  t.is((await call('DELETE', '/api/v1/client/pos/square', { token: client.token })).status, 200);
  held.release();
  const refreshed = await refresh;
  t.is(refreshed.status, 200, JSON.stringify(refreshed.body));
  t.like(refreshed.body, { outcome: 'skipped', error: { code: 'SUPERSEDED' } });
  t.like(await connection(client), { status: 'revoked' });
  t.false((await streamTypes(`square-connection-${client.tenantId}`)).includes('SquareTokenRefreshFailed'), 'nothing was recorded');
});

test('a client refreshes its token on demand', async (t) => {
  const client = await approvedClient();
  const none = await call('POST', '/api/v1/client/pos/square/refresh', { token: client.token, body: {} });
  t.is(none.status, 409);
  t.like(none.body.error, { code: 'CONNECTION_UNAVAILABLE' });
  t.regex(none.body.error.message, /connect one with GET \/api\/v1\/client\/pos\/square\/connect/);

  await mustConnect(client, newMerchant());
  const before = await storedTokens(client.tenantId);
  const response = await call('POST', '/api/v1/client/pos/square/refresh', { token: client.token, body: {} });
  t.is(response.status, 200);
  t.like(response.body, { tenantId: client.tenantId, outcome: 'refreshed' });
  t.not((await storedTokens(client.tenantId)).accessToken, before.accessToken);
});

// --- Undecryptable tokens -------------------------------------------------------------------------------------

test('a token a key this instance holds cannot open is a visible state, recorded once, not a crash; a reconnect fixes it', async (t) => {
  const client = await approvedClient();
  const merchantId = newMerchant();
  await mustConnect(client, merchantId);
  const tokens = await storedTokens(client.tenantId);
  const heldKey = keyring(ENCRYPTION_KEY).current.id;
  await damageStoredToken(client.tenantId);

  await connectionUnavailable(t, client.tenantId);
  await connectionUnavailable(t, client.tenantId);
  const types = await streamTypes(`square-connection-${client.tenantId}`);
  t.is(types.filter((type) => type === 'SquareTokenDecryptionFailed').length, 1, 'recorded once');
  t.like(await connection(client), { status: 'token_undecryptable', lastError: { code: 'TOKEN_UNDECRYPTABLE' } });

  const debug = (await call('GET', '/api/v1/client/debug/square', { token: client.token })).body;
  t.like(debug.token, { stored: true, decrypts: false, keyId: heldKey });
  t.like(debug.connection, { status: 'token_undecryptable' });
  t.true(debug.problems.some((p: string) => p.includes(heldKey)));

  // The operator restores the key the row needs: the next use finds it decrypts and the connection is active again.
  await vault().put(client.tenantId, tokens);
  t.is((await service.tally.connections.apiFor(client.tenantId)).merchantId, merchantId);
  t.is((await connection(client)).status, 'active');

  await damageStoredToken(client.tenantId);
  await connectionUnavailable(t, client.tenantId);
  t.is((await connect(client, merchantId)).toString(), connected);
  t.like(await connection(client), { status: 'active', lastError: null });
  t.is((await service.tally.connections.apiFor(client.tenantId)).merchantId, merchantId);
});

test('a token under a key this instance does not hold (instances configured apart mid-rotation) fails here, retryably, and records nothing', async (t) => {
  const client = await approvedClient();
  await mustConnect(client, newMerchant());
  const tokens = await storedTokens(client.tenantId);
  // Sealed under a key another instance holds and this one does not.
  await postgresTokenVault(service.database.pool, keyring(randomBytes(32).toString('base64'))).put(client.tenantId, tokens);
  const error = await t.throwsAsync(service.tally.connections.apiFor(client.tenantId));
  t.is((error as { code?: string }).code, 'ENCRYPTION_KEY_NOT_HELD');
  await ageToken(client.tenantId);
  await connection(client); // the cron finds connections through the read model
  const run = await cron(CRON_SECRET);
  t.like(reportFor(run.body, client.tenantId), { outcome: 'failed', error: { code: 'ENCRYPTION_KEY_NOT_HELD' } });
  const types = await streamTypes(`square-connection-${client.tenantId}`);
  t.false(types.includes('SquareTokenDecryptionFailed'), 'nothing recorded on the stream every instance shares');
  t.is((await connection(client)).status, 'active');
});

test('a token under a key no instance has held for over an hour (the key lost, not a rotation under way) is recorded as undecryptable, visible to the merchant', async (t) => {
  const client = await approvedClient();
  await mustConnect(client, newMerchant());
  const tokens = await storedTokens(client.tenantId);
  await postgresTokenVault(service.database.pool, keyring(randomBytes(32).toString('base64'))).put(client.tenantId, tokens);
  await service.database.pool.query(`UPDATE square_token_vault SET updated_at = now() - interval '2 hours' WHERE tenant_id = $1`, [client.tenantId]);
  await connectionUnavailable(t, client.tenantId);
  const types = await streamTypes(`square-connection-${client.tenantId}`);
  t.is(types.filter((type) => type === 'SquareTokenDecryptionFailed').length, 1);
  t.like(await connection(client), { status: 'token_undecryptable', lastError: { code: 'TOKEN_UNDECRYPTABLE' } });
});

// --- Debug endpoint ---------------------------------------------------------------------------------------------

test('the debug endpoint answers runbook 1: variables set, environment, OAuth host, URLs to register, connection, token, last webhook and poll', async (t) => {
  const client = await approvedClient();
  const before = await call('GET', '/api/v1/client/debug/square', { token: client.token });
  t.is(before.status, 200);
  t.deepEqual(before.body.variables, {
    SQUARE_APP_ID: true,
    SQUARE_APP_SECRET: true,
    SQUARE_ENVIRONMENT: true,
    API_BASE_URL: true,
    FRONTEND_URL: true,
    ENCRYPTION_KEY: true,
    SQUARE_WEBHOOK_SIGNATURE_KEY: false, // this service takes no webhooks
  });
  t.like(before.body, {
    tenantId: client.tenantId,
    environment: 'sandbox',
    oauthHost: new URL(square.url).host,
    authorizeEndpoint: `${square.url}/oauth2/authorize`,
    hostOverridden: true,
    dashboard: { redirectUri: REDIRECT_URI, webhookNotificationUrl: `${API_BASE_URL}/api/v1/webhooks/square` },
    connection: { status: 'not_connected', merchantId: null },
    token: { stored: false, decrypts: null },
    lastWebhookAt: null,
    lastPollAt: null,
  });
  t.true(before.body.problems.some((p: string) => /SQUARE_BASE_URL overrides it/.test(p)), 'the override is flagged: it is not connect.squareupsandbox.com');
  t.true(before.body.problems.some((p: string) => /never connected Square/.test(p)));
  const text = JSON.stringify(before.body);
  for (const secret of [square.appSecret, ENCRYPTION_KEY, CRON_SECRET, square.appId]) t.false(text.includes(secret), 'booleans only, never values');

  const merchantId = newMerchant();
  await mustConnect(client, merchantId);
  const polledAt = new Date().toISOString();
  await service.tally.connections.recordPoll(client.tenantId, { cursor: null, polledAt, summary: { seen: 0 } }, { actor: 'system:poll' });
  const receivedAt = new Date(Date.now() - 30_000);
  await service.database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, received_at) VALUES ($1, $2, 'payment.updated', '{}', $3)`,
    [uuid(), merchantId, receivedAt],
  );

  const after = (await call('GET', '/api/v1/client/debug/square', { token: client.token })).body;
  t.like(after, {
    connection: { status: 'active', merchantId, lastError: null },
    token: { stored: true, decrypts: true, encryptedWithCurrentKey: true, keyId: keyring(ENCRYPTION_KEY).current.id },
    lastWebhookAt: receivedAt.toISOString(),
    lastPollAt: polledAt,
  });
  t.is(Date.parse(after.token.expiresAt), Date.parse(after.connection.tokenExpiresAt));
  t.false(after.problems.some((p: string) => /never connected|decrypt/.test(p)));

  const asAdmin = await call('GET', `/api/v1/client/debug/square?tenantId=${client.tenantId}`, { token: adminToken });
  t.like(asAdmin.body, { tenantId: client.tenantId, connection: { merchantId } });
  t.is((await call('GET', '/api/v1/client/debug/square', { token: adminToken })).status, 400, 'an admin names the tenant');
});

test('after switching merchants, the debug endpoint’s lastPollAt is the new merchant’s poll, not the previous one’s', async (t) => {
  const client = await approvedClient();
  const [first, next] = [newMerchant(), newMerchant()];
  await mustConnect(client, first);
  const polledAt = new Date().toISOString();
  await service.tally.connections.recordPoll(client.tenantId, { cursor: polledAt, polledAt, summary: { seen: 0 } }, { actor: 'system:poll' });
  const debug = async () => (await call('GET', '/api/v1/client/debug/square', { token: client.token })).body;
  t.like(await debug(), { connection: { merchantId: first }, lastPollAt: polledAt });

  await mustConnect(client, next);
  t.like(await debug(), { connection: { merchantId: next }, lastPollAt: null }, `${next} was never polled`);
  const nextPolledAt = new Date().toISOString();
  await service.tally.connections.recordPoll(client.tenantId, { cursor: null, polledAt: nextPolledAt, summary: { seen: 0 } }, { actor: 'system:poll' });
  t.like(await debug(), { connection: { merchantId: next }, lastPollAt: nextPolledAt });

  // Back to the first merchant, whose runs since were all quiet (they record no poll): its old record is not the new connection's.
  await service.tally.store.append(pollStream(client.tenantId), [connectionEvents.encode({ type: 'SquarePaymentsPolled', data: { tenantId: client.tenantId, merchantId: first, cursor: polledAt, polledAt: nextPolledAt, summary: { seen: 1 } } }, uuid(), { actor: 'system:poll' })], 'any');
  await mustConnect(client, first);
  t.like(await debug(), { connection: { merchantId: first }, lastPollAt: null }, 'not the poll of the first connection to it');
});

test('a poll of the previous merchant recorded after the switch (a run that began before it) does not set the new connection\'s last poll', async (t) => {
  const client = await approvedClient();
  const [first, next] = [newMerchant(), newMerchant()];
  await mustConnect(client, first);
  await mustConnect(client, next);
  t.is((await connection(client)).lastPolledAt, null);
  const late = { tenantId: client.tenantId, merchantId: first, cursor: null, polledAt: new Date().toISOString(), summary: { seen: 0 } };
  await service.tally.store.append(pollStream(client.tenantId), [connectionEvents.encode({ type: 'SquarePaymentsPolled', data: late }, uuid(), { actor: 'system:poll' })], 'any');
  const view = await connection(client); // read-your-writes: the stream's last event (the connection's), then the poll's
  await service.tally.runner.waitForPosition((await service.tally.store.headPosition())!, 15_000);
  t.like(await connection(client), { merchantId: next, lastPolledAt: null }, JSON.stringify(view));
});

test('without SQUARE_APP_ID and SQUARE_APP_SECRET: connect is 503 CONFIGURATION_MISSING, the callback says configuration_missing, the debug endpoint shows why', async (t) => {
  const bare = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL, SQUARE_ENVIRONMENT: 'production', FRONTEND_URL });
  t.teardown(() => bare.stop());
  const bareCall = api(bare.url);
  const admin = await tokenFor(`admin-${uuid()}`, ADMIN_EMAIL);
  await bareCall('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  const userId = uuid();
  const token = await tokenFor(userId, `bare-${userId.slice(0, 8)}@square.test`);
  await bareCall('POST', '/api/v1/me/register', { token, body: { role: 'client', businessName: 'Bare' } });
  await bareCall('PATCH', `/api/v1/admin/users/${userId}/approve`, { token: admin });

  const connectResponse = await bareCall('GET', '/api/v1/client/pos/square/connect', { token });
  t.is(connectResponse.status, 503);
  t.is(connectResponse.body.error.code, 'CONFIGURATION_MISSING');
  t.regex(connectResponse.body.error.message, /set SQUARE_APP_ID and SQUARE_APP_SECRET/);

  const redirect = await bareCall('GET', '/api/v1/oauth/square/callback?code=abc&state=def');
  t.is(redirect.status, 302);
  t.is(redirect.headers.get('location'), failedWith('configuration_missing'));

  const debug = (await bareCall('GET', '/api/v1/client/debug/square', { token })).body;
  t.like(debug, {
    variables: { SQUARE_APP_ID: false, SQUARE_APP_SECRET: false, SQUARE_ENVIRONMENT: true, API_BASE_URL: false, FRONTEND_URL: true, ENCRYPTION_KEY: false, SQUARE_WEBHOOK_SIGNATURE_KEY: false },
    environment: 'production',
    oauthHost: 'connect.squareup.com',
    hostOverridden: false,
  });
  t.deepEqual(debug.generatedForDevelopment.includes('ENCRYPTION_KEY'), true);
  t.true(debug.problems.includes('SQUARE_APP_ID is not set: set it in the API\'s environment and redeploy'));
  // Every webhook is refused without the signature key: the diagnosis runbook 2 sends operators to says so.
  t.true(debug.problems.some((p: string) => /^SQUARE_WEBHOOK_SIGNATURE_KEY is not set: every Square webhook is answered 503 WEBHOOKS_NOT_CONFIGURED/.test(p)), debug.problems.join('\n'));
  t.false(debug.problems.some((p: string) => /OAuth host/.test(p)), 'production uses connect.squareup.com');
});

test('the callback cannot be turned into an open redirect: whatever the query or headers, it answers 302 to <FRONTEND_URL>/pos with one known parameter', async (t) => {
  const client = await approvedClient();
  const reasons = new Set(['access_denied', 'invalid_state', 'token_exchange_failed', 'merchant_already_connected', 'configuration_missing']);
  const evil = ['https://evil.test/steal', '//evil.test', '/\\evil.test', 'javascript:alert(1)', 'https://app.tally.test.evil.test/', '%0d%0aLocation: https://evil.test'];
  const hostile: { query: string; headers?: Record<string, string> }[] = [
    ...evil.flatMap((target) =>
      ['redirect_uri', 'redirect', 'next', 'return_to', 'returnTo', 'url', 'continue'].map((name) => ({ query: new URLSearchParams({ [name]: target, error: 'access_denied' }).toString() })),
    ),
    ...evil.map((target) => ({ query: new URLSearchParams({ error: target, error_description: target }).toString() })),
    ...evil.map((target) => ({ query: new URLSearchParams({ code: 'sq0cgp-x', state: target }).toString() })),
    { query: 'error=access_denied\r\nLocation:%20https://evil.test' },
    { query: 'error=access_denied', headers: { host: 'evil.test', 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'http' } },
  ];
  const { code, state } = await consent(client, newMerchant());
  hostile.push({ query: new URLSearchParams({ code, state, redirect_uri: 'https://evil.test', next: '//evil.test' }).toString() });

  const cookie = browserOf.get(state) ?? '';
  for (const { query, headers } of hostile) {
    // Sent from the browser that started the flow: the genuine consent among them must connect.
    const response = await call('GET', `/api/v1/oauth/square/callback?${query}`, { headers: { cookie, ...headers } });
    t.is(response.status, 302, query);
    const location = response.headers.get('location') ?? '';
    t.true(location.startsWith(`${FRONTEND_URL}/pos?`), `${query} → ${location}`);
    const target = new URL(location);
    t.is(target.origin, FRONTEND_URL);
    const params = [...target.searchParams];
    t.is(params.length, 1, location);
    const [name, value] = params[0]!;
    t.true((name === 'connected' && value === 'square') || (name === 'error' && reasons.has(value)), location);
  }
  t.is((await connection(client)).status, 'active', 'the one genuine consent among them connected, and sent the browser home too');
});

test.serial('a workspace that let its merchant go does not revoke it at Square when it connects another: the workspace holding it now keeps its grant', async (t) => {
  const [a, b] = [await approvedClient(), await approvedClient()];
  const [m1, m2] = [newMerchant(), newMerchant()];
  const revokesOf = (merchantId: string) => square.requests.filter((r) => r.path === '/oauth2/revoke' && (r.body as { merchant_id?: string }).merchant_id === merchantId).length;
  await mustConnect(a, m1);
  t.is((await call('DELETE', '/api/v1/client/pos/square', { token: a.token })).status, 200);
  await mustConnect(b, m1);
  const held = await storedTokens(b.tenantId);
  const before = revokesOf(m1);
  // A's connection is revoked (it disconnected): connecting M2 has no previous merchant to give up.
  await mustConnect(a, m2);
  t.is(revokesOf(m1), before, 'no revoke of the merchant another workspace holds');
  t.is((await fetch(`${square.url}/v2/locations`, { headers: { authorization: `Bearer ${held.accessToken}` } })).status, 200, "B's grant is alive at Square");
  t.is((await connection(b)).status, 'active');
});
