/**
 * Every JSON endpoint, from the route table itself (a new route is covered without editing this file): a
 * malformed body is 400, a body in another format is 415, a body over 1 MB is 413, and an unknown field is
 * refused with a 400 that names it (the rule: unknown body fields are refused; unknown query parameters are
 * ignored). Each answer says what to fix.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import type { RouteSpec } from '../../http/routes/table.ts';

const CRON_SECRET = 'cron-secret-for-validation-01234';
/** Routes that take no body: a body sent to them is ignored. Every other write must refuse unknown fields. */
const NO_BODY = new Set([
  'patch /api/v1/admin/users/:userId/approve',
  'patch /api/v1/admin/users/:userId/reinstate',
  'post /api/v1/client/reward-rules/:ruleId/deactivate',
  'post /api/v1/client/promotions/:promotionId/end',
  'post /api/v1/client/reward-rules/retire',
  'post /api/v1/client/pos/square/refresh',
  'post /api/v1/internal/cron/square-refresh-tokens',
  'post /api/v1/internal/cron/square-poll-payments',
  'post /api/v1/admin/webhooks/:eventId/retry',
  'post /api/v1/admin/projections/:name/rebuild',
  'post /api/v1/admin/projections/:name/retry',
  'post /api/v1/admin/jobs/:jobId/cancel',
  'delete /api/v1/admin/users/:userId/personal-data',
  'delete /api/v1/client/pos/square',
  'post /api/v1/me/phone/verification',
]);

/** A body that is valid but for the unknown field, where `{}` alone would fail on something else first. */
const VALID_BODY: Record<string, Record<string, unknown>> = {
  'post /api/v1/client/reward-rules': { kind: 'spend', points: 1, per: 100, basis: 'amount' },
  'post /api/v1/client/reward-rules/preview': { order: { lines: [] } },
};

/**
 * Answers 404 for a resource the caller cannot see before it reads the body (tenant isolation: a wallet of another
 * tenant is missing whatever the body says). Its unknown-field refusal is tested with a real wallet in wallets.test.ts.
 */
const RESOURCE_FIRST = new Set([
  'post /api/v1/client/wallets/:walletId/redeem',
  'post /api/v1/client/wallets/:walletId/adjust',
  'post /api/v1/client/wallets/:walletId/rewards',
  'post /api/v1/client/wallets/:walletId/rewards/:issuedRewardId/redeem',
  'post /api/v1/client/wallets/:walletId/rewards/:issuedRewardId/void',
]);

let service: TestService;
let call: ReturnType<typeof api>;
let adminToken: string;
let clientToken: string;
let writes: RouteSpec[];

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: 'ops@validation.test', CRON_SECRET });
  call = api(service.url);
  adminToken = await tokenFor(uuid(), 'ops@validation.test');
  await call('POST', '/api/v1/me/register', { token: adminToken, body: { role: 'consumer' } });
  const clientId = uuid();
  clientToken = await tokenFor(clientId, 'owner@validation.test');
  await call('POST', '/api/v1/me/register', { token: clientToken, body: { role: 'client', businessName: 'Validation Cafe' } });
  await call('PATCH', `/api/v1/admin/users/${clientId}/approve`, { token: adminToken });
  writes = service.tally.routes.filter((r) => ['post', 'put', 'patch', 'delete'].includes(r.method) && r.path !== '/api/v1/webhooks/square');
});
test.after.always(async () => {
  await service?.stop();
});

/** The route's path with ids filled in, and the credentials its access level wants. */
function request(route: RouteSpec): { path: string; headers: Record<string, string> } {
  const path = route.path.replace(/:[A-Za-z]+/g, () => uuid());
  const headers: Record<string, string> = {};
  if (route.access === 'cron') headers['x-cron-secret'] = CRON_SECRET;
  else if (route.access === 'tenant') headers.authorization = `Bearer ${clientToken}`;
  else if (route.access !== 'public') headers.authorization = `Bearer ${adminToken}`;
  return { path, headers };
}

async function send(route: RouteSpec, body: string, contentType = 'application/json') {
  const { path, headers } = request(route);
  const response = await fetch(`${service.url}${path}`, { method: route.method.toUpperCase(), headers: { ...headers, 'content-type': contentType }, body });
  return { status: response.status, body: (await response.json()) as { error: { code: string; message: string; issues?: { path: string }[] } } };
}

test('the route table has writes to check, and every route the NO_BODY list names exists', (t) => {
  t.true(writes.length >= 15);
  const known = new Set(service.tally.routes.map((r) => `${r.method} ${r.path}`));
  t.deepEqual([...NO_BODY].filter((r) => !known.has(r)), []);
});

test('malformed JSON is 400 saying so, on every write', async (t) => {
  for (const route of writes) {
    const response = await send(route, '{"points": 10,');
    t.is(response.status, 400, `${route.method} ${route.path}`);
    t.is(response.body.error.code, 'INVALID_JSON');
    t.regex(response.body.error.message, /not valid JSON/);
  }
});

test('a body in another format is 415 naming the Content-Type to use, on every write', async (t) => {
  for (const route of writes) {
    const response = await send(route, 'points=10', 'application/x-www-form-urlencoded');
    t.is(response.status, 415, `${route.method} ${route.path}`);
    t.is(response.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    t.regex(response.body.error.message, /Content-Type: application\/json/);
  }
});

test('a body over 1 MB is 413, on every write', async (t) => {
  const huge = JSON.stringify({ reason: 'x'.repeat(1_100_000) });
  for (const route of writes) {
    const response = await send(route, huge);
    t.is(response.status, 413, `${route.method} ${route.path}`);
    t.is(response.body.error.code, 'PAYLOAD_TOO_LARGE');
  }
});

test('an unknown body field is refused with a 400 that names it, on every write that takes a body', async (t) => {
  for (const route of writes) {
    const key = `${route.method} ${route.path}`;
    const response = await send(route, JSON.stringify({ ...VALID_BODY[key], unexpectedField: 1 }));
    const namesField = response.status === 400 && response.body.error.issues?.some((i) => i.path === 'unexpectedField') && /unexpectedField/.test(response.body.error.message);
    if (NO_BODY.has(key)) t.false(Boolean(namesField), `${key} takes no body`);
    else if (RESOURCE_FIRST.has(key)) t.is(response.status, 404, key);
    else t.true(Boolean(namesField), `${key}: ${response.status} ${JSON.stringify(response.body)}`);
  }
});

test("an unknown query parameter of a filtered list is refused with a 400 whose issue's path names it", async (t) => {
  const response = await call('GET', '/api/v1/admin/audit?walletid=x&limit=5&tenantid=y', { token: adminToken });
  t.is(response.status, 400);
  t.is(response.body.error.code, 'VALIDATION_FAILED');
  // Until 2026-12-08 the issue's path was "" (the query itself), one issue for both keys.
  t.deepEqual(response.body.error.issues, [
    { path: 'walletid', message: 'unknown parameter "walletid"' },
    { path: 'tenantid', message: 'unknown parameter "tenantid"' },
  ]);
  t.regex(response.body.error.message, /query: unknown parameters "walletid", "tenantid"/);
});
