/**
 * The response contract: every declared route is called over a real socket with a request that succeeds, and
 * its answer must be one its declaration promises: a declared status, and a body its `response` schema accepts
 * (for an event stream, the data of its first event; for a redirect, a Location). `GET /openapi.json` carries
 * those same schemas. A route added to the table and not called here fails the last assertion until it is.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { v4 as uuid } from 'uuid';
import { successStatuses, takesIdempotencyKey, type RouteSpec } from '../../http/routes/table.ts';
import { errorAnswer } from '../../http/schemas.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';
import { eventually } from '../support/eventually.ts';
import { codeSentTo } from '../support/sms.ts';

const API_BASE_URL = 'https://api.contract.test';
const CRON_SECRET = 'cron-secret-for-the-contract-test-0123';
const WEBHOOK_KEY = 'contract-webhook-signature-key';

let square: SquareTestServer;
let service: TestService;

test.before(async () => {
  square = await startSquareServer();
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'root@contract.test',
    SQUARE_APP_ID: square.appId,
    SQUARE_APP_SECRET: square.appSecret,
    SQUARE_ENVIRONMENT: 'sandbox',
    SQUARE_BASE_URL: square.url,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    FRONTEND_URL: 'https://app.contract.test',
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    CRON_SECRET,
    SMS_PROVIDER: 'console',
  });
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

interface Call {
  token?: string;
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The administrator of the scenario (the first test registers them). */
let adminToken: string;

/** Routes answered as declared so far, by `method path`. */
const answered = new Set<string>();

const keyOf = (route: RouteSpec) => `${route.method} ${route.path}`;

/** Reads an event stream until its first event and returns that event's data. */
async function firstEvent(response: Response): Promise<unknown> {
  const reader = response.body!.getReader();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before an event: ${text}`);
      text += new TextDecoder().decode(value);
      const data = /^data: (.*)$/m.exec(text);
      if (data && text.includes('\n\n', data.index)) return JSON.parse(data[1]!);
    }
  } finally {
    await reader.cancel();
  }
}

/** Calls the route `key` declares and checks the answer against the declaration; returns status, body, headers. */
async function hit(t: ExecutionContext, key: string, call: Call = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const route = service.tally.routes.find((r) => keyOf(r) === key);
  if (!route) throw new Error(`no route ${key}`);
  const path = route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => encodeURIComponent(call.params?.[name] ?? `missing-${name}`));
  const headers: Record<string, string> = { ...call.headers };
  if (call.token) headers.authorization = `Bearer ${call.token}`;
  if (route.access === 'cron') headers['x-cron-secret'] = CRON_SECRET;
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${service.url}${path}${call.query ?? ''}`, {
    method: route.method.toUpperCase(),
    headers,
    body: call.body === undefined ? undefined : JSON.stringify(call.body),
    redirect: 'manual',
  });
  const label = `${key} answered ${response.status}`;
  let body: unknown;
  if (route.answers === 'event-stream' && response.ok) body = await firstEvent(response);
  else {
    const text = await response.text();
    body = response.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text;
  }
  if (!successStatuses(route).includes(response.status)) throw new Error(`${label}, not one of ${successStatuses(route).join(', ')}: ${JSON.stringify(body)}`);
  if (route.answers === 'redirect') {
    t.truthy(response.headers.get('location'), `${label}: a redirect names its Location`);
  } else {
    const checked = route.response.safeParse(body);
    t.true(checked.success, `${label}: the answer does not match its declared response: ${checked.error?.issues.map((i: { path: PropertyKey[]; message: string }) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  answered.add(key);
  return { status: response.status, body, headers: response.headers };
}

async function registered(t: ExecutionContext, role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) {
  const id = uuid();
  const token = await tokenFor(id, email);
  const { body } = await hit(t, 'post /api/v1/me/register', { token, body: { role, ...extra } });
  return { id, token, user: body.user };
}

/** The code the development SMS adapter logged for this phone. */
test.serial('every declared route answers what its declaration says, and GET /openapi.json carries the same schemas', async (t) => {
  const admin = await registered(t, 'consumer', 'root@contract.test');
  adminToken = admin.token;
  const asAdmin = { token: admin.token };

  // Accounts: a merchant approved with an active rule, a consumer with a verified phone.
  const owner = await registered(t, 'client', 'owner@contract.test', { businessName: 'Contract Coffee' });
  await hit(t, 'get /api/v1/admin/users/search', { ...asAdmin, query: '?q=contract' });
  const approved = await hit(t, 'patch /api/v1/admin/users/:userId/approve', { ...asAdmin, params: { userId: owner.id } });
  const tenantId: string = approved.body.user.tenantId;
  const asOwner = { token: owner.token };
  await hit(t, 'get /api/v1/client/workspace', asOwner);
  const rule = await hit(t, 'post /api/v1/client/reward-rules', { ...asOwner, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  await hit(t, 'post /api/v1/client/reward-rules/:ruleId/activate', { ...asOwner, params: { ruleId: rule.body.ruleId } });
  await hit(t, 'get /api/v1/client/reward-rules', asOwner);
  const item = await hit(t, 'post /api/v1/client/reward-rules', { ...asOwner, body: { kind: 'item', points: 5, itemVariationIds: ['VARLATTE'] } });
  await hit(t, 'post /api/v1/client/reward-rules/:ruleId/activate', { ...asOwner, params: { ruleId: item.body.ruleId }, body: { alongside: true } });
  await hit(t, 'post /api/v1/client/reward-rules/preview', {
    ...asOwner,
    body: { order: { lines: [{ itemVariationId: 'VARLATTE', quantity: '2', totalMinor: 900 }] } },
  });
  await hit(t, 'post /api/v1/client/reward-rules/:ruleId/deactivate', { ...asOwner, params: { ruleId: item.body.ruleId } });

  const consumer = await registered(t, 'consumer', 'shopper@contract.test');
  await hit(t, 'get /api/v1/me', { token: consumer.token });
  await hit(t, 'patch /api/v1/me', { token: consumer.token, body: { phone: '+1 646 555 0177' } });
  await hit(t, 'post /api/v1/me/phone/verification', { token: consumer.token });
  await hit(t, 'post /api/v1/me/phone/verify', { token: consumer.token, body: { code: codeSentTo(service.logs, '+16465550177') } });

  const leaving = await registered(t, 'consumer', 'leaving@contract.test');
  await hit(t, 'patch /api/v1/admin/users/:userId/suspend', { ...asAdmin, params: { userId: leaving.id }, body: { reason: 'contract test' } });
  await hit(t, 'patch /api/v1/admin/users/:userId/reinstate', { ...asAdmin, params: { userId: leaving.id } });
  await hit(t, 'delete /api/v1/admin/users/:userId/personal-data', { ...asAdmin, params: { userId: leaving.id } });

  // Square: connect through the OAuth flow, as the merchant's browser does.
  const merchantId = `MCONTRACT${randomBytes(4).toString('hex').toUpperCase()}`;
  square.addMerchant({ merchantId, businessName: 'Contract Coffee', locations: [{ id: `${merchantId}-L1`, name: 'Main Street' }] });
  const connect = await hit(t, 'get /api/v1/client/pos/square/connect', asOwner);
  const start = new URL(connect.body.url);
  // The connect answer's cookie: the start link is bound to it, and so is the state.
  const cookie = (connect.headers.get('set-cookie') ?? '').split(';')[0]!;
  const started = await hit(t, 'get /api/v1/oauth/square/start', { query: start.search, headers: { cookie } });
  const authorize = new URL(started.headers.get('location')!);
  const code = square.issueCode(merchantId, { redirectUri: authorize.searchParams.get('redirect_uri') ?? undefined });
  const back = await hit(t, 'get /api/v1/oauth/square/callback', { query: `?${new URLSearchParams({ code, state: authorize.searchParams.get('state')! })}`, headers: { cookie } });
  t.regex(back.headers.get('location')!, /connected=square/);
  await hit(t, 'get /api/v1/client/pos/square', asOwner);
  await hit(t, 'post /api/v1/client/pos/square/refresh', asOwner);
  await hit(t, 'post /api/v1/internal/cron/square-refresh-tokens');
  await hit(t, 'get /api/v1/client/debug/square', asOwner);
  await hit(t, 'get /api/v1/admin/connections', asAdmin);
  await hit(t, 'post /api/v1/internal/cron/square-poll-payments');

  // Promotions (issue 19): the merchant's locations from Square, a promotion scheduled at one of them, listed, ended.
  await hit(t, 'get /api/v1/client/locations', asOwner);
  const promotion = await hit(t, 'post /api/v1/client/promotions', {
    ...asOwner,
    body: { name: 'Double Tuesdays', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-01-05', daysOfWeek: ['TUE'], hours: [{ from: '14:00', to: '17:00' }], locationIds: [`${merchantId}-L1`] },
  });
  await hit(t, 'get /api/v1/client/promotions', asOwner);
  await hit(t, 'post /api/v1/client/promotions/:promotionId/end', { ...asOwner, params: { promotionId: promotion.body.promotionId } });

  // Webhooks: one for a merchant nobody connected is settled as no_connection, and can be re-driven.
  const send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  const eventId = `evt-${uuid()}`;
  const route = service.tally.routes.find((r) => r.path === '/api/v1/webhooks/square')!;
  const received = await send(paymentWebhook({ eventId, merchantId: 'M-NOBODY', paymentId: `pay-${uuid()}`, amount: 1000 }));
  t.is(received.status, 200);
  t.true(route.response.safeParse(received.body).success, 'the webhook acknowledgement matches its declared response');
  answered.add(keyOf(route));
  const settled = await eventually(
    () => hit(t, 'get /api/v1/admin/webhooks/:eventId', { ...asAdmin, params: { eventId } }),
    (r) => r.body.outcome === 'no_connection',
  );
  t.is(settled.body.outcome, 'no_connection');
  await hit(t, 'get /api/v1/admin/webhooks', { ...asAdmin, query: '?limit=10' });
  await hit(t, 'get /api/v1/client/webhooks', { ...asOwner, query: '?limit=10' });
  await hit(t, 'post /api/v1/admin/webhooks/:eventId/retry', { ...asAdmin, params: { eventId } });

  // Wallets: a wallet of the consumer at the merchant, credited by an event as ingestion writes it.
  const walletId = uuid();
  const credited = { walletId, tenantId, consumerId: consumer.id, paymentId: 'pay-contract', points: 40, ruleId: rule.body.ruleId, ruleVersion: 1, basis: 'amount', basisAmountMinor: 4000, via: 'purchase' };
  const { position } = await service.tally.store.append(walletStream(walletId), [{ id: uuid(), type: 'PointsCredited', data: credited }], 'any');
  const readYourWrite = { 'x-min-position': position };
  await hit(t, 'get /api/v1/me/wallets', { token: consumer.token, headers: readYourWrite });
  await hit(t, 'get /api/v1/me/wallets/:walletId/ledger', { token: consumer.token, params: { walletId }, headers: readYourWrite });
  await hit(t, 'get /api/v1/client/wallets', { ...asOwner, query: '?q=shopper@contract.test' });
  await hit(t, 'get /api/v1/client/wallets/:walletId', { ...asOwner, params: { walletId } });
  await hit(t, 'get /api/v1/client/wallets/:walletId/ledger', { ...asOwner, params: { walletId }, query: '?limit=5' });
  const redeemed = await hit(t, 'post /api/v1/client/wallets/:walletId/redeem', { ...asOwner, params: { walletId }, body: { points: 5, idempotencyKey: 'contract-1' }, headers: { 'x-request-id': 'contract-redeem' } });
  await hit(t, 'post /api/v1/admin/wallets/:walletId/adjust', { ...asAdmin, params: { walletId }, body: { points: 3, reason: 'goodwill' } });
  await hit(t, 'get /api/v1/admin/wallets/:walletId/reconcile', { ...asAdmin, params: { walletId }, headers: { 'x-min-position': redeemed.body.position } });
  const theirs = await hit(t, 'get /api/v1/admin/users/:userId/wallets', { ...asAdmin, params: { userId: consumer.id }, headers: readYourWrite });
  t.deepEqual(theirs.body.map((w: { walletId: string }) => w.walletId), [walletId], "a customer's wallets by their user id");
  const unknown = await fetch(`${service.url}/api/v1/admin/users/nobody-by-that-id/wallets`, { headers: { authorization: `Bearer ${admin.token}` } });
  t.is(unknown.status, 404, 'an unknown user is a 404, not no wallets');
  await hit(t, 'post /api/v1/admin/reconcile', { ...asAdmin, body: { tenantId } });

  // The program: a reward issued twice (one redeemed, one voided), expiry, merchant adjustments, figures, the CSV.
  const reward = await hit(t, 'post /api/v1/client/rewards', { ...asOwner, body: { name: 'Free coffee', points: 10 } });
  await hit(t, 'get /api/v1/client/rewards', { ...asOwner, query: '?status=active' });
  const issue = (key: string) => hit(t, 'post /api/v1/client/wallets/:walletId/rewards', { ...asOwner, params: { walletId }, body: { rewardId: reward.body.rewardId, idempotencyKey: key } });
  const toRedeem = await issue('contract-reward-1');
  const toVoid = await issue('contract-reward-2');
  await hit(t, 'post /api/v1/client/wallets/:walletId/rewards/:issuedRewardId/redeem', {
    ...asOwner,
    params: { walletId, issuedRewardId: toRedeem.body.issuedReward.issuedRewardId },
    body: { idempotencyKey: 'contract-reward-redeem' },
  });
  const voided = await hit(t, 'post /api/v1/client/wallets/:walletId/rewards/:issuedRewardId/void', {
    ...asOwner,
    params: { walletId, issuedRewardId: toVoid.body.issuedReward.issuedRewardId },
    body: { reason: 'contract test' },
  });
  const afterRewards = { 'x-min-position': voided.body.position };
  await hit(t, 'get /api/v1/me/wallets/:walletId/rewards', { token: consumer.token, params: { walletId }, headers: afterRewards });
  await hit(t, 'get /api/v1/client/wallets/:walletId/rewards', { ...asOwner, params: { walletId }, headers: afterRewards });
  await hit(t, 'post /api/v1/client/rewards/:rewardId/retire', { ...asOwner, params: { rewardId: reward.body.rewardId }, body: {} });
  await hit(t, 'put /api/v1/client/expiry-policy', { ...asOwner, body: { earnedMonths: 12 } });
  await hit(t, 'get /api/v1/client/expiry-policy', asOwner);
  await hit(t, 'post /api/v1/internal/cron/expire-points', { body: {} });
  await hit(t, 'put /api/v1/admin/workspaces/:tenantId/adjustment-limit', { ...asAdmin, params: { tenantId }, body: { limit: 50 } });
  await hit(t, 'get /api/v1/client/adjustment-limit', asOwner);
  const adjusted = await hit(t, 'post /api/v1/client/wallets/:walletId/adjust', { ...asOwner, params: { walletId }, body: { points: -2, reason: 'till error' } });
  await hit(t, 'get /api/v1/client/program/summary', { ...asOwner, query: '?interval=week', headers: { 'x-min-position': adjusted.body.position } });
  const csv = await hit(t, 'get /api/v1/client/ledger.csv', { ...asOwner, headers: { 'x-min-position': adjusted.body.position } });
  t.regex(csv.headers.get('content-type') ?? '', /^text\/csv/);
  t.true(String(csv.body).split('\n').filter(Boolean).length > 1, 'the CSV has a header and the wallet\'s lines');

  // The audit trail and the live tail, resumed from the credit so that its first event arrives at once.
  await hit(t, 'get /api/v1/admin/audit', { ...asAdmin, query: `?tenantId=${tenantId}&limit=5` });
  await hit(t, 'get /api/v1/admin/audit/streams/:stream', { ...asAdmin, params: { stream: walletStream(walletId) }, headers: readYourWrite });
  await hit(t, 'get /api/v1/admin/audit/correlations/:correlationId', { ...asAdmin, params: { correlationId: 'contract-redeem' }, headers: { 'x-min-position': redeemed.body.position } });
  await hit(t, 'get /api/v1/admin/events/stream', { ...asAdmin, query: `?stream=${walletStream(walletId)}`, headers: { 'last-event-id': position } });

  // Projections: status, and a rebuild started, read and cancelled.
  await hit(t, 'get /api/v1/admin/projections', asAdmin);
  const rebuild = await hit(t, 'post /api/v1/admin/projections/:name/rebuild', { ...asAdmin, params: { name: 'wallets' } });
  await hit(t, 'post /api/v1/admin/jobs/:jobId/cancel', { ...asAdmin, params: { jobId: rebuild.body.jobId } });
  await hit(t, 'get /api/v1/admin/jobs/:jobId', { ...asAdmin, params: { jobId: rebuild.body.jobId } });
  // A failure recorded (as the feed records one), then retried.
  await service.database.pool.query(`UPDATE projection_checkpoints SET status = 'failed', last_error = 'contract' WHERE name = 'held_points'`);
  await hit(t, 'post /api/v1/admin/projections/:name/retry', { ...asAdmin, params: { name: 'held_points' } });

  // Retiring every rule version (as before reconnecting Square in another currency).
  await hit(t, 'post /api/v1/client/reward-rules/retire', asOwner);

  // Last of the Square routes: disconnecting.
  await hit(t, 'delete /api/v1/client/pos/square', asOwner);

  await hit(t, 'get /healthz');
  await hit(t, 'get /readyz');
  const document = await hit(t, 'get /openapi.json');
  for (const r of service.tally.routes) {
    const operation = document.body.paths[r.path.replace(/:([A-Za-z]+)/g, '{$1}')]?.[r.method];
    t.truthy(operation, `${keyOf(r)} is in the OpenAPI document`);
    const success = operation?.responses?.[successStatuses(r)[0]!];
    if (r.answers === undefined) t.truthy(success?.content?.['application/json']?.schema?.type, `${keyOf(r)}: its answer has a JSON Schema`);
    if (r.body) t.truthy(operation?.requestBody?.content?.['application/json']?.schema, `${keyOf(r)}: its body has a JSON Schema`);
    t.truthy(operation?.responses?.default?.content?.['application/json']?.schema, `${keyOf(r)}: its errors have a JSON Schema`);
    // A body taking idempotencyKey may have it from the Idempotency-Key header instead: the header is declared, and no
    // body schema (nor member of a union) requires the field.
    const header = (operation?.parameters ?? []).find((p: { in: string; name: string }) => p.in === 'header' && p.name === 'Idempotency-Key');
    t.is(Boolean(header), takesIdempotencyKey(r.body), `${keyOf(r)}: the Idempotency-Key header is declared where the body takes idempotencyKey`);
    const body = operation?.requestBody?.content?.['application/json']?.schema;
    const requiring = [body, ...(body?.anyOf ?? []), ...(body?.oneOf ?? [])].filter((s) => s?.required?.includes('idempotencyKey'));
    if (header) t.deepEqual(requiring, [], `${keyOf(r)}: idempotencyKey is optional in the body, the header may carry it`);
  }
  const redeem = document.body.paths['/api/v1/client/wallets/{walletId}/redeem'].post;
  t.deepEqual(redeem.requestBody.content['application/json'].schema.required, ['points'], 'points is still required; the key may come as the header');
  t.like(redeem.parameters.find((p: { name: string }) => p.name === 'Idempotency-Key'), { in: 'header', required: false, schema: { type: 'string', minLength: 1, maxLength: 200 } });
  t.truthy(document.body.paths['/api/v1/client/reward-rules'].post.parameters.find((p: { name: string }) => p.name === 'Idempotency-Key'), 'a union body (the rule kinds) has the header too');

  t.deepEqual(
    service.tally.routes.map(keyOf).filter((key) => !answered.has(key)),
    [],
    'every declared route is called here: add a call for a new route',
  );
});

test.serial('error answers have the one declared error shape: 400 naming the fields, 401, 404', async (t) => {
  const admin = adminToken;
  const answers = await Promise.all([
    fetch(`${service.url}/api/v1/admin/audit?limit=0`, { headers: { authorization: `Bearer ${admin}` } }),
    fetch(`${service.url}/api/v1/me`),
    fetch(`${service.url}/api/v1/admin/jobs/${uuid()}`, { headers: { authorization: `Bearer ${admin}` } }),
    fetch(`${service.url}/api/v1/admin/webhooks/evt-never/retry`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } }),
  ]);
  t.deepEqual(answers.map((a) => a.status), [400, 401, 404, 404]);
  for (const answer of answers) t.true(errorAnswer.safeParse(await answer.json()).success);
});
