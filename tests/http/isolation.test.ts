/**
 * The tenant-isolation matrix: every declared route, called by every kind of caller. Access is decided in
 * one place (http/access.ts); this test proves it for each route, including routes added later: a route
 * whose path parameter has no fixture here fails the test until one is added.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';

let service: TestService;
let call: ReturnType<typeof api>;

interface Callers {
  anonymous: undefined;
  unregistered: string;
  consumer: string;
  pendingClient: string;
  otherTenantClient: string;
  owner: string;
  admin: string;
}
type CallerKind = keyof Callers;

let tokens: Callers;
let tenantA: string;
/** Values for path parameters: resources that belong to tenant A. */
let fixtures: Record<string, string>;

async function register(role: 'client' | 'consumer', email: string, businessName?: string) {
  const id = uuid();
  const token = await tokenFor(id, email);
  await call('POST', '/api/v1/me/register', { token, body: { role, ...(businessName ? { businessName } : {}) } });
  return { id, token };
}

test.before(async () => {
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'root@iso.test',
    // Square routes answer 503 CONFIGURATION_MISSING without an app; no call reaches this address in the matrix.
    SQUARE_APP_ID: 'sq0idp-isolation',
    SQUARE_APP_SECRET: 'sq0csp-isolation',
    SQUARE_BASE_URL: 'http://127.0.0.1:9',
    SQUARE_WEBHOOK_SIGNATURE_KEY: 'isolation-webhook-key',
  });
  call = api(service.url);
  const admin = await register('consumer', 'root@iso.test');
  const consumer = await register('consumer', 'shopper@iso.test');
  const pending = await register('client', 'pending@iso.test', 'Pending Ltd');
  const owner = await register('client', 'owner@iso.test', 'Tenant A');
  const other = await register('client', 'other@iso.test', 'Tenant B');
  tenantA = (await call('PATCH', `/api/v1/admin/users/${owner.id}/approve`, { token: admin.token })).body.user.tenantId;
  await call('PATCH', `/api/v1/admin/users/${other.id}/approve`, { token: admin.token });
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: { kind: 'visit', points: 5 } });
  tokens = { anonymous: undefined, unregistered: await tokenFor(uuid(), 'nobody@iso.test'), consumer: consumer.token, pendingClient: pending.token, otherTenantClient: other.token, owner: owner.token, admin: admin.token };
  // A wallet of tenant A held by a consumer who is none of the callers below.
  const walletId = uuid();
  const wallet = { walletId, tenantId: tenantA, consumerId: uuid() };
  const credited = { ...wallet, paymentId: 'pay-iso', points: 10, ruleId: rule.body.ruleId, ruleVersion: 1, basis: 'amount', basisAmountMinor: 1000, via: 'purchase' };
  const { position } = await service.tally.store.append(walletStream(walletId), [{ id: uuid(), type: 'PointsCredited', data: credited }], 'any');
  await service.tally.runner.waitForPosition(position, 5000);
  // A reward of tenant A's catalog, issued to the wallet.
  const reward = await call('POST', '/api/v1/client/rewards', { token: owner.token, body: { name: 'Free coffee', points: 5 } });
  const issued = await call('POST', `/api/v1/client/wallets/${walletId}/rewards`, { token: owner.token, body: { rewardId: reward.body.rewardId, idempotencyKey: 'iso-1' } });
  fixtures = { rewardId: reward.body.rewardId, issuedRewardId: issued.body.issuedReward.issuedRewardId, tenantId: tenantA, ruleId: rule.body.ruleId, userId: uuid(), walletId, stream: walletStream(walletId), correlationId: uuid(), eventId: 'evt-never-received', name: 'reward_rules', jobId: uuid(), promotionId: uuid() };
});
test.after.always(async () => {
  await service?.stop();
});

/** `own-checks`: a public route that authenticates its caller itself (webhook signature, OAuth state); never a 5xx. */
type Expectation = { status: number; code?: string } | 'allowed' | 'own-checks';

function expected(access: string, caller: CallerKind, hasResourceParam: boolean): Expectation {
  if (access === 'public') return 'own-checks';
  if (access === 'cron') return { status: 401 };
  if (caller === 'anonymous') return { status: 401, code: 'UNAUTHENTICATED' };
  if (access === 'self') return 'allowed';
  if (caller === 'unregistered') return { status: 403, code: 'USER_NOT_REGISTERED' };
  if (caller === 'pendingClient') return { status: 403, code: 'USER_PENDING_APPROVAL' };
  // A 'user' route's resource belongs to one person; the fixtures' resources belong to none of these callers.
  if (access === 'user') return hasResourceParam ? { status: 404, code: 'NOT_FOUND' } : 'allowed';
  if (access === 'admin') return caller === 'admin' ? 'allowed' : { status: 403, code: 'FORBIDDEN' };
  // tenant
  if (caller === 'consumer') return { status: 403, code: 'FORBIDDEN' };
  if (caller === 'admin') return { status: 400, code: 'VALIDATION_FAILED' }; // must name the tenant
  if (caller === 'otherTenantClient' && hasResourceParam) return { status: 404, code: 'NOT_FOUND' };
  return 'allowed';
}

/** A streaming route never ends: its status and, when it refuses, its error body; an accepted stream is closed at once. */
async function streamHead(path: string, token: string | undefined): Promise<{ status: number; body: any }> {
  const controller = new AbortController();
  const response = await fetch(`${service.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: controller.signal });
  if (response.ok) {
    controller.abort();
    return { status: response.status, body: null };
  }
  return { status: response.status, body: await response.json() };
}

test('every route answers every kind of caller as its access level says, and never leaks another tenant', async (t) => {
  const routes = service.tally.routes;
  t.true(routes.length >= 12);
  let checked = 0;
  for (const route of routes) {
    const names = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
    for (const name of names) t.truthy(fixtures[name], `add an isolation fixture for :${name} (${route.method} ${route.path})`);
    const path = route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => fixtures[name] ?? 'missing');
    const hasResourceParam = names.some((n) => n !== 'userId');
    for (const caller of Object.keys(tokens) as CallerKind[]) {
      const response = route.answers === 'event-stream'
        ? await streamHead(path, tokens[caller])
        : await call(route.method.toUpperCase(), path, {
            token: tokens[caller],
            body: ['post', 'patch', 'put'].includes(route.method) ? {} : undefined,
          });
      const want = expected(route.access, caller, hasResourceParam);
      const label = `${caller} → ${route.method.toUpperCase()} ${route.path} (${route.access}) answered ${response.status} ${JSON.stringify(response.body).slice(0, 160)}`;
      if (want === 'own-checks') {
        t.true(response.status < 500, label);
      } else if (want === 'allowed') {
        t.false([401, 403].includes(response.status), label);
        t.true(response.status < 500, label);
      } else {
        t.is(response.status, want.status, label);
        if (want.code) t.is(response.body?.error?.code, want.code, label);
      }
      if (caller === 'otherTenantClient') t.false(JSON.stringify(response.body ?? '').includes(tenantA), `${label}: leaks tenant A`);
      checked++;
    }
  }
  t.log(`${checked} route × caller combinations checked over ${routes.length} routes`);
});

test('an admin acts on a named tenant with ?tenantId=', async (t) => {
  const rules = await call('GET', `/api/v1/client/reward-rules?tenantId=${tenantA}`, { token: tokens.admin });
  t.is(rules.status, 200);
  t.deepEqual(rules.body.map((r: { ruleId: string }) => r.ruleId), [fixtures.ruleId]);
  const workspace = await call('GET', `/api/v1/client/workspace?tenantId=${tenantA}`, { token: tokens.admin });
  t.like(workspace.body, { tenantId: tenantA, businessName: 'Tenant A' });
  const otherClientNamingA = await call('GET', `/api/v1/client/workspace?tenantId=${tenantA}`, { token: tokens.otherTenantClient });
  t.not(otherClientNamingA.body.tenantId, tenantA, 'a client cannot pick a tenant with ?tenantId=');
});
