import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';

let service: TestService;
let call: ReturnType<typeof api>;
const ADMIN_EMAIL = 'ops@tally.test';

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: `someone@else.test, ${ADMIN_EMAIL.toUpperCase()}` });
  call = api(service.url);
});
test.after.always(async () => {
  await service?.stop();
});

async function registered(role: 'client' | 'consumer' | 'admin', extra: Record<string, unknown> = {}) {
  const id = uuid();
  const email = role === 'admin' ? ADMIN_EMAIL : `${role}-${id.slice(0, 8)}@Example.COM`;
  // An admin email belongs to the first sub that registers with it: every admin here is that one user.
  const token = await tokenFor(role === 'admin' ? 'admin-ops' : id, email);
  const response = await call('POST', '/api/v1/me/register', {
    token,
    body: { role: role === 'admin' ? 'consumer' : role, ...(role === 'client' ? { businessName: `Cafe ${id.slice(0, 4)}` } : {}), ...extra },
  });
  return { id: response.body.user?.id as string, email, token, response };
}

async function approvedClient() {
  const admin = await registered('admin');
  const client = await registered('client');
  const approval = await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: admin.token });
  return { admin, client, tenantId: approval.body.user.tenantId as string, approval };
}

test('the admin search answers the newest 50 matches and says whether more matched', async (t) => {
  const admin = await registered('admin');
  const tag = `crowd${uuid().slice(0, 8)}`;
  const search = (position: string) => call('GET', `/api/v1/admin/users/search?q=${tag}`, { token: admin.token, headers: { 'x-min-position': position } });
  let last: Awaited<ReturnType<typeof registered>> | undefined;
  for (let i = 0; i < 50; i++) last = await registered('client', { businessName: `Cafe ${tag} ${i}` });
  const fifty = await search(last!.response.body.position);
  t.is(fifty.status, 200);
  t.is(fifty.body.users.length, 50);
  t.false(fifty.body.more, 'exactly 50 match: none left out');
  const newest = await registered('client', { businessName: `Cafe ${tag} 50` });
  const more = await search(newest.response.body.position);
  t.is(more.body.users.length, 50);
  t.true(more.body.more, 'a 51st matched: the answer says more match');
  t.is(more.body.users[0].id, newest.id, 'newest first');
  t.false(more.body.users.some((u: { businessName: string }) => u.businessName === `Cafe ${tag} 0`), 'the oldest is the one left out');
});

test('a consumer registers once, approved at once; the email is normalised and the phone put in E.164', async (t) => {
  const consumer = await registered('consumer', { phone: '+1-212-555-4240' });
  t.is(consumer.response.status, 201);
  t.like(consumer.response.body.user, { role: 'consumer', status: 'approved', tenantId: null, phone: '+12125554240' });
  t.is(consumer.response.body.user.email, consumer.email.toLowerCase());
  const again = await call('POST', '/api/v1/me/register', { token: consumer.token, body: { role: 'client', businessName: 'Sneaky' } });
  t.is(again.status, 200);
  t.like(again.body.user, { id: consumer.id, role: 'consumer' }, 'a second registration returns the first');
  const me = await call('GET', '/api/v1/me', { token: consumer.token });
  t.is(me.status, 200);
  t.deepEqual(Object.keys(me.body).sort(), ['businessName', 'email', 'emailVerified', 'id', 'phone', 'phoneVerified', 'role', 'status', 'tenantId']);
  t.like(me.body, { id: consumer.id, phone: '+12125554240', status: 'approved' });
  // A profile change without a phone, or with too short a one, says what to send.
  for (const body of [{}, { phone: 'zz' }]) {
    const refused = await call('PATCH', '/api/v1/me', { token: consumer.token, body });
    t.is(refused.status, 400);
    t.regex(JSON.stringify(refused.body), /phone is required: a phone number such as \+12125551234/);
  }
});

test('registration input is validated with messages that say what to fix', async (t) => {
  const token = await tokenFor(uuid(), 'x@example.com');
  const noRole = await call('POST', '/api/v1/me/register', { token, body: {} });
  t.is(noRole.status, 400);
  t.regex(noRole.body.error.message, /role must be 'client' or 'consumer'/);
  const clientWithoutName = await call('POST', '/api/v1/me/register', { token, body: { role: 'client' } });
  t.is(clientWithoutName.status, 400);
  t.regex(clientWithoutName.body.error.message, /businessName is required/);
  const badPhone = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone: '12' } });
  t.is(badPhone.status, 400);
  t.regex(badPhone.body.error.message, /phone/);
  const unknownField = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', admin: true } });
  t.is(unknownField.status, 400);
  t.regex(unknownField.body.error.message, /admin/);
  const notJson = await call('POST', '/api/v1/me/register', { token, body: '{"role":', headers: { 'content-type': 'application/json' } });
  t.is(notJson.status, 400);
  t.regex(notJson.body.error.message, /not valid JSON/);
  const unregistered = await call('GET', '/api/v1/me', { token });
  t.is(unregistered.status, 404);
  t.regex(unregistered.body.error.message, /register/);
});

test('a client waits for approval: blocked with USER_PENDING_APPROVAL everywhere but /me', async (t) => {
  const client = await registered('client');
  t.like(client.response.body.user, { role: 'client', status: 'pending', tenantId: null });
  const blocked = await call('GET', '/api/v1/client/workspace', { token: client.token });
  t.is(blocked.status, 403);
  t.is(blocked.body.error.code, 'USER_PENDING_APPROVAL');
  t.is((await call('GET', '/api/v1/me', { token: client.token })).status, 200);
});

test('an admin finds a pending merchant, approves it, and the workspace is provisioned exactly once', async (t) => {
  const admin = await registered('admin');
  t.like(admin.response.body.user, { role: 'admin', status: 'approved' }, 'ADMIN_EMAILS is compared case-insensitively');
  const client = await registered('client');
  const search = await call('GET', `/api/v1/admin/users/search?q=${encodeURIComponent(client.email.slice(0, 14).toUpperCase())}`, {
    token: admin.token,
    headers: { 'x-min-position': client.response.body.position },
  });
  t.is(search.status, 200);
  t.like(search.body.users.find((u: { id: string }) => u.id === client.id), { role: 'client', status: 'pending', email: client.email.toLowerCase() });
  t.truthy(search.body.users[0].registeredAt);
  t.false(search.body.more);

  const first = await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: admin.token });
  t.is(first.status, 200);
  const tenantId = first.body.user.tenantId;
  t.truthy(tenantId);
  const second = await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: admin.token });
  t.is(second.body.user.tenantId, tenantId, 'approving twice is harmless');
  const provisioned = await service.tally.store.readStream(`workspace-${tenantId}`);
  t.is(provisioned.length, 1);
  t.is(provisioned[0]?.metadata.actor, `admin:${admin.response.body.user.id}`, 'the acting admin is recorded');

  const workspace = await call('GET', '/api/v1/client/workspace', { token: client.token });
  t.is(workspace.status, 200);
  t.like(workspace.body, { tenantId, ownerUserId: client.id });
  const me = await call('GET', '/api/v1/me', { token: client.token });
  t.like(me.body, { status: 'approved', tenantId });
});

test('suspend blocks with USER_SUSPENDED; reinstate restores the previous status', async (t) => {
  const { admin, client } = await approvedClient();
  const suspended = await call('PATCH', `/api/v1/admin/users/${client.id}/suspend`, { token: admin.token, body: { reason: 'chargebacks' } });
  t.is(suspended.body.user.status, 'suspended');
  const blocked = await call('GET', '/api/v1/client/reward-rules', { token: client.token });
  t.is(blocked.status, 403);
  t.is(blocked.body.error.code, 'USER_SUSPENDED');
  const reinstated = await call('PATCH', `/api/v1/admin/users/${client.id}/reinstate`, { token: admin.token });
  t.is(reinstated.body.user.status, 'approved');
  t.is((await call('GET', '/api/v1/client/reward-rules', { token: client.token })).status, 200);
  t.is((await call('PATCH', `/api/v1/admin/users/${uuid()}/approve`, { token: admin.token })).status, 404);
});

test('reward rules: versions are created inactive, one is active at a time, reads can wait for a write', async (t) => {
  const { client } = await approvedClient();
  const v1 = await call('POST', '/api/v1/client/reward-rules', { token: client.token, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  t.is(v1.status, 201);
  t.like(v1.body, { version: 1, isActive: false, rule: { kind: 'spend', points: 1, per: 100, basis: 'amount', minimumSpend: 0 } });
  const v2 = await call('POST', '/api/v1/client/reward-rules', { token: client.token, body: { kind: 'visit', points: 10, minimumSpend: 500 } });
  t.is(v2.body.version, 2);
  await call('POST', `/api/v1/client/reward-rules/${v1.body.ruleId}/activate`, { token: client.token });
  const activated = await call('POST', `/api/v1/client/reward-rules/${v2.body.ruleId}/activate`, { token: client.token });
  t.is(activated.status, 200);
  const list = await call('GET', '/api/v1/client/reward-rules', { token: client.token, headers: { 'x-min-position': activated.body.position } });
  t.is(list.status, 200);
  t.deepEqual(
    list.body.map((r: { version: number; isActive: boolean }) => [r.version, r.isActive]),
    [
      [2, true],
      [1, false],
    ],
  );
  t.is((await call('POST', `/api/v1/client/reward-rules/${uuid()}/activate`, { token: client.token })).status, 404);
  const badPosition = await call('GET', '/api/v1/client/reward-rules', { token: client.token, headers: { 'x-min-position': 'soon' } });
  t.is(badPosition.status, 400);
});

test('invalid rules are refused with what to fix', async (t) => {
  const { client } = await approvedClient();
  const cases: [unknown, RegExp][] = [
    [{ kind: 'spend', points: 0, per: 100, basis: 'amount' }, /points must be at least 1/],
    [{ kind: 'spend', points: 1.5, per: 100, basis: 'amount' }, /points must be a whole number/],
    [{ kind: 'spend', points: 1, per: -100, basis: 'amount' }, /per .* must be at least 1/],
    [{ kind: 'spend', points: 1, per: 100, basis: 'tips' }, /basis must be 'amount'/],
    [{ kind: 'spend', points: 1e9, per: 100, basis: 'amount' }, /points must be at most/],
    [{ kind: 'bonus', points: 1 }, /kind must be 'spend', 'visit', 'item' or 'category'/],
    [{ kind: 'visit', points: 5, extra: 1 }, /extra/],
  ];
  for (const [rule, message] of cases) {
    const response = await call('POST', '/api/v1/client/reward-rules', { token: client.token, body: rule });
    t.is(response.status, 400, JSON.stringify(rule));
    t.regex(response.body.error.message, message);
  }
});

test('reward rules under an idempotency key: a retry is one version and the same answer; another body is a 422', async (t) => {
  const { client } = await approvedClient();
  const rules = '/api/v1/client/reward-rules';
  const body = { kind: 'spend', points: 1, per: 100, basis: 'amount', idempotencyKey: 'rule-1' };
  const first = await call('POST', rules, { token: client.token, body });
  t.is(first.status, 201);
  const retry = await call('POST', rules, { token: client.token, body });
  t.is(retry.status, 200);
  t.is(retry.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(retry.body, first.body, 'the retry answers what the first call answered: the same version');

  // The header alone is the same key, whatever the rule's kind (it was ignored: every retry made another version).
  const headers = { 'idempotency-key': 'rule-2' };
  const visit = await call('POST', rules, { token: client.token, body: { kind: 'visit', points: 10 }, headers });
  const visitAgain = await call('POST', rules, { token: client.token, body: { kind: 'visit', points: 10 }, headers });
  t.deepEqual([visit.status, visitAgain.status, visitAgain.headers.get('idempotent-replayed')], [201, 200, 'true']);
  t.like(visitAgain.body, { ruleId: visit.body.ruleId, version: 2 });

  for (const other of [{ ...body, points: 2 }, { kind: 'visit', points: 1, idempotencyKey: 'rule-1' }]) {
    const reused = await call('POST', rules, { token: client.token, body: other });
    t.is(reused.status, 422, JSON.stringify(other));
    t.is(reused.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
  }
  const list = await call('GET', rules, { token: client.token, headers: { 'x-min-position': visit.body.position } });
  t.deepEqual(list.body.map((r: { version: number }) => r.version), [2, 1], 'one version per key');
});

test('erasing a person removes their contact details; history stays and holds no personal data', async (t) => {
  const admin = await registered('admin');
  const consumer = await registered('consumer', { phone: '+44 20 7946 0958' });
  const email = consumer.email.toLowerCase();
  const erased = await call('DELETE', `/api/v1/admin/users/${consumer.id}/personal-data`, { token: admin.token });
  t.is(erased.status, 200);
  const me = await call('GET', '/api/v1/me', { token: consumer.token });
  t.like(me.body, { id: consumer.id, email: null, phone: null, status: 'approved' });
  const search = await call('GET', `/api/v1/admin/users/search?q=${encodeURIComponent(email)}`, {
    token: admin.token,
    headers: { 'x-min-position': erased.body.position },
  });
  t.is(search.status, 200);
  t.deepEqual(search.body, { users: [], more: false });
  const byId = await call('GET', `/api/v1/admin/users/search?q=${consumer.id}`, { token: admin.token });
  t.like(byId.body.users[0], { id: consumer.id, email: null }, 'still found by id, without an email');
  const history = await service.tally.store.readStream(`user-${consumer.id}`);
  t.deepEqual(history.map((e) => e.type), ['UserRegistered', 'UserEmailVerified', 'UserPersonalDataErased']);
  const everything = JSON.stringify(await service.tally.store.readAll());
  t.false(everything.includes(email), 'no email in the event log');
  t.false(everything.includes('2079460958'), 'no phone in the event log');
  t.regex(JSON.stringify(history[0]?.data), /"emailHash":"email:/);
});
