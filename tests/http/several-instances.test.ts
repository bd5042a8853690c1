/**
 * Two instances of the service on one database, as behind a load balancer: what one instance learns (a customer
 * webhook, a live event) reaches the other before it matters there.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startSecondInstance, startTestService, type SecondInstance, type TestService } from '../support/service.ts';
import { api, openConnectUrl, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually, until } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, squarePayload, webhookSender } from '../support/square-webhooks.ts';
import { paymentEvents } from '../../domain/payments/events.ts';

const WEBHOOK_KEY = 'test-webhook-signature-key';
const API_BASE_URL = 'https://api.tally.test';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
const CRON_SECRET = 'cron-secret-for-tests-0123456789';
const ENV = {
  AUTH_JWT_SECRET: TEST_JWT_SECRET,
  ADMIN_EMAILS: 'ops@tally.test,north@tally.test,south@tally.test',
  SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
  SQUARE_APP_ID: TEST_APP_ID,
  SQUARE_APP_SECRET: TEST_APP_SECRET,
  API_BASE_URL,
  CRON_SECRET,
  ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
  IDENTITY_HASH_KEY: Buffer.alloc(32, 3).toString('base64url'),
};

let square: SquareTestServer;
let a: TestService;
let b: SecondInstance;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-CAFE', businessName: 'Cafe', locations: [{ id: 'L-MAIN', name: 'Main' }] });
  a = await startTestService({ ...ENV, SQUARE_BASE_URL: square.url });
  b = await startSecondInstance(a, { ...ENV, SQUARE_BASE_URL: square.url });
});
test.after.always(async () => {
  await b?.stop();
  await a?.stop();
  await square?.stop();
});

const callA = () => api(a.url);
const callB = () => api(b.url);

async function register(role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) {
  const id = uuid();
  const token = await tokenFor(id, email);
  const response = await callA()('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
  if (response.status !== 201) throw new Error(`registration failed: ${JSON.stringify(response.body)}`);
  await a.tally.runner.waitForPosition(response.body.position, 15_000);
  return { id, token };
}

let setup: Promise<{ admin: string; merchant: { id: string; token: string } }> | undefined;
/** The administrator and M-CAFE's workspace, connected through A, earning 1 point per 100 spent. */
function connectedCafe() {
  setup ??= (async () => {
    const admin = (await register('consumer', 'ops@tally.test')).token;
    const merchant = await register('client', 'owner@cafe.test', { businessName: 'Cafe' });
    await callA()('PATCH', `/api/v1/admin/users/${merchant.id}/approve`, { token: admin });
    const started = await callA()('GET', '/api/v1/client/pos/square/connect', { token: merchant.token });
    const browser = await openConnectUrl(a.url, started);
    const state = browser.authorizeUrl.searchParams.get('state') ?? '';
    const code = square.issueCode('M-CAFE');
    const callback = await callA()('GET', `/api/v1/oauth/square/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, { headers: { cookie: browser.cookie } });
    if (callback.status !== 302) throw new Error(`connecting failed: ${callback.status}`);
    const rule = await callA()('POST', '/api/v1/client/reward-rules', { token: merchant.token, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
    await callA()('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: merchant.token });
    return { admin, merchant };
  })();
  return setup;
}

const poll = (call: ReturnType<typeof api>) => call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });

async function creditedConsumer(paymentId: string): Promise<string | undefined> {
  const completed = (await a.tally.store.readStream(`payment-${paymentId}`)).map((e) => paymentEvents.decode(e)).find((e) => e.type === 'PurchaseCompleted');
  return completed?.type === 'PurchaseCompleted' ? completed.data.consumerId ?? undefined : undefined;
}

test.serial('a customer webhook handled by one instance drops the customer contacts the other cached before its next payment', async (t) => {
  const { admin } = await connectedCafe();
  square.addCustomer('M-CAFE', { id: 'cust-1', email: 'alice@example.com', phone: null });
  const alice = await register('consumer', 'alice@example.com');
  const bob = await register('consumer', 'bob@example.com');

  // Both instances cache cust-1 as alice@: A polls cust-1's first payment, B its second (both Alice's).
  const now = Date.now();
  square.addPayment('M-CAFE', { id: 'pay-0', locationId: 'L-MAIN', amount: 1000, status: 'COMPLETED', customerId: 'cust-1', createdAt: new Date(now).toISOString() });
  t.like((await poll(callA())).body.connections[0], { credited: 1 });
  square.addPayment('M-CAFE', { id: 'pay-1', locationId: 'L-MAIN', amount: 1000, status: 'COMPLETED', customerId: 'cust-1', createdAt: new Date(now + 1000).toISOString() });
  t.like((await poll(callB())).body.connections[0], { credited: 1 });
  t.is(await creditedConsumer('pay-0'), alice.id);
  t.is(await creditedConsumer('pay-1'), alice.id);

  // The merchant corrects cust-1's email at Square: it is Bob's. Square tells Tally; whichever instance's worker
  // leases the webhook handles it (both lease from the one inbox).
  square.addCustomer('M-CAFE', { id: 'cust-1', email: 'bob@example.com', phone: null });
  const updated = squarePayload('customer.updated.json');
  await webhookSender(a.url, WEBHOOK_KEY, NOTIFICATION_URL)({
    ...updated,
    merchant_id: 'M-CAFE',
    event_id: 'evt-cust-1-updated',
    data: { ...updated.data, id: 'cust-1', object: { customer: { ...updated.data.object.customer, id: 'cust-1', email_address: 'bob@example.com', phone_number: undefined } } },
  });
  await until(() => callA()('GET', '/api/v1/admin/webhooks/evt-cust-1-updated', { token: admin }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
  // B received nothing: a log line naming the webhook there means B's worker handled it.
  const handledByB = b.logs.some((line) => line.includes('evt-cust-1-updated'));
  const other = handledByB ? callA() : callB();
  t.log(`the customer webhook was handled by ${handledByB ? 'B' : 'A'}; ${handledByB ? 'A' : 'B'} polls next`);

  // The instance that did not handle it polls cust-1's next payment: credited to Bob, whose email cust-1 has now.
  square.addPayment('M-CAFE', { id: 'pay-2', locationId: 'L-MAIN', amount: 5000, status: 'COMPLETED', customerId: 'cust-1', createdAt: new Date(now + 2000).toISOString() });
  t.like((await poll(other)).body.connections[0], { credited: 1 });
  t.is(await creditedConsumer('pay-2'), bob.id);
});

test.serial('mid-rotation, an instance not yet given the new key leaves a connection whose token it cannot open to the instances that can', async (t) => {
  const { admin } = await connectedCafe();
  // C already runs with the new key (the old one as previous); A and B do not have it yet.
  const c = await startSecondInstance(a, { ...ENV, SQUARE_BASE_URL: square.url, ENCRYPTION_KEY: Buffer.alloc(32, 2).toString('base64'), ENCRYPTION_KEY_PREVIOUS: ENV.ENCRYPTION_KEY });
  t.teardown(() => c.stop());
  square.addMerchant({ merchantId: 'M-DELI', businessName: 'Deli', locations: [{ id: 'L-DELI', name: 'Deli' }] });
  const merchant = await register('client', 'owner@deli.test', { businessName: 'Deli' });
  await callA()('PATCH', `/api/v1/admin/users/${merchant.id}/approve`, { token: admin });
  // The merchant connects through C: its token is sealed under the new key.
  const started = await api(c.url)('GET', '/api/v1/client/pos/square/connect', { token: merchant.token });
  const browser = await openConnectUrl(c.url, started);
  const state = browser.authorizeUrl.searchParams.get('state') ?? '';
  const code = square.issueCode('M-DELI');
  const callback = await api(c.url)('GET', `/api/v1/oauth/square/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, { headers: { cookie: browser.cookie } });
  t.is(callback.status, 302);

  // A polls every connection: it cannot open the Deli's token, and says so for itself alone.
  const head = await a.tally.store.headPosition();
  if (head) await a.tally.runner.waitForPosition(head, 10_000);
  const polled = await poll(callA());
  const deli = polled.body.connections.find((r: { merchantId: string }) => r.merchantId === 'M-DELI');
  t.like(deli, { status: 'failed' });
  t.regex(deli.errors[0], /^ENCRYPTION_KEY_NOT_HELD/);
  const after = await a.tally.store.headPosition();
  const seen = await api(c.url)('GET', '/api/v1/client/pos/square', { token: merchant.token, headers: after ? { 'x-min-position': after } : {} });
  t.is(seen.body.status, 'active');

  // A payment webhook handled by C is decided on the connection, not answered `no_connection`.
  await webhookSender(c.url, WEBHOOK_KEY, NOTIFICATION_URL)(paymentWebhook({ eventId: 'evt-deli-1', merchantId: 'M-DELI', paymentId: 'pay-deli-1', amount: 1000, customerId: null }));
  const row = await eventually(() => api(c.url)('GET', '/api/v1/admin/webhooks/evt-deli-1', { token: admin }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
  t.not(row.body.outcome, 'no_connection');
});

test.serial('the projection status of the instance standing by reads each projection’s lag from its stored checkpoint', async (t) => {
  const { admin } = await connectedCafe();
  const head = await a.tally.store.headPosition();
  if (!head) throw new Error('no events');
  t.true(await a.tally.runner.waitForPosition(head, 15_000));
  const status = async (call: ReturnType<typeof api>) => {
    const answer = await call('GET', '/api/v1/admin/projections', { token: admin });
    t.is(answer.status, 200, JSON.stringify(answer.body));
    return new Map((answer.body as { name: string; state: string; checkpoint: string | null; eventsBehind: number }[]).map((p) => [p.name, p]));
  };
  // Which instance feeds a projection is whichever took its lock first: the other stands by.
  const [ofA, ofB] = await until(
    async () => [await status(callA()), await status(callB())] as const,
    ([x, y]) => [...x.values()].every((p) => p.eventsBehind === 0) && [...y.values()].every((p) => p.eventsBehind === 0),
    { timeoutMs: 15_000, intervalMs: 200 },
  );
  const standing = [...ofA.values(), ...ofB.values()].filter((p) => p.state === 'standby');
  t.true(standing.length >= 10, `every projection stands by on one of the two (${standing.length})`);
  for (const p of standing) t.is(p.eventsBehind, 0, `${p.name} on standby is caught up, as stored`);
  const accounts = standing.find((p) => p.name === 'users');
  t.truthy(accounts?.checkpoint, 'the stored checkpoint of a projection with events');
});

test('two admins suspending each other at once, on two instances: one is suspended, the other stays an admin and is told how back in', async (t) => {
  const [north, south] = [await register('consumer', 'north@tally.test'), await register('consumer', 'south@tally.test')];
  const db = a.database.pool;
  // Each suspension's append waits until the test lets it go: both requests are under way at once, whatever the
  // machine's pace. Without one decision at a time both are appended (no admin left); with it, the second waits
  // for the first's lock (not reaching the trigger) and then reads its own admin as suspended.
  const holder = await db.connect();
  t.teardown(() => holder.release(true));
  await holder.query('SELECT pg_advisory_lock(424242, 1)');
  await db.query(`CREATE FUNCTION hold_admin_suspensions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.event_type = 'UserSuspended' AND NEW.stream_name IN ('user-${north.id}', 'user-${south.id}') THEN
        PERFORM pg_advisory_lock_shared(424242, 1); PERFORM pg_advisory_unlock_shared(424242, 1);
      END IF;
      RETURN NEW;
    END $$`);
  await db.query('CREATE TRIGGER hold_admin_suspensions BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION hold_admin_suspensions()');
  t.teardown(async () => {
    await db.query('DROP TRIGGER IF EXISTS hold_admin_suspensions ON events');
    await db.query('DROP FUNCTION IF EXISTS hold_admin_suspensions()');
  });
  const suspensions = [
    callA()('PATCH', `/api/v1/admin/users/${south.id}/suspend`, { token: north.token, body: {} }),
    callB()('PATCH', `/api/v1/admin/users/${north.id}/suspend`, { token: south.token, body: {} }),
  ];
  // Both waiting: at the test's lock (an append) or at the admin suspensions' lock (a decision).
  const waiting = async () =>
    Number(
      (
        await db.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
          AND (query LIKE '%tally.admin-suspension%' OR pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 424242 AND objid = 1))`)
      ).rows[0].n,
    );
  await until(waiting, (n) => n === 2, { timeoutMs: 15_000, intervalMs: 20 });
  await holder.query('SELECT pg_advisory_unlock(424242, 1)');
  const answers = await Promise.all(suspensions);
  const statuses = answers.map((answer) => answer.status).sort();
  t.deepEqual(statuses, [200, 403], JSON.stringify(answers.map((answer) => answer.body)));
  const refused = answers.find((answer) => answer.status === 403)!;
  t.is(refused.body.error.code, 'USER_SUSPENDED');
  t.regex(refused.body.error.message, /ask another administrator to reinstate you, or the operator to run `npm run reinstate -- <your user id>`/);
  const [northState, southState] = await Promise.all([north, south].map((admin) => a.tally.store.readStream(`user-${admin.id}`)));
  const suspended = [northState!, southState!].filter((events) => events.at(-1)!.type === 'UserSuspended');
  t.is(suspended.length, 1, 'one admin is left');
  // The one suspended is refused with what to do, on either instance.
  const out = answers[0]!.status === 200 ? south : north;
  const tries = await eventually(() => callB()('GET', '/api/v1/admin/users/search?q=someone%40tally.test', { token: out.token }), (r) => r.status === 403, { timeoutMs: 10_000, intervalMs: 50 });
  t.regex(tries.body.error.message, /npm run reinstate/);
});

