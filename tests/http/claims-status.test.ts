/**
 * Who may claim held points: only an approved consumer, as ingestion credits only them. A suspended consumer's
 * purchases stay held (not claimed one hop later by the claims reactor), and are claimed on reinstatement while
 * within the claim window.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually, until } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, squarePayload, webhookSender } from '../support/square-webhooks.ts';
import { scenario } from '../support/tenants.ts';
import { codeSentTo } from '../support/sms.ts';

const WEBHOOK_KEY = 'test-webhook-signature-key';
const API_BASE_URL = 'https://api.tally.test';
const ADMIN_EMAIL = 'root@claims.test';

let square: SquareTestServer;
let service: TestService;
let call: ReturnType<typeof api>;
let send: ReturnType<typeof webhookSender>;
let world: ReturnType<typeof scenario>;
let admin: string;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-CLAIMS', businessName: 'Claims Cafe', locations: [{ id: 'L-1', name: 'Main' }] });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: ADMIN_EMAIL,
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
  });
  call = api(service.url);
  send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  world = scenario(service, square);
  admin = await tokenFor('root-claims', ADMIN_EMAIL);
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  const merchant = await world.merchant({ id: 'root-claims', token: admin }, 'owner@claims-cafe.test');
  await world.connect(merchant, 'M-CLAIMS');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

async function consumer(email: string, claims: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, id = uuid()) {
  const token = await tokenFor(id, email, { claims });
  const response = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', ...extra } });
  if (response.body.position) await service.tally.runner.waitForPosition(response.body.position, 15_000);
  return { id, token, response };
}

let payments = 0;
async function pay(customerId: string, amount: number): Promise<string> {
  await world.settle();
  const eventId = `evt-${++payments}-${uuid().slice(0, 6)}`;
  await send(paymentWebhook({ eventId, merchantId: 'M-CLAIMS', paymentId: `pay-${eventId}`, amount, customerId }));
  const row = await eventually(() => call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin }), (r) => r.status === 200 && r.body.processed, { timeoutMs: 10_000, intervalMs: 50 });
  return row.body.outcome as string;
}

/** Sum of the consumer's balances in the read model (works while suspended). */
async function dbBalance(consumerId: string): Promise<number> {
  await world.settle();
  const { rows } = await service.database.pool.query<{ b: string }>(`SELECT coalesce(sum(points_balance),0)::text AS b FROM wallets WHERE consumer_id = $1`, [consumerId]);
  return Number(rows[0]!.b);
}

test.serial('a suspended consumer earns nothing, not even through the claims reactor; reinstated, what was held meanwhile is theirs', async (t) => {
  square.addCustomer('M-CLAIMS', { id: 'cust-susp', email: 'susp@example.com', phone: null });
  const person = await consumer('susp@example.com');
  t.is(await pay('cust-susp', 1000), 'credited');
  t.is(await dbBalance(person.id), 10);
  t.is((await call('PATCH', `/api/v1/admin/users/${person.id}/suspend`, { token: admin, body: { reason: 'fraud' } })).status, 200);
  await world.settle();
  t.is(await pay('cust-susp', 2500), 'stored_anonymous');
  t.is(await dbBalance(person.id), 10, 'the purchase stays held: the claims reactor does not credit a suspended consumer');
  t.is((await call('PATCH', `/api/v1/admin/users/${person.id}/reinstate`, { token: admin })).status, 200);
  await until(() => dbBalance(person.id), (balance) => balance === 35, { timeoutMs: 10_000, intervalMs: 50 });
  t.pass();
});

test.serial('a code sent before a suspension verifies nothing after it, and claims nothing', async (t) => {
  square.addCustomer('M-CLAIMS', { id: 'cust-phone-s', email: null, phone: '+1 646 555 0177' });
  t.is(await pay('cust-phone-s', 4200), 'stored_anonymous');
  const person = await consumer('phone-s@example.com', {}, { phone: '+16465550177' });
  t.is((await call('POST', '/api/v1/me/phone/verification', { token: person.token })).status, 202);
  t.is((await call('PATCH', `/api/v1/admin/users/${person.id}/suspend`, { token: admin, body: { reason: 'abuse' } })).status, 200);
  await world.settle();
  const verified = await call('POST', '/api/v1/me/phone/verify', { token: person.token, body: { code: codeSentTo(service.logs, '+16465550177') } });
  t.is(verified.status, 403);
  t.is(await dbBalance(person.id), 0);
});
