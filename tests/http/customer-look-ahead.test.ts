/**
 * Square customers are looked up as soon as their payment's webhook is stored (`lookAhead`, wiring/ingestion.ts),
 * not when the webhook's batch is decided: the batch then finds the contacts in the cache instead of waiting for
 * Square (100–300 ms). Shown with the worker held back: while another webhook is being acknowledged, the worker
 * on the service's thread leases nothing (WEBHOOK_ACK_PRIORITY_PENDING=1: one pending acknowledgement counts as
 * queueing; WEBHOOK_ACK_PRIORITY_MS 60 s, the most allowed), so a lookup Square receives meanwhile
 * can only be the look-ahead's. That acknowledgement is held in its inbox insert, which waits on a row of the same
 * event id that the test has inserted in a transaction of its own. Once the test rolls it back, the acknowledgement
 * is answered and the batch decides on the cached answer: one lookup in all, and the credit.
 *
 * While acknowledgements queue (a burst), the look-ahead holds the customers back, here for 300 ms at most
 * (WEBHOOK_LOOK_AHEAD_HOLD_MS; by default as long as the worker defers), and then asks Square for each merchant's
 * in one bulk call.
 */
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { eventually, until } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';
import { scenario, type Actor } from '../support/tenants.ts';

const WEBHOOK_KEY = 'test-webhook-signature-key';
const API_BASE_URL = 'https://api.tally.test';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;

let square: SquareTestServer;
let service: TestService;
let admin: Actor;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-AHEAD', businessName: 'Ahead', locations: [{ id: 'L-MAIN', name: 'Main' }] });
  square.addCustomer('M-AHEAD', { id: 'cust-ahead', email: 'ahead@example.com', phone: null });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@tally.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    WEBHOOK_ACK_PRIORITY_MS: '60000',
    WEBHOOK_ACK_PRIORITY_PENDING: '1',
    WEBHOOK_LOOK_AHEAD_HOLD_MS: '300',
  });
  admin = await scenario(service, square).register('consumer', 'ops@tally.test');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

/** Customers are looked up in bulk (POST /v2/customers/bulk-retrieve): the calls that named `customerId`. */
const lookupsOf = (customerId: string) =>
  square.requests.filter((r) => r.path === `/v2/customers/${customerId}` || (r.path === '/v2/customers/bulk-retrieve' && (r.body as { customer_ids: string[] }).customer_ids.includes(customerId)));

/**
 * An acknowledgement held in its inbox insert (the test's own uncommitted row of the same event id makes it wait):
 * while it is pending, acknowledgements queue (WEBHOOK_ACK_PRIORITY_PENDING=1) and the worker leases nothing.
 */
async function holdAnAcknowledgement(t: ExecutionContext, eventId: string) {
  const blocker = await service.database.pool.connect();
  await blocker.query('BEGIN');
  await blocker.query(`INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, headers) VALUES ($1, 'M-NOBODY', 'payment.updated', '{}', '{}')`, [eventId]);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await blocker.query('ROLLBACK');
    blocker.release();
  };
  t.teardown(release);
  const send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  const held = send(paymentWebhook({ eventId, merchantId: 'M-NOBODY', paymentId: `pay-${eventId}`, amount: 100, customerId: 'cust-nobody' }));
  await until(async () => service.database.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO pos_webhook_events_raw%'`), (r) => r.rows[0].n === 1, { timeoutMs: 5_000, intervalMs: 5 });
  return { release, held };
}

test.serial('a completed payment’s Square customer is looked up when its webhook is stored, before its batch, and only once', async (t) => {
  const { call, register, merchant, connect, balances } = scenario(service, square);
  const owner = await merchant(admin, 'owner@ahead.test');
  // Connected just now: no batch has been decided since, so the look-ahead's view of the connections is behind
  // and must catch up before it knows the merchant.
  await connect(owner, 'M-AHEAD');
  const consumer = await register('consumer', 'ahead@example.com');
  const send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  const { release, held } = await holdAnAcknowledgement(t, 'evt-held');
  const stored = await send(paymentWebhook({ eventId: 'evt-ahead', merchantId: 'M-AHEAD', paymentId: 'pay-ahead', amount: 1500, customerId: 'cust-ahead' }));
  t.is(stored.status, 200);
  t.is(await eventually(async () => lookupsOf('cust-ahead').length, (n) => n > 0, { timeoutMs: 5_000, intervalMs: 10 }), 1, 'Square was asked for the customer');
  const row = await call('GET', '/api/v1/admin/webhooks/evt-ahead', { token: admin.token });
  t.like(row.body, { processed: false, attempts: 0 }, 'while the webhook was not yet leased');

  // The held acknowledgement is answered: the worker leases the payment and decides it on the cached contacts.
  await release();
  t.is((await held).status, 200);
  const settled = await eventually(
    () => call('GET', '/api/v1/admin/webhooks/evt-ahead', { token: admin.token }),
    (r) => r.body.processed === true,
    { timeoutMs: 10_000, intervalMs: 20 },
  );
  t.like(settled.body, { outcome: 'credited', attempts: 1 });
  t.is(lookupsOf('cust-ahead').length, 1, 'the batch did not ask Square again');
  t.is((await balances(consumer))[owner.tenantId], 15);
});

test.serial('while acknowledgements queue, the customers stored meanwhile are looked up together: one bulk call for the merchant', async (t) => {
  const { call } = scenario(service, square);
  const send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  const ids = ['cust-burst-1', 'cust-burst-2', 'cust-burst-3'] as const;
  for (const id of ids) square.addCustomer('M-AHEAD', { id, email: `${id}@example.com`, phone: null });
  const { release, held } = await holdAnAcknowledgement(t, 'evt-held-burst');
  // One after the other, each stored in a turn of its own: outside a burst, each would be looked up on its own.
  for (const [i, id] of ids.entries()) {
    const stored = await send(paymentWebhook({ eventId: `evt-burst-${i}`, merchantId: 'M-AHEAD', paymentId: `pay-burst-${i}`, amount: 500, customerId: id }));
    t.is(stored.status, 200);
  }
  // Held for 300 ms at most although acknowledgements still queue (the held one), then asked for in one call.
  const calls = await eventually(async () => lookupsOf(ids[0]), (found) => found.length > 0, { timeoutMs: 5_000, intervalMs: 10 });
  t.deepEqual(calls.map((c) => [...(c.body as { customer_ids: string[] }).customer_ids].sort()), [ids]);
  for (const id of ids) t.is(lookupsOf(id).length, 1, `${id} was asked for once`);
  await release();
  t.is((await held).status, 200);
  for (const i of ids.keys()) {
    const done = await eventually(() => call('GET', `/api/v1/admin/webhooks/evt-burst-${i}`, { token: admin.token }), (r) => r.body.processed === true, { timeoutMs: 10_000, intervalMs: 20 });
    t.like(done.body, { processed: true, attempts: 1 });
  }
  for (const id of ids) t.is(lookupsOf(id).length, 1, `the batch did not ask Square for ${id} again`);
});

test.serial('nothing is looked up ahead for a payment that does not complete, nor for a merchant that is not connected', async (t) => {
  const send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  const { call } = scenario(service, square);
  square.addCustomer('M-AHEAD', { id: 'cust-approved', email: 'approved@example.com', phone: null });
  const before = square.requests.length;
  const approved = paymentWebhook({ eventId: 'evt-approved', merchantId: 'M-AHEAD', paymentId: 'pay-approved', amount: 900, customerId: 'cust-approved', status: 'APPROVED' });
  t.is((await send(approved)).status, 200);
  t.is((await send(paymentWebhook({ eventId: 'evt-stranger', merchantId: 'M-NOBODY', paymentId: 'pay-stranger', amount: 900, customerId: 'cust-x' }))).status, 200);
  for (const eventId of ['evt-approved', 'evt-stranger']) {
    const done = await eventually(() => call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin.token }), (r) => r.body.processed === true, { timeoutMs: 10_000, intervalMs: 20 });
    t.true(done.body.processed);
  }
  t.deepEqual(
    square.requests.slice(before).filter((r) => r.path.startsWith('/v2/customers')),
    [],
  );
});

/** A webhook request that sends its headers and holds its body back until `finish` (a client dribbling one). */
async function bodyHeldBack(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let received = '';
  const answered = new Promise<string>((resolve) => {
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (/HTTP\/1\.1 [2-5]\d\d/.test(received)) resolve(received);
    });
  });
  const body = '{"not":"finished yet"}';
  socket.write(
    `POST /api/v1/webhooks/square HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
      'X-Square-HmacSha256-Signature: bm90IGEgc2lnbmF0dXJl\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
  );
  await until(async () => received, (text) => text.includes('100 Continue'), { timeoutMs: 5_000, intervalMs: 5 });
  if (!received.includes('100 Continue')) throw new Error('the service never took the request');
  let finished: Promise<string> | undefined;
  return {
    finish: () =>
      (finished ??= (async () => {
        socket.write(body);
        const answer = await answered;
        socket.destroy();
        return answer;
      })()),
  };
}

test.serial('a request still sending its body is not an acknowledgement under way: a client dribbling one does not hold the worker back', async (t) => {
  const { call } = scenario(service, square);
  const send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  const dribbling = await bodyHeldBack(service.url);
  t.teardown(() => dribbling.finish());
  // One pending acknowledgement would count as queueing here (WEBHOOK_ACK_PRIORITY_PENDING=1), and the worker would wait 60 s.
  t.is((await send(paymentWebhook({ eventId: 'evt-beside', merchantId: 'M-AHEAD', paymentId: 'pay-beside', amount: 700, customerId: 'cust-ahead' }))).status, 200);
  const done = await eventually(() => call('GET', '/api/v1/admin/webhooks/evt-beside', { token: admin.token }), (r) => r.body.processed === true, { timeoutMs: 10_000, intervalMs: 20 });
  t.like(done.body, { processed: true, outcome: 'credited' });
  t.regex(await dribbling.finish(), /HTTP\/1\.1 401/, 'the held request is answered once its body is in');
});
