/**
 * The audit trail as an operator uses it: real actions over HTTP (registration, approval, reward rules, a
 * balance adjustment) and events appended by the processes, then browsed, filtered, paged and traced back to
 * the request that caused them.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { paymentStream } from '../../domain/payments/payment.ts';
import type { RecordedEvent } from '../../domain/ports/event-store.ts';

interface Item {
  eventId: string;
  position: string;
  stream: string;
  revision: number;
  type: string;
  recordedAt: string;
  actor: string | null;
  tenantId: string | null;
  walletId: string | null;
  paymentId: string | null;
  correlationId: string | null;
  causationId: string | null;
  data: Record<string, unknown>;
}

let service: TestService;
let call: ReturnType<typeof api>;
let admin: { id: string; token: string };
let owner: { id: string; token: string };
let consumer: { id: string; token: string };
let tenantA: string;
let tenantB: string;
let walletId: string;
/** Every event in the log, oldest first, as the store has them. */
let log: RecordedEvent[];
/** The read models include every write once they reach this. */
let head: string;

async function register(role: 'client' | 'consumer', email: string, businessName?: string) {
  const id = uuid();
  const token = await tokenFor(id, email);
  await call('POST', '/api/v1/me/register', { token, body: { role, ...(businessName ? { businessName } : {}) } });
  return { id, token };
}

/** An admin read of the trail that waits until every write made so far is in it. */
const audit = (path: string, token = admin.token) => call('GET', `/api/v1/admin/audit${path}`, { token, headers: { 'x-min-position': head } });

const types = (items: Item[]) => items.map((i) => i.type);
/** Types regardless of order, for assertions about which events, not in what order. */
const typeSet = (items: Item[]) => types(items).sort();

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: 'ops@audit.test' });
  call = api(service.url);
  admin = await register('consumer', 'ops@audit.test');
  owner = await register('client', 'owner-a@audit.test', 'Tenant A');
  const ownerB = await register('client', 'owner-b@audit.test', 'Tenant B');
  consumer = await register('consumer', 'shopper@audit.test');
  const approveA = await call('PATCH', `/api/v1/admin/users/${owner.id}/approve`, { token: admin.token, headers: { 'x-request-id': 'req-approve-a' } });
  tenantA = approveA.body.user.tenantId;
  tenantB = (await call('PATCH', `/api/v1/admin/users/${ownerB.id}/approve`, { token: admin.token })).body.user.tenantId;
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: owner.token });

  // What ingestion and the wallet-credits reactor would append for a purchase at tenant A.
  walletId = uuid();
  const metadata = { correlationId: 'poll-run-1', causationId: 'poll-run-1', actor: 'system:poll' };
  await service.tally.store.append(
    paymentStream('pay-1'),
    [{ id: uuid(), type: 'PaymentStatusObserved', data: { paymentId: 'pay-1', tenantId: tenantA, merchantId: 'M-A', status: 'APPROVED', updatedAt: new Date().toISOString(), source: 'poll' }, metadata }],
    'no_stream',
  );
  const credit = { walletId, tenantId: tenantA, consumerId: consumer.id, paymentId: 'pay-1', points: 12, ruleId: rule.body.ruleId, ruleVersion: 1, basis: 'amount', basisAmountMinor: 1200, via: 'purchase' };
  await service.tally.store.append(walletStream(walletId), [{ id: uuid(), type: 'PointsCredited', data: credit, metadata: { ...metadata, actor: 'system:wallet-credits' } }], 'no_stream');
  const adjusted = await call('POST', `/api/v1/admin/wallets/${walletId}/adjust`, {
    token: admin.token,
    headers: { 'x-request-id': 'req-adjust' },
    body: { points: -2, reason: 'goodwill correction' },
  });
  if (adjusted.status !== 200) throw new Error(`adjust failed: ${adjusted.status} ${JSON.stringify(adjusted.body)}`);

  log = await service.tally.store.readAll();
  head = log.at(-1)!.position;
});
test.after.always(async () => {
  await service?.stop();
});

test('lists every event newest first, with position, stream, revision, actor, tenant and correlation', async (t) => {
  const page = await audit('?limit=200');
  t.is(page.status, 200);
  t.deepEqual(
    page.body.items.map((i: Item) => i.eventId),
    log.map((e) => e.id).reverse(),
    'the whole log, newest first',
  );
  t.is(page.body.nextCursor, null);
  const approved = page.body.items.find((i: Item) => i.type === 'UserApproved' && i.stream === `user-${owner.id}`);
  const recorded = log.find((e) => e.id === approved.eventId)!;
  t.deepEqual(approved, {
    eventId: recorded.id,
    position: recorded.position,
    stream: `user-${owner.id}`,
    revision: 2,
    type: 'UserApproved',
    recordedAt: recorded.recordedAt.toISOString(),
    actor: `admin:${admin.id}`,
    tenantId: tenantA,
    walletId: null,
    paymentId: null,
    correlationId: 'request:req-approve-a',
    causationId: 'request:req-approve-a',
    data: recorded.data,
  });
});

test('identities appear as keyed hashes; no email appears anywhere in the trail', async (t) => {
  const page = await audit(`?stream=user-${owner.id}`);
  const registered = page.body.items.find((i: Item) => i.type === 'UserRegistered');
  t.regex(String(registered.data.emailHash), /^email:[A-Za-z0-9_-]{20,}$/);
  t.is(registered.tenantId, null, "a user's registration belongs to no tenant");
  const everything = JSON.stringify((await audit('?limit=200')).body);
  for (const email of ['ops@audit.test', 'owner-a@audit.test', 'owner-b@audit.test', 'shopper@audit.test']) t.false(everything.includes(email), email);
});

test('filters by tenant: its events from every stream, including the approval on the owner’s user stream', async (t) => {
  const a = await audit(`?tenantId=${tenantA}`);
  t.true(a.body.items.every((i: Item) => i.tenantId === tenantA));
  t.deepEqual(typeSet(a.body.items), ['UserApproved', 'WorkspaceProvisioned', 'RewardRuleCreated', 'RewardRuleActivated', 'PaymentStatusObserved', 'PointsCredited', 'PointsAdjusted'].sort());
  const b = await audit(`?tenantId=${tenantB}`);
  t.deepEqual(types(b.body.items), ['UserApproved', 'WorkspaceProvisioned'], 'the workspace is provisioned, then the owner approved');
  // A mistyped tenant is not an empty trail: it names no workspace (404), as on the webhook list and the tenant routes.
  t.is((await audit(`?tenantId=no-such-tenant`)).status, 404);
});

test('filters by stream, wallet, payment and actor', async (t) => {
  const stream = await audit(`?stream=${walletStream(walletId)}`);
  t.deepEqual(types(stream.body.items), ['PointsAdjusted', 'PointsCredited']);
  const wallet = await audit(`?walletId=${walletId}`);
  t.deepEqual(types(wallet.body.items), ['PointsAdjusted', 'PointsCredited']);
  t.true(wallet.body.items.every((i: Item) => i.walletId === walletId));
  // A wallet's id is a uuid, taken in either case (as the wallet routes take it): in the filter and in a stream's name.
  t.deepEqual(types((await audit(`?walletId=${walletId.toUpperCase()}`)).body.items), ['PointsAdjusted', 'PointsCredited']);
  const history = await call('GET', `/api/v1/admin/audit/streams/${walletStream(walletId.toUpperCase())}`, { token: admin.token, headers: { 'x-min-position': head } });
  t.is(history.status, 200);
  t.is(history.body.stream, walletStream(walletId));
  const payment = await audit('?paymentId=pay-1');
  t.deepEqual(types(payment.body.items), ['PointsCredited', 'PaymentStatusObserved'], 'the payment and the credit it earned');
  const byAdmin = await audit(`?actor=${encodeURIComponent(`admin:${admin.id}`)}`);
  const twoApprovalsAndAnAdjustment = ['UserApproved', 'UserApproved', 'WorkspaceProvisioned', 'WorkspaceProvisioned', 'PointsAdjusted'];
  t.deepEqual(typeSet(byAdmin.body.items), twoApprovalsAndAnAdjustment.sort());
  const byOwner = await audit(`?actor=user:${owner.id}`);
  t.deepEqual(types(byOwner.body.items), ['RewardRuleActivated', 'RewardRuleCreated', 'UserEmailVerified', 'UserRegistered'], 'what the merchant did itself');
});

test('filters by one or several types, repeated or comma-separated', async (t) => {
  const repeated = await audit('?type=RewardRuleCreated&type=PointsAdjusted');
  const comma = await audit('?type=RewardRuleCreated,PointsAdjusted');
  t.deepEqual(types(repeated.body.items), ['PointsAdjusted', 'RewardRuleCreated']);
  t.deepEqual(comma.body, repeated.body);
  const registrations = await audit('?type=UserRegistered');
  t.is(registrations.body.items.length, 4);
});

test('filters by time: from is inclusive, to exclusive, exactly as the recorded times say', async (t) => {
  const all: Item[] = (await audit('?limit=200')).body.items;
  const pivot = all.find((i) => i.type === 'RewardRuleCreated')!.recordedAt;
  const from = await audit(`?from=${pivot}&limit=200`);
  t.deepEqual(from.body.items.map((i: Item) => i.eventId), all.filter((i) => i.recordedAt >= pivot).map((i) => i.eventId));
  t.true(types(from.body.items).includes('RewardRuleCreated'));
  const to = await audit(`?to=${pivot}&limit=200`);
  t.deepEqual(to.body.items.map((i: Item) => i.eventId), all.filter((i) => i.recordedAt < pivot).map((i) => i.eventId));
  t.false(types(to.body.items).includes('RewardRuleCreated'));
  const future = new Date(Date.now() + 3600_000).toISOString();
  t.deepEqual((await audit(`?from=${future}`)).body.items, []);
  t.is((await audit(`?to=${future}&limit=200`)).body.items.length, all.length);
});

test('combines filters', async (t) => {
  const adminAtA = await audit(`?tenantId=${tenantA}&actor=admin:${admin.id}&type=PointsAdjusted,UserApproved,PointsCredited`);
  t.deepEqual(types(adminAtA.body.items), ['PointsAdjusted', 'UserApproved']);
  const pivot = adminAtA.body.items[1].recordedAt;
  const since = await audit(`?tenantId=${tenantA}&actor=admin:${admin.id}&from=${pivot}&to=${new Date(Date.now() + 60_000).toISOString()}`);
  t.true(types(since.body.items).includes('PointsAdjusted'));
  t.true(since.body.items.every((i: Item) => i.tenantId === tenantA && i.actor === `admin:${admin.id}` && i.recordedAt >= pivot));
  t.deepEqual((await audit(`?walletId=${walletId}&type=UserApproved`)).body.items, []);
});

test('pages with an opaque cursor, without gaps or duplicates', async (t) => {
  const whole: Item[] = (await audit(`?tenantId=${tenantA}&limit=200`)).body.items;
  t.true(whole.length >= 7);
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: { status: number; body: { items: Item[]; nextCursor: string | null } } = await audit(`?tenantId=${tenantA}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    t.is(page.status, 200);
    t.true(page.body.items.length <= 2);
    seen.push(...page.body.items.map((i) => i.eventId));
    cursor = page.body.nextCursor;
    pages++;
  } while (cursor && pages < 20);
  t.deepEqual(seen, whole.map((i) => i.eventId));
  t.is(pages, Math.ceil(whole.length / 2));
});

test("a stream's full history, in order, in pages", async (t) => {
  const history = await audit(`/streams/user-${owner.id}`);
  t.is(history.status, 200);
  t.is(history.body.stream, `user-${owner.id}`);
  t.deepEqual(types(history.body.items), ['UserRegistered', 'UserEmailVerified', 'UserApproved']);
  t.deepEqual(history.body.items.map((i: Item) => i.revision), [0, 1, 2]);
  const first = await audit(`/streams/${walletStream(walletId)}?limit=1`);
  t.deepEqual(types(first.body.items), ['PointsCredited']);
  const second = await audit(`/streams/${walletStream(walletId)}?limit=1&cursor=${first.body.nextCursor}`);
  t.deepEqual(types(second.body.items), ['PointsAdjusted']);
  t.is(second.body.nextCursor, null);
  const missing = await audit('/streams/wallet-nobody');
  t.is(missing.status, 404);
});

test('everything one request caused, found by the X-Request-Id it was sent with', async (t) => {
  const approval = await audit('/correlations/req-approve-a');
  t.is(approval.status, 200);
  t.deepEqual(typeSet(approval.body.items), ['UserApproved', 'WorkspaceProvisioned'].sort());
  t.is(approval.body.items.length, 2);
  t.true(approval.body.items.every((i: Item) => i.correlationId === 'request:req-approve-a'), 'a client request id is namespaced');
  t.is(approval.body.correlationId, 'request:req-approve-a');
  const order = log.filter((e) => e.metadata.correlationId === 'request:req-approve-a').map((e) => e.id);
  t.deepEqual(approval.body.items.map((i: Item) => i.eventId), order, 'in feed order');
  t.deepEqual(types((await audit('/correlations/req-adjust')).body.items), ['PointsAdjusted']);
  t.deepEqual(types((await audit('/correlations/poll-run-1')).body.items), ['PaymentStatusObserved', 'PointsCredited']);
  t.is((await audit('/correlations/never-sent')).status, 404);
});

test('a query that cannot be answered is a 400 that says what to fix', async (t) => {
  const cases: [string, RegExp][] = [
    ['?limit=0', /limit must be at least 1/],
    ['?limit=201', /limit must be at most 200/],
    ['?limit=many', /limit must be a whole number/],
    ['?from=yesterday', /from must be an ISO 8601 date-time/],
    [`?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, /from must be before to/],
    ['?type=Points%20Credited', /type must be an event type name/],
    ['?tenantId=a&tenantId=b', /tenantId must be given once/],
    ['?colour=red', /colour/],
    ['?cursor=not-a-cursor', /cursor is not valid/],
  ];
  for (const [query, message] of cases) {
    const response = await audit(query);
    t.is(response.status, 400, query);
    t.is(response.body.error.code, 'VALIDATION_FAILED', query);
    t.regex(response.body.error.message, message, query);
  }
  const streamCursor = (await audit(`/streams/${walletStream(walletId)}?limit=1`)).body.nextCursor;
  const mixed = await audit(`?cursor=${streamCursor}`);
  t.is(mixed.status, 400, "a stream history's cursor does not page the list");
});

test('administrators only', async (t) => {
  for (const path of ['', `/streams/user-${owner.id}`, '/correlations/req-approve-a']) {
    t.is((await audit(path, owner.token)).status, 403, `client: ${path}`);
    t.is((await audit(path, consumer.token)).status, 403, `consumer: ${path}`);
    t.is((await call('GET', `/api/v1/admin/audit${path}`)).status, 401, `anonymous: ${path}`);
  }
});
