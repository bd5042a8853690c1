/**
 * Hostile input at the webhook endpoint: malformed JSON, wrong types, huge numbers, deep nesting, missing
 * fields, valid signatures over odd payloads. Never a 500, never a stored effect from an unsigned body,
 * never a crash; the worker settles every stored odd payload with an outcome.
 */
import test from 'ava';
import fc from 'fast-check';
import { startTestService, type TestService } from '../support/service.ts';
import { eventually } from '../support/eventually.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { squareEnv, startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, squarePayload, squareSignature } from '../support/square-webhooks.ts';
import { scenario, type Actor, type Merchant } from '../support/tenants.ts';

const KEY = 'fuzz-webhook-key';
const API_BASE_URL = 'https://api.fuzz.test';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
/** A merchant connected to Tally, with an active spend rule and two customers known to Tally: its payments reach the points. */
const CONNECTED = 'M-FUZZ';
let square: SquareTestServer;
let service: TestService;
let admin: Actor;
let merchant: Merchant;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: CONNECTED, businessName: 'Fuzz Cafe', locations: [{ id: 'L-1', name: 'Main' }] });
  square.addCustomer(CONNECTED, { id: 'cust-0', email: 'c0@fuzz.test', phone: null });
  square.addCustomer(CONNECTED, { id: 'cust-1', email: 'c1@fuzz.test', phone: null });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@fuzz.test',
    ...squareEnv(square, KEY, API_BASE_URL),
    LOG_LEVEL: 'warn',
  });
  const world = scenario(service, square);
  admin = await world.register('consumer', 'ops@fuzz.test');
  merchant = await world.merchant(admin, 'owner@fuzz.test');
  await world.connect(merchant, CONNECTED);
  await world.register('consumer', 'c0@fuzz.test');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

async function post(body: string, signature: string | null) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signature !== null) headers['x-square-hmacsha256-signature'] = signature;
  const response = await fetch(`${service.url}/api/v1/webhooks/square`, { method: 'POST', headers, body });
  const text = await response.text();
  return { status: response.status, text };
}

const inboxCount = async () => Number((await service.database.pool.query<{ n: string }>('SELECT count(*) AS n FROM pos_webhook_events_raw')).rows[0]!.n);

/** Bodies that look more or less like Square's envelope, with every field possibly of the wrong type. */
const anything = fc.oneof(fc.jsonValue(), fc.double(), fc.bigInt().map(String), fc.string({ maxLength: 300 }));
const envelope = fc.record(
  {
    event_id: fc.oneof(fc.uuid(), anything),
    type: fc.oneof(fc.constantFrom('payment.updated', 'payment.created', 'refund.updated', 'oauth.authorization.revoked', 'customer.created', 'x'), anything),
    merchant_id: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), anything),
    created_at: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), anything),
    data: fc.oneof(
      fc.record({
        type: fc.constantFrom('payment', 'refund'),
        id: fc.string(),
        object: fc.record({
          payment: fc.record(
            {
              id: fc.string(),
              status: fc.oneof(fc.constantFrom('COMPLETED', 'APPROVED'), anything),
              amount_money: fc.oneof(fc.record({ amount: fc.oneof(fc.integer(), fc.double(), fc.constant(1e308), fc.constant(-1), anything), currency: fc.string() }), anything),
              location_id: anything,
              updated_at: anything,
            },
            { requiredKeys: [] },
          ),
        }),
      }),
      anything,
    ),
  },
  { requiredKeys: [] },
);
const deep = fc.integer({ min: 1, max: 5000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth));
/** Square's own example of a type we do not act on, with odd extra fields and odd ids: accepted and ignored. */
const validOther = fc
  .record({ eventId: fc.uuid(), merchant: fc.string({ minLength: 1, maxLength: 40 }), extra: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue()) })
  .map(({ eventId, merchant, extra }) => JSON.stringify({ ...extra, ...squarePayload('customer.created.json'), event_id: eventId, merchant_id: merchant }));
/**
 * A payment of the connected merchant, as Square sends it, with its figures and fields made odd: amounts huge,
 * negative, fractional or not numbers, tips, currencies, statuses, times and customers of any kind. These reach
 * the points: the rule, the wallet's bounds, held purchases.
 */
/** Mostly what a till takes, so that most payments are stored and decided; now and then anything. */
const usually = <T, U>(common: fc.Arbitrary<T>, odd: fc.Arbitrary<U>) => fc.oneof({ arbitrary: common, weight: 4 }, { arbitrary: odd, weight: 1 });
const oddAmount = usually(
  fc.integer({ min: 0, max: 100_000 }),
  fc.oneof(fc.integer(), fc.integer({ min: 10 ** 12, max: Number.MAX_SAFE_INTEGER }), fc.double(), fc.constant(1e308), fc.constant(-1), anything),
);
const connectedPayment = fc
  .record({
    eventId: fc.uuid(),
    paymentId: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 40 })),
    amount: oddAmount,
    tip: fc.option(oddAmount),
    currency: usually(fc.constant('USD'), fc.oneof(fc.constantFrom('EUR', 'JPY'), fc.string({ maxLength: 5 }))),
    status: usually(fc.constant('COMPLETED'), fc.oneof(fc.constantFrom('APPROVED', 'CANCELED', 'FAILED'), anything)),
    customerId: fc.constantFrom(null, 'cust-0', 'cust-1'),
    updatedAt: usually(fc.constant(new Date().toISOString()), fc.oneof(fc.date({ noInvalidDate: true, min: new Date('1970-01-01'), max: new Date('2999-12-31') }).map((d) => d.toISOString()), anything)),
  })
  .map(({ eventId, paymentId, amount, tip, currency, status, customerId, updatedAt }) => {
    const payload = paymentWebhook({ eventId, merchantId: CONNECTED, paymentId, amount: 100, customerId });
    const payment = payload.data.object.payment;
    payment.amount_money = { amount, currency };
    if (tip !== null) payment.tip_money = { amount: tip, currency };
    payment.total_money = { amount, currency };
    payment.status = status;
    payment.updated_at = updatedAt;
    return JSON.stringify(payload);
  });
const body = fc.oneof(
  { arbitrary: connectedPayment, weight: 4 },
  validOther,
  envelope.map((e) => JSON.stringify(e)),
  anything.map((v) => JSON.stringify(v) ?? 'null'),
  fc.string({ maxLength: 500 }),
  deep,
);

test.serial('signed odd payloads get 200 or a 400 that says what is wrong, never a 500', async (t) => {
  let cases = 0;
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(body, async (text) => {
      cases++;
      const response = await post(text, squareSignature(KEY, NOTIFICATION_URL, text));
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status === 400) return JSON.parse(response.text).error.message.length > 0;
      return response.status === 200 || response.status === 413;
    }),
    { numRuns: 400 },
  );
  t.log(`${cases} signed cases: ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.true((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, 'both accepted and refused bodies were generated');
});

test.serial('unsigned or wrongly signed bodies are 401 and store nothing', async (t) => {
  const before = await inboxCount();
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(body, fc.oneof(fc.constant(null), fc.base64String(), fc.string()), async (text, signature) => {
      cases++;
      const response = await post(text, signature);
      return response.status === 401;
    }),
    { numRuns: 200 },
  );
  t.is(await inboxCount(), before, 'nothing stored from an unsigned body');
  t.log(`${cases} unsigned cases`);
});

test.serial('after the fuzzing the service is alive and every stored webhook is settled with an outcome', async (t) => {
  t.is((await fetch(`${service.url}/healthz`)).status, 200);
  const pending = await eventually(
    async () => Number((await service.database.pool.query<{ n: string }>('SELECT count(*) AS n FROM pos_webhook_events_raw WHERE NOT processed')).rows[0]!.n),
    (n) => n === 0,
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  t.is(pending, 0);
  const outcomes = await service.database.pool.query<{ outcome: string; n: string }>('SELECT outcome, count(*) AS n FROM pos_webhook_events_raw GROUP BY outcome');
  const counts = Object.fromEntries(outcomes.rows.map((r) => [r.outcome, Number(r.n)]));
  t.log(`outcomes: ${JSON.stringify(counts)}`);
  t.true(outcomes.rows.every((r) => r.outcome !== null && r.outcome !== 'failed'), JSON.stringify(counts));
  // The connected merchant's odd payments reached the points: some were credited, some held for nobody yet.
  t.true((counts.credited ?? 0) > 0 && (counts.stored_anonymous ?? 0) > 0, JSON.stringify(counts));
  // And whatever they credited replays to the same balances.
  const reconcile = await fetch(`${service.url}/api/v1/admin/reconcile`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenantId: merchant.tenantId }),
  });
  t.is(reconcile.status, 200);
  t.deepEqual((await reconcile.json()).mismatches, []);
});
