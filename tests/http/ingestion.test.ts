/**
 * Runbooks 2 and 3 against the running service: signed Square webhooks (Square's own example payloads)
 * and the poll, through a real connection to the local Square server, to wallet credits and outcomes.
 */
import test from 'ava';
import { createHmac } from 'node:crypto';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, openConnectUrl, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, refundWebhook, squarePayload, webhookSender } from '../support/square-webhooks.ts';

const WEBHOOK_KEY = 'test-webhook-signature-key';
const API_BASE_URL = 'https://api.tally.test';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
const CRON_SECRET = 'cron-secret-for-tests-0123456789';

let square: SquareTestServer;
let service: TestService;
let call: ReturnType<typeof api>;
let send: ReturnType<typeof webhookSender>;
let admin: string;
let client: string;
let tenantId: string;

async function register(role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}, claims: Record<string, unknown> = {}) {
  const id = uuid();
  const token = await tokenFor(id, email, { claims });
  const response = await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
  // Identities are matched through the users read model: let it include this registration first.
  if (response.body.position) await service.tally.runner.waitForPosition(response.body.position, 15_000);
  return { id, token, position: response.body.position as string };
}

/** Connects a tenant to a Square merchant through the real OAuth flow against the local Square server. */
async function connect(token: string, merchantId: string) {
  const started = await call('GET', '/api/v1/client/pos/square/connect', { token });
  const browser = await openConnectUrl(service.url, started);
  const state = browser.authorizeUrl.searchParams.get('state')!;
  const code = square.issueCode(merchantId);
  const callback = await call('GET', `/api/v1/oauth/square/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, {
    headers: { cookie: browser.cookie },
  });
  if (callback.status !== 302 || !callback.headers.get('location')?.includes('connected=square')) {
    throw new Error(`connect failed: ${callback.status} ${callback.headers.get('location')}`);
  }
}

/**
 * Waits (bounded) until the inbox row for this webhook satisfies `until` (default: processed), and returns it. The
 * bound is generous (30 s): a run on a loaded machine (the suite again with the worker on a thread, beside other
 * suites) once took over 10 s for the first webhook after a rule change, and every later test then failed with it.
 */
async function processed(eventId: string, until: (row: any) => boolean = (row) => row.processed) {
  const reached = (row: { status: number; body: any }) => row.status === 200 && until(row.body);
  const row = await eventually(() => call('GET', `/api/v1/admin/webhooks/${encodeURIComponent(eventId)}`, { token: admin }), reached, { timeoutMs: 30_000, intervalMs: 50 });
  if (!reached(row)) throw new Error(`webhook ${eventId} did not reach the expected state in time`);
  return row.body;
}

async function walletOf(token: string, tenant = tenantId) {
  return eventually<any>(
    async () => {
      const head = await service.tally.store.headPosition();
      const wallets = await call('GET', '/api/v1/me/wallets', { token, headers: head ? { 'x-min-position': head } : {} });
      return wallets.body.find?.((w: { tenantId: string }) => w.tenantId === tenant);
    },
    (wallet) => wallet !== undefined,
    { timeoutMs: 10_000, intervalMs: 50 },
  );
}

/** The wallet once every event so far is projected (the reactor's credit may come a moment after the purchase). */
async function settledBalance(token: string): Promise<number | undefined> {
  let previous: number | undefined;
  for (let i = 0; i < 100; i++) {
    const head = await service.tally.store.headPosition();
    if (head) await service.tally.runner.waitForPosition(head, 5000);
    const wallet = await walletOf(token);
    const again = await service.tally.store.headPosition();
    if (again === head && wallet?.balance === previous) return previous;
    previous = wallet?.balance;
  }
  return previous;
}

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-CAFE', businessName: 'Cafe', locations: [{ id: 'L-MAIN', name: 'Main' }, { id: 'L-KIOSK', name: 'Kiosk' }] });
  square.addCustomer('M-CAFE', { id: 'cust-ann', email: 'Ann@Example.com', phone: null });
  square.addCustomer('M-CAFE', { id: 'cust-bob', email: null, phone: '+1-212-555-4240' });
  square.addCustomer('M-CAFE', { id: 'cust-later', email: 'later@example.com', phone: null });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@tally.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    CRON_SECRET,
    // ingestion-thread.test.ts runs this whole suite again with the webhook worker on its own thread.
    ...(process.env.TEST_WEBHOOK_WORKER_THREAD === 'true' ? { WEBHOOK_WORKER_THREAD: 'true' } : {}),
  });
  call = api(service.url);
  send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  admin = (await register('consumer', 'ops@tally.test')).token;
  const merchant = await register('client', 'owner@cafe.test', { businessName: 'Cafe' });
  client = merchant.token;
  const approval = await call('PATCH', `/api/v1/admin/users/${merchant.id}/approve`, { token: admin });
  tenantId = approval.body.user.tenantId;
  await connect(client, 'M-CAFE');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

test.serial('signatures: missing or wrong is 401 and nothing is stored; a signed non-JSON or incomplete body is 400', async (t) => {
  const payload = paymentWebhook({ eventId: 'evt-unsigned', merchantId: 'M-CAFE', paymentId: 'pay-unsigned', amount: 100 });
  const missing = await send(payload, { signature: null });
  t.is(missing.status, 401);
  t.regex(missing.body.error.message, /signature header is missing/);
  const wrong = await send(payload, { signature: Buffer.alloc(32).toString('base64') });
  t.is(wrong.status, 401);
  const other = await send(payload, { signature: 'not base64 at all' });
  t.is(other.status, 401);
  t.is((await call('GET', '/api/v1/admin/webhooks/evt-unsigned', { token: admin })).status, 404, 'nothing stored from an unsigned body');

  const notJson = await send(undefined, { raw: '{"event_id": "x", ' });
  t.is(notJson.status, 400);
  t.regex(notJson.body.error.message, /not valid JSON/);
  const { event_id: _e, ...noEventId } = payload;
  const incomplete = await send(noEventId);
  t.is(incomplete.status, 400);
  t.regex(incomplete.body.error.message, /event_id/);
  const huge = await send(undefined, { raw: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }) });
  t.is(huge.status, 413);
});

/** The samples of one metric by its `reason` label, from GET /metrics. */
async function refusedCounts(): Promise<Record<string, number>> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^tally_webhooks_refused_total\{reason="(\w+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

test.serial('a signed webhook refused with 400 is logged at warn with its ids and problems (never its body) and counted by reason; a bad signature is not', async (t) => {
  const before = await refusedCounts();
  t.deepEqual(Object.keys(before).sort(), ['invalid_json', 'invalid_shape', 'unstorable_text'], 'every reason has its series from the start');
  const refusals = () => service.logs.map((line) => JSON.parse(line)).filter((line) => line.msg?.startsWith('a signed webhook was refused'));
  const already = refusals().length;

  await send(paymentWebhook({ eventId: 'evt-badsig', merchantId: 'M-CAFE', paymentId: 'pay-badsig', amount: 100 }), { signature: Buffer.alloc(32).toString('base64') });
  const notJson = await send(undefined, { raw: '{"event_id": "evt-cut", ' });
  // "Café" in Latin-1: the é is one byte, 0xE9, which UTF-8 never has alone.
  const latin1 = Buffer.concat([Buffer.from('{"event_id":"evt-latin1","note":"Caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
  const notUtf8 = await fetch(`${service.url}/api/v1/webhooks/square`, {
    method: 'POST',
    body: latin1,
    headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': createHmac('sha256', WEBHOOK_KEY).update(NOTIFICATION_URL).update(latin1).digest('base64') },
  });
  const drifted = paymentWebhook({ eventId: 'evt-drifted', merchantId: 'M-CAFE', paymentId: 'pay-drifted', amount: 100, buyerEmail: 'drift.secret@example.com' });
  delete drifted.data.object.payment.amount_money;
  const shape = await send(drifted);
  const nul = paymentWebhook({ eventId: 'evt-nul', merchantId: 'M-CAFE', paymentId: 'pay-nul', amount: 100, buyerEmail: 'nul.secret@example.com' });
  nul.data.object.payment.note = 'a note with a NUL \u0000 in it';
  const unstorable = await send(nul);
  t.deepEqual([notJson.status, shape.status, unstorable.status], [400, 400, 400]);
  t.is(notUtf8.status, 400);

  const lines = refusals().slice(already);
  t.is(lines.length, 4, 'one line per signed refusal, none for the bad signature');
  t.true(lines.every((line) => line.level === 'warn'));
  t.like(lines[0], { reason: 'invalid_json', problems: ['The webhook body is not valid JSON'] });
  t.is(lines[0].eventId, undefined, 'nothing of a body that does not parse is read');
  t.like(lines[1], { reason: 'invalid_json', problems: ['The webhook body is not valid UTF-8'] });
  t.like(lines[2], { reason: 'invalid_shape', eventId: 'evt-drifted', type: 'payment.updated', merchantId: 'M-CAFE' });
  t.true(lines[2].problems.some((p: string) => p.includes('amount_money')), JSON.stringify(lines[2].problems));
  t.like(lines[3], { reason: 'unstorable_text', eventId: 'evt-nul', merchantId: 'M-CAFE', problems: ['body.data.object.payment.note must not contain NUL characters or unpaired UTF-16 surrogates'] });
  t.true(lines.every((line) => typeof line.requestId === 'string'), 'each line names its request');
  const logged = service.logs.join('\n');
  t.false(logged.includes('drift.secret@example.com') || logged.includes('nul.secret@example.com'), 'never the body');

  const after = await refusedCounts();
  t.deepEqual(
    { invalid_json: after.invalid_json! - before.invalid_json!, invalid_shape: after.invalid_shape! - before.invalid_shape!, unstorable_text: after.unstorable_text! - before.unstorable_text! },
    { invalid_json: 2, invalid_shape: 1, unstorable_text: 1 },
  );
});

test.serial('a revocation webhook timed before the merchant connected (revoked, connected again, delivered late) is stale: the connection stays', async (t) => {
  const revocation = squarePayload('oauth.authorization.revoked.json');
  revocation.event_id = 'evt-revoked-long-ago';
  revocation.merchant_id = 'M-CAFE';
  const sent = await send(revocation);
  t.is(sent.status, 200);
  t.like(await processed('evt-revoked-long-ago'), { outcome: 'stale', tenantId });
  t.is((await call('GET', '/api/v1/client/pos/square', { token: client })).body.status, 'active');
});

test.serial('no_rule_no_credit until the tenant activates a rule; then credited once, however often Square repeats it', async (t) => {
  const ann = await register('consumer', 'ann@example.com');
  const first = await send(paymentWebhook({ eventId: 'evt-norule', merchantId: 'M-CAFE', paymentId: 'pay-norule', amount: 2500, customerId: 'cust-ann' }));
  t.deepEqual(first, { status: 200, body: { received: true, duplicate: false } });
  t.like(await processed('evt-norule'), { outcome: 'no_rule_no_credit', tenantId, merchantId: 'M-CAFE', attempts: 1 });

  const rule = await call('POST', '/api/v1/client/reward-rules', { token: client, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: client });

  const payload = paymentWebhook({ eventId: 'evt-credit', merchantId: 'M-CAFE', paymentId: 'pay-credit', amount: 1099, tip: 300, customerId: 'cust-ann' });
  const deliveries = await Promise.all(Array.from({ length: 5 }, () => send(payload)));
  t.true(deliveries.every((d) => d.status === 200));
  t.is(deliveries.filter((d) => d.body.duplicate === false).length, 1, 'a repeated event_id is acknowledged, stored once');
  t.like(await processed('evt-credit'), { outcome: 'credited', deliveries: 5 });
  // The same payment reported again under another event id (Square sends payment.updated several times).
  await send({ ...payload, event_id: 'evt-credit-again' });
  t.like(await processed('evt-credit-again'), { outcome: 'duplicate' });
  t.is(await settledBalance(ann.token), 10, '1 point per whole $1 of $10.99, the tip excluded');
  const wallet = await walletOf(ann.token);
  const ledger = await call('GET', `/api/v1/me/wallets/${wallet.walletId}/ledger`, { token: ann.token });
  t.like(ledger.body.items[0], { entryType: 'credit', kind: 'earn', points: 10, paymentId: 'pay-credit' });
});

test.serial("a wallet written behind the worker's back: the batch's append conflicts, is counted in the conflicts metric, and the credit is decided again once", async (t) => {
  square.addCustomer('M-CAFE', { id: 'cust-cara', email: 'cara@example.com', phone: null });
  const cara = await register('consumer', 'cara@example.com');
  await send(paymentWebhook({ eventId: 'evt-cara-first', merchantId: 'M-CAFE', paymentId: 'pay-cara-first', amount: 300, customerId: 'cust-cara' }));
  t.like(await processed('evt-cara-first'), { outcome: 'credited' });
  const before = await settledBalance(cara.token);
  const wallet = await walletOf(cara.token);
  // Another writer (as another instance would) appends to the wallet the worker holds in memory.
  const stream = `wallet-${wallet.walletId}`;
  const { revision } = (await service.tally.store.readStream(stream)).at(-1)!;
  const data = { walletId: wallet.walletId, tenantId, consumerId: cara.id, points: 5, reason: 'written elsewhere', adjustedBy: 'ops', adjustedAs: 'admin', idempotencyKey: `behind-${uuid()}` };
  await service.tally.store.append(stream, [{ id: uuid(), type: 'PointsAdjusted', data, metadata: { schemaVersion: 2 } }], revision);
  const conflicts = async () => {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    return Number(/^tally_eventstore_concurrency_conflicts_total\{category="wallet"\} (\S+)$/m.exec(text)?.[1] ?? 0);
  };
  const counted = await conflicts();
  await send(paymentWebhook({ eventId: 'evt-behind', merchantId: 'M-CAFE', paymentId: 'pay-behind', amount: 700, customerId: 'cust-cara' }));
  t.like(await processed('evt-behind'), { outcome: 'credited' });
  t.is(await settledBalance(cara.token), before! + 5 + 7, 'the adjustment and the credit, each once');
  t.true((await conflicts()) > counted, "the worker's conflict is counted");
});

test.serial("a sale taken before the workspace connected its merchant is not the program's (before_program), even under a rule already active", async (t) => {
  // A new workspace activates its rule, the merchant sells, and only then connects Square.
  square.addMerchant({ merchantId: 'M-LATE', businessName: 'Late Cafe', locations: [{ id: 'L-LATE', name: 'Main' }] });
  square.addCustomer('M-LATE', { id: 'cust-late', email: 'late-buyer@example.com', phone: null });
  const owner = await register('client', 'owner@late.test', { businessName: 'Late Cafe' });
  t.is((await call('PATCH', `/api/v1/admin/users/${owner.id}/approve`, { token: admin })).status, 200);
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  t.is((await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: owner.token })).status, 200);
  await new Promise((resolve) => setTimeout(resolve, 20)); // the sale comes after the rule, on any clock
  const soldAt = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 20)); // the connect after the sale
  await connect(owner.token, 'M-LATE');
  // Square reports that sale now (a tip adjusted, a delayed capture, a delivery again): not the program's.
  await send(paymentWebhook({ eventId: 'evt-before-connect', merchantId: 'M-LATE', paymentId: 'pay-before-connect', amount: 5000, customerId: 'cust-late', createdAt: soldAt }));
  t.like(await processed('evt-before-connect'), { outcome: 'before_program' });
  // A sale after the connect earns as ever (held: the buyer has not joined).
  await send(paymentWebhook({ eventId: 'evt-after-connect', merchantId: 'M-LATE', paymentId: 'pay-after-connect', amount: 5000, customerId: 'cust-late' }));
  t.like(await processed('evt-after-connect'), { outcome: 'stored_anonymous' });
});

test.serial('a refund reverses its share of the points; a refund before its payment waits for it', async (t) => {
  // Only a verified phone matches a purchase: Bob's token vouches for his.
  const bob = await register('consumer', 'bob@example.com', { phone: '+12125554240' }, { phone_number: '+12125554240', phone_number_verified: true });
  await send(refundWebhook({ eventId: 'evt-early-refund', merchantId: 'M-CAFE', refundId: 'ref-early', paymentId: 'pay-bob', amount: 1000 }));
  t.like(await processed('evt-early-refund'), { outcome: 'refund_held' });
  await send(paymentWebhook({ eventId: 'evt-bob', merchantId: 'M-CAFE', paymentId: 'pay-bob', amount: 4000, customerId: 'cust-bob' }));
  t.like(await processed('evt-bob'), { outcome: 'credited' });
  t.is(await settledBalance(bob.token), 40 - 10, '40 points, a quarter refunded before the payment arrived');
  await send(refundWebhook({ eventId: 'evt-refund-2', merchantId: 'M-CAFE', refundId: 'ref-2', paymentId: 'pay-bob', amount: 3000 }));
  t.like(await processed('evt-refund-2'), { outcome: 'refund_applied' });
  t.is(await settledBalance(bob.token), 0, 'never more reversed than the payment earned');
});

test.serial('stored_anonymous: points held for an unknown customer are claimed once when they register', async (t) => {
  await send(paymentWebhook({ eventId: 'evt-anon', merchantId: 'M-CAFE', paymentId: 'pay-anon', amount: 700, customerId: 'cust-later' }));
  t.like(await processed('evt-anon'), { outcome: 'stored_anonymous' });
  await send(paymentWebhook({ eventId: 'evt-nocust', merchantId: 'M-CAFE', paymentId: 'pay-nocust', amount: 900, customerId: null }));
  t.like(await processed('evt-nocust'), { outcome: 'stored_anonymous' });
  const later = await register('consumer', 'LATER@example.com');
  t.is(await settledBalance(later.token), 7);
});

test.serial('a customer Square attaches to a payment after it completed earns: credited to the consumer with its email, once; a later customer.updated attaches', async (t) => {
  // Square fills customer_id asynchronously: the first completed update has none, the next one (a second later) does.
  const dan = await register('consumer', 'dan@example.com');
  square.addCustomer('M-CAFE', { id: 'cust-dan', email: 'dan@example.com', phone: null });
  const at = Date.now();
  const first = paymentWebhook({ eventId: 'evt-dan-1', merchantId: 'M-CAFE', paymentId: 'pay-dan', amount: 2000, customerId: null, updatedAt: new Date(at).toISOString() });
  await send(first);
  t.like(await processed('evt-dan-1'), { outcome: 'stored_anonymous' });
  const withCustomer = paymentWebhook({ eventId: 'evt-dan-2', merchantId: 'M-CAFE', paymentId: 'pay-dan', amount: 2000, customerId: 'cust-dan', updatedAt: new Date(at + 1000).toISOString(), createdAt: first.data.object.payment.created_at });
  await send(withCustomer);
  t.like(await processed('evt-dan-2'), { outcome: 'customer_linked' });
  t.is(await settledBalance(dan.token), 20, '1 point per $1 of $20, claimed by the consumer with the customer\'s email');
  // The same update again under another event id, and the first one again: nothing more.
  await send({ ...withCustomer, event_id: 'evt-dan-3' });
  t.like(await processed('evt-dan-3'), { outcome: 'duplicate' });
  await send({ ...first, event_id: 'evt-dan-4' });
  t.like(await processed('evt-dan-4'), { outcome: 'duplicate' });
  t.is(await settledBalance(dan.token), 20, 'credited once');

  // A customer with no contacts yet when it is linked: its customer.updated attaches its email, whose consumer claims.
  square.addCustomer('M-CAFE', { id: 'cust-eve', email: null, phone: null });
  await send(paymentWebhook({ eventId: 'evt-eve-1', merchantId: 'M-CAFE', paymentId: 'pay-eve', amount: 1500, customerId: null, updatedAt: new Date(at).toISOString() }));
  t.like(await processed('evt-eve-1'), { outcome: 'stored_anonymous' });
  await send(paymentWebhook({ eventId: 'evt-eve-2', merchantId: 'M-CAFE', paymentId: 'pay-eve', amount: 1500, customerId: 'cust-eve', updatedAt: new Date(at + 1000).toISOString(), createdAt: new Date(at).toISOString() }));
  t.like(await processed('evt-eve-2'), { outcome: 'customer_linked' });
  square.addCustomer('M-CAFE', { id: 'cust-eve', email: 'eve@example.com', phone: null });
  const updated = squarePayload('customer.updated.json');
  updated.data.object.customer.email_address = 'eve@example.com';
  // The held purchase is listed by its customer once the read model has the link.
  await service.tally.runner.waitForPosition((await service.tally.store.headPosition())!, 10_000);
  await send({ ...updated, merchant_id: 'M-CAFE', event_id: 'evt-eve-upd', data: { ...updated.data, id: 'cust-eve' } });
  t.like(await processed('evt-eve-upd'), { outcome: 'identity_attached' });
  const eve = await register('consumer', 'eve@example.com');
  t.is(await settledBalance(eve.token), 15);
});

test.serial('other outcomes: ignored types, unknown merchants, and failures that are retried and re-driven', async (t) => {
  const created = squarePayload('customer.created.json');
  await send({ ...created, merchant_id: 'M-CAFE', event_id: 'evt-customer' });
  t.like(await processed('evt-customer'), { outcome: 'ignored' });
  await send(paymentWebhook({ eventId: 'evt-stranger', merchantId: 'M-UNKNOWN', paymentId: 'pay-x', amount: 100 }));
  t.like(await processed('evt-stranger'), { outcome: 'no_connection', tenantId: null });

  // Ann's contacts are cached from her first payment: a customer.updated webhook drops them, so the next
  // payment asks Square again: when it is stored (the look-ahead, customer-look-ahead.test.ts) and, the answer not
  // being cached, when its batch is decided. Square fails every customer look-up until the re-drive.
  const updated = squarePayload('customer.updated.json');
  await send({ ...updated, merchant_id: 'M-CAFE', event_id: 'evt-ann-updated', data: { ...updated.data, id: 'cust-ann' } });
  t.like(await processed('evt-ann-updated'), { outcome: 'ignored' });
  const squareFails = square.failUntilCleared('/v2/customers', { status: 500 });
  await send(paymentWebhook({ eventId: 'evt-fails', merchantId: 'M-CAFE', paymentId: 'pay-fails', amount: 500, customerId: 'cust-ann' }));
  const row = await processed('evt-fails', (r) => r.outcome === 'failed');
  t.like(row, { processed: false, attempts: 1 }, 'a failure is retried with backoff');
  t.truthy(row.nextAttemptAt);
  t.regex(row.error, /INTERNAL_SERVER_ERROR|500/);
  const list = await call('GET', '/api/v1/admin/webhooks?outcome=failed', { token: admin });
  t.true(list.body.items.some((i: { eventId: string }) => i.eventId === 'evt-fails'));
  squareFails();
  const retried = await call('POST', '/api/v1/admin/webhooks/evt-fails/retry', { token: admin });
  t.is(retried.status, 202);
  t.like(await processed('evt-fails'), { outcome: 'credited' });
  t.is((await call('POST', '/api/v1/admin/webhooks/evt-fails/retry', { token: admin })).status, 409, 'a success is not re-driven');
  // An outcome that changes nothing is logged at debug; one that changes a wallet or needs someone at info.
  const outcomeLines = (eventId: string) =>
    eventually(
      async () => service.logs.map((line) => JSON.parse(line)).filter((line) => line.webhookEventId === eventId && line.msg?.startsWith('ingestion outcome: ')),
      (lines) => lines.length > 0,
      { timeoutMs: 5_000, intervalMs: 25 },
    );
  t.like((await outcomeLines('evt-customer'))[0], { level: 'debug', outcome: 'ignored', msg: 'ingestion outcome: ignored', merchantId: 'M-CAFE' });
  t.like((await outcomeLines('evt-ann-updated'))[0], { level: 'debug', outcome: 'ignored' });
  t.like((await outcomeLines('evt-stranger'))[0], { level: 'info', outcome: 'no_connection' });
  t.like((await outcomeLines('evt-fails')).at(-1), { level: 'info', outcome: 'credited', tenantId });
  // A failure whose body was emptied (retention, erasure) has nothing left to process: a 409 saying so.
  await service.database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, processed, processed_at, outcome, body_redacted_at)
     VALUES ('evt-failed-emptied', 'M-CAFE', 'payment.updated', '', true, now(), 'failed', now())`,
  );
  const emptied = await call('POST', '/api/v1/admin/webhooks/evt-failed-emptied/retry', { token: admin });
  t.is(emptied.status, 409);
  t.regex(emptied.body.error.message, /body was emptied \(retention or erasure\)/);
});

test.serial("a look-up Square throttles (429) is retried no sooner than its Retry-After, not at the first second of the backoff", async (t) => {
  await register('consumer', 'fay@example.com');
  square.addCustomer('M-CAFE', { id: 'cust-fay', email: 'fay@example.com' });
  const throttled = square.failUntilCleared('/v2/customers', { status: 429, retryAfter: 120 });
  const sent = Date.now();
  await send(paymentWebhook({ eventId: 'evt-throttled', merchantId: 'M-CAFE', paymentId: 'pay-throttled', amount: 700, customerId: 'cust-fay' }));
  const row = await processed('evt-throttled', (r) => r.outcome === 'failed');
  t.like(row, { processed: false, attempts: 1 });
  t.regex(row.error, /RATE_LIMITED/);
  // The backoff alone would say 0.5–1 s for a first attempt.
  t.true(Date.parse(row.nextAttemptAt) >= sent + 119_000, `due again at ${row.nextAttemptAt}, sent at ${new Date(sent).toISOString()}`);
  t.true(Date.parse(row.nextAttemptAt) <= Date.now() + 121_000);
  throttled();
  t.is((await call('POST', '/api/v1/admin/webhooks/evt-throttled/retry', { token: admin })).status, 202, 'an operator need not wait');
  t.like(await processed('evt-throttled'), { outcome: 'credited' });
});

test.serial("a merchant lists its own webhooks and what each came to (why a payment earned nothing), without the processing error's text", async (t) => {
  const mine = await call('GET', '/api/v1/client/webhooks?limit=200', { token: client });
  t.is(mine.status, 200, JSON.stringify(mine.body));
  const items = mine.body.items as { eventId: string; tenantId: string; outcome: string; objectId: string | null }[];
  t.true(items.length > 0 && items.every((i) => i.tenantId === tenantId), 'its own workspace only');
  t.true(items.every((i) => !('error' in i)), 'no processing error text');
  t.like(items.find((i) => i.eventId === 'evt-norule'), { outcome: 'no_rule_no_credit', objectId: 'pay-norule' });
  const credited = await call('GET', '/api/v1/client/webhooks?outcome=credited', { token: client });
  t.true(credited.body.items.length > 0 && credited.body.items.every((i: { outcome: string }) => i.outcome === 'credited'));
  // Support sees the same list for the workspace; another merchant sees none of it.
  const asAdmin = await call('GET', `/api/v1/client/webhooks?tenantId=${tenantId}&limit=200`, { token: admin });
  t.deepEqual(asAdmin.body.items.map((i: { eventId: string }) => i.eventId), items.map((i) => i.eventId));
  const other = await call('POST', '/api/v1/me/register', { token: await tokenFor('other-merchant', 'owner@other.test'), body: { role: 'client', businessName: 'Other' } });
  t.is(other.status, 201);
  await call('PATCH', '/api/v1/admin/users/other-merchant/approve', { token: admin });
  const theirs = await call('GET', '/api/v1/client/webhooks', { token: await tokenFor('other-merchant', 'owner@other.test') });
  t.deepEqual(theirs.body, { items: [], nextCursor: null });
});

test.serial("a merchant's list shows its webhooks waiting to be processed (stored with no workspace yet) as pending, and no other workspace's list does", async (t) => {
  // Stored, not processed, and due only in an hour: the worker leaves them alone while the lists are read.
  await service.database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, object_id, raw_body, headers, next_attempt_at)
     VALUES ('evt-waiting-cafe', 'M-CAFE', 'payment.updated', 'pay-waiting', '{}', '{}', now() + interval '1 hour'),
            ('evt-waiting-other', 'M-ELSEWHERE', 'payment.updated', 'pay-elsewhere', '{}', '{}', now() + interval '1 hour')`,
  );
  try {
    const pending = await call('GET', '/api/v1/client/webhooks?outcome=pending', { token: client });
    t.is(pending.status, 200, JSON.stringify(pending.body));
    t.deepEqual(
      pending.body.items.map((i: { eventId: string; outcome: string; objectId: string }) => [i.eventId, i.outcome, i.objectId]),
      [['evt-waiting-cafe', 'pending', 'pay-waiting']],
    );
    const all = await call('GET', '/api/v1/client/webhooks?limit=200', { token: client });
    t.is(all.body.items.filter((i: { eventId: string }) => i.eventId.startsWith('evt-waiting-')).length, 1, 'in the whole list too, once');
    const elsewhere = await register('client', 'owner@elsewhere.test', { businessName: 'Elsewhere' });
    t.is((await call('PATCH', `/api/v1/admin/users/${elsewhere.id}/approve`, { token: admin })).status, 200);
    t.deepEqual((await call('GET', '/api/v1/client/webhooks?outcome=pending', { token: elsewhere.token })).body, { items: [], nextCursor: null });
    // A workspace that held the cafe's Square merchant before and let it go keeps its revoked row naming it: it must
    // not see the waiting webhooks of the workspace that connected the merchant since.
    const elsewhereTenant = (await call('GET', '/api/v1/me', { token: elsewhere.token })).body.tenantId as string;
    await service.database.pool.query(
      `INSERT INTO pos_connections (tenant_id, merchant_id, status, scopes, token_expires_at, authorized_at, revoked_at, updated_at)
       VALUES ($1, 'M-CAFE', 'revoked', '{}', now(), now() - interval '1 day', now() - interval '1 hour', now())`,
      [elsewhereTenant],
    );
    try {
      t.deepEqual((await call('GET', '/api/v1/client/webhooks', { token: elsewhere.token })).body, { items: [], nextCursor: null });
    } finally {
      await service.database.pool.query('DELETE FROM pos_connections WHERE tenant_id = $1', [elsewhereTenant]);
    }
  } finally {
    await service.database.pool.query(`DELETE FROM pos_webhook_events_raw WHERE id LIKE 'evt-waiting-%'`);
  }
});

test.serial('the admin list filters by outcome, tenant, type and time, newest first, with a cursor', async (t) => {
  const all = await call('GET', `/api/v1/admin/webhooks?tenantId=${tenantId}&limit=2`, { token: admin });
  t.is(all.status, 200);
  t.is(all.body.items.length, 2);
  t.truthy(all.body.nextCursor);
  const next = await call('GET', `/api/v1/admin/webhooks?tenantId=${tenantId}&limit=2&cursor=${all.body.nextCursor}`, { token: admin });
  t.false(next.body.items.some((i: { eventId: string }) => all.body.items.some((j: { eventId: string }) => j.eventId === i.eventId)));
  t.true(all.body.items[0].receivedAt >= all.body.items[1].receivedAt);
  const byType = await call('GET', '/api/v1/admin/webhooks?type=refund.updated', { token: admin });
  t.true(byType.body.items.length >= 2 && byType.body.items.every((i: { type: string }) => i.type === 'refund.updated'));
  const bad = await call('GET', '/api/v1/admin/webhooks?outcome=happy&from=yesterday', { token: admin });
  t.is(bad.status, 400);
  t.regex(bad.body.error.message, /outcome must be one of/);
  // A mistyped tenant is not "no webhooks": it names no workspace, as on the tenant routes.
  const unknown = await call('GET', '/api/v1/admin/webhooks?tenantId=no-such-tenant', { token: admin });
  t.is(unknown.status, 404);
  t.regex(unknown.body.error.message, /No workspace has tenantId no-such-tenant/);
  // A burst stored by one statement shares one received_at, to the microsecond: paging by 2 lists every one of them,
  // where a cursor at the answers' milliseconds skipped the rest of that millisecond.
  const burst = uuid();
  await service.database.pool.query(`INSERT INTO workspaces (tenant_id, owner_user_id, business_name, provisioned_at) VALUES ($1, $1, 'Burst', now())`, [burst]);
  await service.database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, tenant_id, event_type, raw_body, received_at, processed, outcome)
     SELECT 'evt-burst-' || i, 'M-BURST', $1, 'payment.updated', '{}', '2026-12-07T10:00:00.123456Z', true, 'duplicate' FROM generate_series(1, 5) i`,
    [burst],
  );
  const paged: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: { eventId: string }[]; nextCursor: string | null } } = await call('GET', `/api/v1/admin/webhooks?tenantId=${burst}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: admin });
    paged.push(...page.body.items.map((i) => i.eventId));
    cursor = page.body.nextCursor;
  } while (cursor);
  t.deepEqual(paged, ['evt-burst-5', 'evt-burst-4', 'evt-burst-3', 'evt-burst-2', 'evt-burst-1']);
  // A cursor not made here, even one that decodes (an id with a NUL PostgreSQL would refuse, a year PostgreSQL cannot
  // store), is a 400 naming it.
  for (const forged of [
    Buffer.from(JSON.stringify(['2026-01-01T00:00:00Z', 'evt\u0000x'])).toString('base64url'),
    Buffer.from(JSON.stringify(['0000-01-01T00:00:00Z', 'x'])).toString('base64url'),
    'not-a-cursor',
  ]) {
    const refused = await call('GET', `/api/v1/admin/webhooks?cursor=${forged}`, { token: admin });
    t.is(refused.status, 400, forged);
    t.regex(refused.body.error.message, /cursor/);
  }
});

test.serial('the poll feeds payments of every location through the same path, and advances its cursor', async (t) => {
  const dana = await register('consumer', 'dana@example.com');
  square.addCustomer('M-CAFE', { id: 'cust-dana', email: 'dana@example.com' });
  const now = Date.now();
  square.addPayment('M-CAFE', { id: 'poll-1', locationId: 'L-MAIN', amount: 1500, status: 'COMPLETED', customerId: 'cust-dana', createdAt: new Date(now).toISOString() });
  square.addPayment('M-CAFE', { id: 'poll-2', locationId: 'L-KIOSK', amount: 2500, status: 'COMPLETED', customerId: 'cust-dana', createdAt: new Date(now + 10).toISOString() });
  t.is((await call('POST', '/api/v1/internal/cron/square-poll-payments')).status, 401);
  t.is((await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': 'wrong' } })).status, 401);
  const first = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
  t.is(first.status, 200);
  const summary = first.body.connections.find((c: { tenantId: string }) => c.tenantId === tenantId);
  t.like(summary, { merchantId: 'M-CAFE', status: 'ok', credited: 2 });
  t.is(await settledBalance(dana.token), 40);
  const second = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
  const again = second.body.connections.find((c: { tenantId: string }) => c.tenantId === tenantId);
  t.is(again.credited, 0, 'nothing is credited twice');
  // A webhook for a payment the poll already credited is a duplicate.
  await send(paymentWebhook({ eventId: 'evt-poll-1', merchantId: 'M-CAFE', paymentId: 'poll-1', amount: 1500, customerId: 'cust-dana' }));
  t.like(await processed('evt-poll-1'), { outcome: 'duplicate' });
});

test.serial('a payment Square lists late, with an updated_at older than one already polled, is credited once by the next poll', async (t) => {
  const lena = await register('consumer', 'lena@example.com');
  square.addCustomer('M-CAFE', { id: 'cust-lena', email: 'lena@example.com' });
  const poll = async () => {
    const polled = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
    return polled.body.connections.find((c: { tenantId: string }) => c.tenantId === tenantId);
  };
  const at = Date.now();
  // Till 1's sale (updated first) reaches Square's list after till 2's (updated a second later) was polled.
  square.addPayment('M-CAFE', { id: 'till-1', locationId: 'L-MAIN', amount: 5000, status: 'COMPLETED', customerId: 'cust-lena', createdAt: new Date(at).toISOString() }, { listed: false });
  square.addPayment('M-CAFE', { id: 'till-2', locationId: 'L-MAIN', amount: 1000, status: 'COMPLETED', customerId: 'cust-lena', createdAt: new Date(at + 1000).toISOString() });
  t.like(await poll(), { status: 'ok', credited: 1 });
  t.is(await settledBalance(lena.token), 10);

  square.listPayment('M-CAFE', 'till-1');
  const late = await poll();
  t.like(late, { status: 'ok', seen: 1, credited: 1, duplicate: 0 }, 'the late payment, and only it, is new');
  t.true(late.reread >= 1, 'till 2 was listed again within the overlap and counted as a re-read');
  t.is(await settledBalance(lena.token), 60);

  t.like(await poll(), { status: 'ok', seen: 0, credited: 0, duplicate: 0 }, 'nothing is credited twice');
  t.is(await settledBalance(lena.token), 60);
});

test.serial('a poll that meets a 429 backs off and completes', async (t) => {
  square.addPayment('M-CAFE', { id: 'poll-429', locationId: 'L-MAIN', amount: 100, status: 'COMPLETED', createdAt: new Date().toISOString() });
  square.failNext('/v2/payments', { status: 429, retryAfter: 1 });
  const polled = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
  const summary = polled.body.connections.find((c: { tenantId: string }) => c.tenantId === tenantId);
  t.is(summary.status, 'ok');
  t.is(summary.stored_anonymous, 1);
});

test.serial('the poll links a customer Square attached to a payment after a poll recorded it held for nobody: credited once', async (t) => {
  const fred = await register('consumer', 'fred@example.com');
  square.addCustomer('M-CAFE', { id: 'cust-fred', email: 'fred@example.com', phone: null });
  const poll = async () => {
    const polled = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
    return polled.body.connections.find((c: { tenantId: string }) => c.tenantId === tenantId);
  };
  const createdAt = new Date().toISOString();
  square.addPayment('M-CAFE', { id: 'poll-fred', locationId: 'L-MAIN', amount: 3000, status: 'COMPLETED', createdAt });
  t.like(await poll(), { status: 'ok', stored_anonymous: 1 });
  square.addPayment('M-CAFE', { id: 'poll-fred', locationId: 'L-MAIN', amount: 3000, status: 'COMPLETED', customerId: 'cust-fred', createdAt, updatedAt: new Date(Date.parse(createdAt) + 1000).toISOString() });
  t.like(await poll(), { status: 'ok', stored_anonymous: 0, duplicate: 0 });
  t.is(await settledBalance(fred.token), 30);
  await poll();
  t.is(await settledBalance(fred.token), 30, 'credited once');
});

test.serial('operators list every connection with its last poll and error', async (t) => {
  const head = await service.tally.store.headPosition();
  const listed = await call('GET', '/api/v1/admin/connections', { token: admin, headers: head ? { 'x-min-position': head } : {} });
  t.is(listed.status, 200);
  const mine = listed.body.items.find((c: { tenantId: string }) => c.tenantId === tenantId);
  t.like(mine, { status: 'active', merchantId: 'M-CAFE' });
  t.truthy(mine.lastPolledAt, 'the poll is visible');
  const active = await call('GET', '/api/v1/admin/connections?status=active', { token: admin });
  t.true(active.body.items.every((c: { status: string }) => c.status === 'active'));
  t.truthy(active.body.items.find((c: { tenantId: string }) => c.tenantId === tenantId), 'the filter keeps the active connection');
  t.is((await call('GET', '/api/v1/admin/connections?status=broken', { token: admin })).status, 400);
  t.is((await call('GET', `/api/v1/admin/wallets/${'0'.repeat(8)}-0000-4000-8000-000000000000/reconcile`, { token: admin })).status, 404);
});

test.serial('the connections list pages past 1,000 tenants with a cursor: every connection once, those changed longest ago too', async (t) => {
  // 1,001 connections waiting for a reconnection, all changed at one microsecond-exact time: a page ends inside the tie.
  await service.database.pool.query(
    `INSERT INTO pos_connections (tenant_id, merchant_id, status, scopes, token_expires_at, authorized_at, updated_at)
     SELECT 'paged-' || lpad(i::text, 4, '0'), 'MP' || i, 'needs_reconnect', '{}', now(), now(), timestamptz '2020-01-01T00:00:00.000123Z'
       FROM generate_series(1, 1001) i`,
  );
  try {
    const listed: { tenantId: string; status: string }[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?cursor=${cursor}` : '';
      const page = await call('GET', `/api/v1/admin/connections${query}`, { token: admin });
      t.is(page.status, 200);
      t.true(page.body.items.length <= 1000);
      listed.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    const paged = listed.map((c) => c.tenantId).filter((id) => id.startsWith('paged-'));
    t.deepEqual(paged, Array.from({ length: 1001 }, (_, i) => `paged-${String(i + 1).padStart(4, '0')}`), 'each once, by tenant id');
    t.truthy(listed.find((c) => c.tenantId === tenantId), 'and the real one');
    t.is(new Set(listed.map((c) => c.tenantId)).size, listed.length);
    const small = await call('GET', '/api/v1/admin/connections?status=needs_reconnect&limit=2', { token: admin });
    t.is(small.body.items.length, 2);
    t.truthy(small.body.nextCursor);
    t.is((await call('GET', '/api/v1/admin/connections?cursor=not-a-cursor', { token: admin })).status, 400);
    t.is((await call('GET', '/api/v1/admin/connections?limit=1001', { token: admin })).status, 400);
  } finally {
    await service.database.pool.query(`DELETE FROM pos_connections WHERE tenant_id LIKE 'paged-%'`);
  }
});

test.serial('a connection that changes while an operator pages the connections list is still listed, once', async (t) => {
  // Six connections, changed one a day apart; the fifth is polled (its row changes) after the first page was read.
  await service.database.pool.query(
    `INSERT INTO pos_connections (tenant_id, merchant_id, status, scopes, token_expires_at, authorized_at, updated_at)
     SELECT 'moving-' || i, 'MM' || i, 'active', '{}', now(), now(), timestamptz '2020-01-10T00:00:00Z' - i * interval '1 day'
       FROM generate_series(1, 6) i`,
  );
  try {
    const listed: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; body: { items: { tenantId: string }[]; nextCursor: string | null } } = await call(
        'GET',
        `/api/v1/admin/connections?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        { token: admin },
      );
      t.is(page.status, 200);
      listed.push(...page.body.items.map((c) => c.tenantId));
      cursor = page.body.nextCursor;
      if (++pages === 1) {
        const unlisted = ['moving-1', 'moving-2', 'moving-3', 'moving-4', 'moving-5', 'moving-6'].filter((id) => !listed.includes(id)).at(-1);
        await service.database.pool.query(`UPDATE pos_connections SET updated_at = now(), last_polled_at = now() WHERE tenant_id = $1`, [unlisted]);
      }
    } while (cursor);
    t.deepEqual(listed.filter((id) => id.startsWith('moving-')).sort(), ['moving-1', 'moving-2', 'moving-3', 'moving-4', 'moving-5', 'moving-6']);
    t.is(new Set(listed).size, listed.length, 'none twice');
  } finally {
    await service.database.pool.query(`DELETE FROM pos_connections WHERE tenant_id LIKE 'moving-%'`);
  }
});

test.serial('the state ingestion decides on is never behind a write made before the webhook: a new rule counts at once, a revocation stops credits at once', async (t) => {
  const erin = await register('consumer', 'erin@example.com');
  square.addCustomer('M-CAFE', { id: 'cust-erin', email: 'erin@example.com', phone: null });
  await send(paymentWebhook({ eventId: 'evt-erin-1', merchantId: 'M-CAFE', paymentId: 'pay-erin-1', amount: 1000, customerId: 'cust-erin' }));
  t.like(await processed('evt-erin-1'), { outcome: 'credited' });
  const before = await settledBalance(erin.token);

  // A triple-points rule activated, and the very next webhook earns by it: the in-memory rules caught up first.
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: client, body: { kind: 'spend', points: 3, per: 100, basis: 'amount' } });
  t.is((await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: client })).status, 200);
  await send(paymentWebhook({ eventId: 'evt-erin-2', merchantId: 'M-CAFE', paymentId: 'pay-erin-2', amount: 1000, customerId: 'cust-erin' }));
  t.like(await processed('evt-erin-2'), { outcome: 'credited' });
  t.is(await settledBalance(erin.token), (before ?? 0) + 30, '3 points per $1 on $10, by the rule activated just before');

  // The merchant disconnects; a payment webhook right after it finds no connection and credits nothing.
  const disconnected = await call('DELETE', '/api/v1/client/pos/square', { token: client });
  t.is(disconnected.status, 200);
  await send(paymentWebhook({ eventId: 'evt-erin-3', merchantId: 'M-CAFE', paymentId: 'pay-erin-3', amount: 1000, customerId: 'cust-erin' }));
  t.like(await processed('evt-erin-3'), { outcome: 'no_connection' });
  t.is(await settledBalance(erin.token), (before ?? 0) + 30);
  // Reconnected for what follows.
  await connect(client, 'M-CAFE');
});

test.serial('a customer.updated processed while the held purchase is not yet in the read model still gets its identity to the purchase', async (t) => {
  square.addCustomer('M-CAFE', { id: 'cust-lag', email: null, phone: null });
  // The held_points read model lagging behind (a burst, another batch in flight): its writes wait on this lock.
  const blocker = await service.database.pool.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE held_purchases_by_customer IN SHARE ROW EXCLUSIVE MODE');
  try {
    await send(paymentWebhook({ eventId: 'evt-lag-pay', merchantId: 'M-CAFE', paymentId: 'pay-lag', amount: 700, customerId: 'cust-lag' }));
    t.like(await processed('evt-lag-pay'), { outcome: 'stored_anonymous' });
    square.addCustomer('M-CAFE', { id: 'cust-lag', email: 'lag@example.com', phone: null });
    const updated = squarePayload('customer.updated.json');
    updated.data.object.customer.email_address = 'lag@example.com';
    await send({ ...updated, merchant_id: 'M-CAFE', event_id: 'evt-lag-upd', data: { ...updated.data, id: 'cust-lag' } });
    t.like(await processed('evt-lag-upd'), { outcome: 'ignored' }, 'the read model listed nothing to attach to');
  } finally {
    await blocker.query('COMMIT');
    blocker.release();
  }
  const lag = await register('consumer', 'lag@example.com');
  t.is(await settledBalance(lag.token), 21, 'the consumer with the email Square now has is credited the held purchase (3 points per $1)');
});

test.serial('the logs of the whole run hold no secret and no token', async (t) => {
  const { config } = service.tally;
  const secrets = [WEBHOOK_KEY, CRON_SECRET, TEST_APP_SECRET, TEST_JWT_SECRET, config.IDENTITY_HASH_KEY, config.ENCRYPTION_KEY, client, admin];
  // Every access token the service used against Square, as Square saw it.
  const tokens = [...new Set(square.requests.map((r) => /^Bearer (.+)$/.exec(r.authorization ?? '')?.[1]).filter((v): v is string => Boolean(v)))];
  t.true(tokens.length > 0);
  const logs = service.logs.join('\n');
  t.true(service.logs.length > 50, 'the run did log');
  for (const secret of [...secrets, ...tokens]) t.false(logs.includes(secret), `a secret (${secret.slice(0, 4)}…) is in the logs`);
  t.regex(logs, /ingestion outcome: credited/, 'the outcomes operators look for are logged');
  // Where the worker has a thread of its own, its lines come through the service's logger, marked as its own.
  const workerLines = service.logs.filter((line) => line.includes('ingestion outcome: credited'));
  const onThread = workerLines.filter((line) => (JSON.parse(line) as { thread?: string }).thread === 'webhooks');
  t.is(onThread.length, process.env.TEST_WEBHOOK_WORKER_THREAD === 'true' ? workerLines.length : 0);
});
