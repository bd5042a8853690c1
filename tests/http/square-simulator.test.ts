/**
 * The built-in Square simulator as development uses it: mounted in the real service (SQUARE_SIMULATOR=on), the
 * merchant's trip through the consent page played by following redirects with a cookie jar (as a browser or
 * `curl -c/-b` would), payments and refunds announced by webhooks the service verifies with its signature key,
 * Square's refusals in Square's error shape, and the state kept across a restart in DATA_DIR.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { v4 as uuid } from 'uuid';
import { freePort } from '../../adapters/postgres/embedded.ts';
import { DEMO_MERCHANT, SIMULATOR_APP_ID, SIMULATOR_APP_SECRET } from '../../adapters/square/simulator/development.ts';
import { ConfigError, parseEnvironment } from '../../adapters/config.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { api, browse, cookieJar, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';

const ADMIN_EMAIL = 'root@simulator.test';

async function startWithSimulator(port: number, dataDir: string, databaseUrl?: string): Promise<TestService> {
  return startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: ADMIN_EMAIL,
    SQUARE_SIMULATOR: 'on',
    PORT: String(port),
    API_BASE_URL: `http://127.0.0.1:${port}`,
    FRONTEND_URL: `http://127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  });
}



let port: number;
let dataDir: string;
let service: TestService;
let call: ReturnType<typeof api>;
let admin: string;
let merchant: string;
let jane: string;
let simulator: string;

test.before(async () => {
  port = await freePort();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tally-simulator-'));
  service = await startWithSimulator(port, dataDir);
  call = api(service.url);
  simulator = `${service.url}/square-simulator`;
  admin = await tokenFor(`admin-${uuid()}`, ADMIN_EMAIL);
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  const merchantId = uuid();
  merchant = await tokenFor(merchantId, 'owner@bakery.simulator.test');
  await call('POST', '/api/v1/me/register', { token: merchant, body: { role: 'client', businessName: 'Corner Bakery' } });
  await call('PATCH', `/api/v1/admin/users/${merchantId}/approve`, { token: admin });
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: merchant, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: merchant });
  jane = await tokenFor(uuid(), 'jane@simulator.test');
  await call('POST', '/api/v1/me/register', { token: jane, body: { role: 'consumer' } });
});
test.after.always(async () => {
  await service?.stop();
});

const control = async (method: string, route: string, body?: unknown) => {
  const response = await fetch(`${simulator}/simulator${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as any };
};

test.serial('the consent page asks "Allow Tally to access Demo Bakery?"; Deny comes back as access_denied on /pos', async (t) => {
  const connect = await call('GET', '/api/v1/client/pos/square/connect', { token: merchant });
  const jar = cookieJar(connect.headers);
  const page = await browse(connect.body.url, jar);
  t.is(page.response.status, 200);
  t.regex(page.text, /Allow Tally to access Demo Bakery\?/);
  const authorizeUrl = page.visited.at(-1)!;
  t.true(authorizeUrl.startsWith(`${simulator}/oauth2/authorize?`), 'Square’s authorize URL contract: the simulator’s page');

  const denied = await browse(authorizeUrl, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=deny' });
  t.is(new URL(denied.visited.at(-1)!).pathname, '/pos');
  t.is(new URL(denied.visited.at(-1)!).searchParams.get('error'), 'access_denied');
  t.regex(denied.text, /You chose Deny/);
});

test.serial('Allow connects Demo Bakery; a payment by Jane is credited by webhook; a refund above what remains is refused, one within it reverses', async (t) => {
  const connect = await call('GET', '/api/v1/client/pos/square/connect', { token: merchant });
  const jar = cookieJar(connect.headers);
  const page = await browse(connect.body.url, jar);
  const allowed = await browse(page.visited.at(-1)!, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=allow' });
  t.is(allowed.visited.at(-1), `${service.url}/pos?connected=square`);
  t.regex(allowed.text, /Square is connected/);
  const me = await call('GET', '/api/v1/client/debug/square', { token: merchant });
  t.is(me.body.connection.merchantId, DEMO_MERCHANT.merchantId);
  // The simulator set Square's variables and host: the diagnosis says Square is simulated, and nothing it set is a problem.
  t.regex(me.body.problems[0], /^Square is simulated/);
  t.false(me.body.problems.some((p: string) => /SQUARE_BASE_URL|is not set/.test(p)), me.body.problems.join('; '));

  const paid = await control('POST', '/payments', { merchant_id: DEMO_MERCHANT.merchantId, amount: 1099, tip: 100, email: 'jane@simulator.test' });
  t.is(paid.status, 200);
  t.like(paid.body.payment, { status: 'COMPLETED', amount_money: { amount: 1099, currency: 'USD' }, total_money: { amount: 1199, currency: 'USD' } });
  t.deepEqual(
    paid.body.webhooks.map((w: any) => [w.type, w.status]),
    [['customer.created', 200], ['payment.created', 200], ['payment.updated', 200]],
    'each change is announced, signed with the key the service verifies',
  );
  t.is(paid.body.webhooks.at(-1).processed, 'credited');
  const wallets = await call('GET', '/api/v1/me/wallets', { token: jane });
  t.is(wallets.body[0]?.balance, 10, '1 point per $1 of 10.99, tip excluded: visible once the trigger returns');

  const tooMuch = await control('POST', '/refunds', { payment_id: paid.body.payment.id, amount: 1200 });
  t.is(tooMuch.status, 400);
  t.like(tooMuch.body.errors[0], { category: 'INVALID_REQUEST_ERROR', code: 'REFUND_AMOUNT_INVALID', field: 'amount_money.amount' });
  const refund = await control('POST', '/refunds', { payment_id: paid.body.payment.id, amount: 550 });
  t.is(refund.status, 200);
  t.is(refund.body.webhooks.at(-1).processed, 'refund_applied');
  const after = await call('GET', '/api/v1/me/wallets', { token: jane });
  t.is(after.body[0]?.balance, 5, 'the refund took back 5 points (550 of the 1099 amount, the tip given back last; floored in the merchant’s favour), visible once the trigger returns');

  const unknown = await control('POST', '/payments', { merchant_id: 'NO-SUCH-MERCHANT', amount: 100 });
  t.is(unknown.status, 404);
  t.like(unknown.body.errors[0], { code: 'NOT_FOUND' });
  const badAmount = await control('POST', '/payments', { merchant_id: DEMO_MERCHANT.merchantId, amount: 0 });
  t.is(badAmount.status, 400);
  t.is(badAmount.body.errors[0].field, 'amount');
});

/**
 * The answer README shows for `command` in a code block: its `# →` line and the `#` lines that go on with it, as JSON.
 * README's examples run on the simulator's Demo Bakery after the quick start, so they are checked against it here.
 */
async function readmeAnswer(command: string): Promise<any> {
  const lines = (await readFile(new URL('../../README.md', import.meta.url), 'utf8')).split('\n');
  const start = lines.findIndex((line) => line.startsWith(command));
  const arrow = lines.findIndex((line, i) => i > start && line.startsWith('# →'));
  const answer = [lines[arrow]!.slice(3)];
  for (let i = arrow + 1; lines[i]?.startsWith('#  '); i++) answer.push(lines[i]!.slice(1));
  return JSON.parse(answer.join(''));
}

test.serial("README's locations, location rule and preview examples answer on Demo Bakery what README shows", async (t) => {
  // Locations: the answer README shows, exactly (until 2026-12-08 it named LMAIN and LAIRPORT; Demo Bakery had one location).
  const locations = await call('GET', '/api/v1/client/locations', { token: merchant });
  t.deepEqual(locations.body, await readmeAnswer('curl -s $B/api/v1/client/locations'));
  const [main, airport] = (locations.body.locations as { id: string }[]).map((l) => l.id);
  // "The airport kiosk does not earn": a rule limited to the main location, a payment at the other one.
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: merchant, body: { kind: 'spend', points: 1, per: 100, basis: 'amount', locationIds: [main] } });
  t.is(rule.status, 201, JSON.stringify(rule.body));
  await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: merchant });
  const atAirport = await control('POST', '/payments', { merchant_id: DEMO_MERCHANT.merchantId, amount: 1000, email: 'jane@simulator.test', location_id: airport });
  t.is(atAirport.body.webhooks.at(-1).processed, 'location_excluded');
  const atMain = await control('POST', '/payments', { merchant_id: DEMO_MERCHANT.merchantId, amount: 1000, email: 'jane@simulator.test' });
  t.is(atMain.body.webhooks.at(-1).processed, 'credited');
  const promotion = await call('POST', '/api/v1/client/promotions', {
    token: merchant,
    body: { name: 'Double Tuesday afternoons', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-01-05', endsOn: '2027-01-26', daysOfWeek: ['TUE'], hours: [{ from: '14:00', to: '17:00' }], locationIds: [main], minimumSpend: 500, limitPerCustomerPerDay: 1 },
  });
  t.is(promotion.status, 201, JSON.stringify(promotion.body));

  // Preview: `trigger payment --item VARLATTE:2 --item VARMUFFIN` (what the CLI sends), then README's preview of it.
  const sale = await control('POST', '/payments', {
    merchant_id: DEMO_MERCHANT.merchantId,
    line_items: [{ catalog_object_id: 'VARLATTE', quantity: '2' }, { catalog_object_id: 'VARMUFFIN', quantity: '1' }],
    email: 'jane@simulator.test',
  });
  const preview = await call('POST', '/api/v1/client/reward-rules/preview', {
    token: merchant,
    body: { rule: { kind: 'spend', points: 1, per: 100, basis: 'amount', taxMode: 'before_tax', excludedItemVariationIds: ['VARMUFFIN'] }, paymentId: sale.body.payment.id },
  });
  t.is(preview.status, 200, JSON.stringify(preview.body));
  const shown = await readmeAnswer('curl -s -X POST $B/api/v1/client/reward-rules/preview');
  // The ids and the time are the payment's own; everything else as README shows it.
  const { paymentId, orderId, createdAt, ...payment } = preview.body.payment;
  t.truthy(paymentId && orderId && createdAt);
  const { paymentId: _p, orderId: _o, createdAt: _c, ...shownPayment } = shown.payment;
  t.deepEqual({ ...preview.body, payment }, { ...shown, payment: shownPayment });
});

test.serial('a grant made through authorize and token reads payments; a bad cursor and an unknown token are refused in Square’s shape', async (t) => {
  const authorize = new URL(`${simulator}/oauth2/authorize`);
  authorize.search = new URLSearchParams({ client_id: SIMULATOR_APP_ID, scope: 'PAYMENTS_READ', session: 'false', state: 's1', redirect_uri: 'http://127.0.0.1:9/cb' }).toString();
  const decided = await fetch(authorize, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=allow' });
  t.is(decided.status, 302);
  const back = new URL(decided.headers.get('location')!);
  t.is(back.searchParams.get('state'), 's1');
  t.is(back.searchParams.get('response_type'), 'code');
  const tokenAnswer = await fetch(`${simulator}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: SIMULATOR_APP_ID, client_secret: SIMULATOR_APP_SECRET, grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: 'http://127.0.0.1:9/cb' }),
  });
  const grant = (await tokenAnswer.json()) as any;
  t.is(grant.merchant_id, DEMO_MERCHANT.merchantId);
  const read = (query: string, bearer = grant.access_token) => fetch(`${simulator}/v2/payments${query}`, { headers: { authorization: `Bearer ${bearer}` } });
  t.is((await read('')).status, 200);
  const badCursor = await read('?cursor=not-a-cursor');
  t.is(badCursor.status, 400);
  t.like(((await badCursor.json()) as any).errors[0], { category: 'INVALID_REQUEST_ERROR', code: 'INVALID_CURSOR', field: 'cursor' });
  const unknown = await read('', 'EAAAunknown');
  t.is(unknown.status, 401);
  t.like(((await unknown.json()) as any).errors[0], { category: 'AUTHENTICATION_ERROR', code: 'UNAUTHORIZED' });
  const wrongClient = await fetch(`${simulator}/oauth2/authorize?client_id=someone-else&scope=PAYMENTS_READ`);
  t.is(wrongClient.status, 400, 'an unknown application gets an error page, never a redirect');
});

test.serial('the CLI names a bad flag and exits 2; a refusal exits 1', async (t) => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      // The compiled command (tests/run.ts compiles cli/ with the tests): no TypeScript loader to start each time.
      const child = spawn(process.execPath, ['.build/cli/square.js', ...args], {
        env: { ...process.env, SQUARE_SIMULATOR_URL: simulator },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c) => (out += String(c)));
      child.stderr.on('data', (c) => (out += String(c)));
      child.on('exit', (code) => resolve({ code, out }));
    });
  const typo = await run(['trigger', 'payment', '--merchant', DEMO_MERCHANT.merchantId, '--amout', '5']);
  t.is(typo.code, 2);
  t.regex(typo.out, /--amout/);
  const badStatus = await run(['trigger', 'payment', '--merchant', DEMO_MERCHANT.merchantId, '--amount', '5', '--status', 'BOGUS']);
  t.is(badStatus.code, 2);
  t.regex(badStatus.out, /--status must be one of COMPLETED/);
  const missing = await run(['trigger', 'refund', '--payment', 'X']);
  t.is(missing.code, 2);
  t.regex(missing.out, /--amount is required/);
  const both = await run(['trigger', 'payment', '--merchant', 'M', '--amount', '5', '--email', 'a@b.c', '--anonymous']);
  t.is(both.code, 2);
  const refused = await run(['trigger', 'revoke', '--merchant', 'NO-SUCH-MERCHANT']);
  t.is(refused.code, 1);
  t.regex(refused.out, /NOT_FOUND/);
  const listed = await run(['list', 'payments', '--merchant', DEMO_MERCHANT.merchantId]);
  t.is(listed.code, 0);
  t.regex(listed.out, /COMPLETED {2}10\.99 USD \+ tip 1\.00 USD {2}refunded 5\.50 USD/);
  // Newest first, as Square lists them: the README's quick start refunds `payments.0`, the payment it just made.
  const newest = await run(['trigger', 'payment', '--merchant', DEMO_MERCHANT.merchantId, '--amount', '250', '--anonymous', '--json']);
  t.is(newest.code, 0, newest.out);
  const listedJson = await run(['list', 'payments', '--merchant', DEMO_MERCHANT.merchantId, '--json']);
  t.is(JSON.parse(listedJson.out).payments[0].id, JSON.parse(newest.out).payment.id);
});

test.serial('a request through a proxy or tunnel on this machine (its proxy headers) is refused: no payment is made', async (t) => {
  const before = await control('GET', '/payments');
  // What nginx, ngrok or cloudflared add: the socket is loopback, the client is anyone.
  const headers: [string, string][] = [['X-Forwarded-For', '203.0.113.5'], ['Forwarded', 'for=203.0.113.5'], ['X-Real-IP', '203.0.113.5'], ['X-Forwarded-Host', 'abc.ngrok.app']];
  for (const [name, value] of headers) {
    const response = await fetch(`${simulator}/simulator/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [name]: value },
      body: JSON.stringify({ merchant_id: DEMO_MERCHANT.merchantId, amount: 500000, email: 'jane@simulator.test' }),
    });
    const body = (await response.json()) as any;
    t.is(response.status, 403, name);
    t.is(body.errors[0].code, 'FORBIDDEN');
    t.regex(body.errors[0].detail, new RegExp(`proxy or tunnel \\(it carries ${name.toLowerCase()}\\)`));
  }
  const page = await fetch(`${simulator}/oauth2/authorize?client_id=${SIMULATOR_APP_ID}`, { headers: { 'X-Forwarded-For': '203.0.113.5' } });
  t.is(page.status, 403, 'the consent page too');
  t.deepEqual((await control('GET', '/payments')).body, before.body, 'no payment was made');
});

test.serial('the simulator’s state (merchants, payments, grants) survives a restart in the same DATA_DIR', async (t) => {
  const before = await control('GET', '/payments');
  const databaseUrl = service.database.url;
  await service.tally.stop();
  const again = await startWithSimulator(port, dataDir, databaseUrl);
  // The first service's database stays with it (its stop drops it); this one shares it until the end.
  service = { ...again, stop: () => again.tally.stop().then(() => service.database.drop()), database: service.database };
  const after = await control('GET', '/payments');
  t.deepEqual(after.body, before.body);
  const paid = await control('POST', '/payments', { merchant_id: DEMO_MERCHANT.merchantId, amount: 500, email: 'jane@simulator.test' });
  t.is(paid.body.webhooks.at(-1).processed, 'credited', 'the grant made before the restart still works: the service reads the customer with it');
});

test('production refuses SQUARE_SIMULATOR=on; auto means development without SQUARE_APP_ID', (t) => {
  const error = t.throws(() => parseEnvironment({ NODE_ENV: 'production', SQUARE_SIMULATOR: 'on' }), { instanceOf: ConfigError });
  t.regex(error!.message, /SQUARE_SIMULATOR: the Square simulator is for development/);
  t.throws(() => parseEnvironment({ NODE_ENV: 'development', SQUARE_SIMULATOR: 'on', SQUARE_APP_ID: 'sq0idp-x' }), { instanceOf: ConfigError });
});
