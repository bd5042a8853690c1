/**
 * Storms: the same webhook delivered 50 times at once, 50 different events about one payment at once, and a
 * webhook racing the poll for the same payments. Each payment is credited exactly once, whatever wins.
 * (Concurrent redemptions on one wallet are in wallets.test.ts.)
 */
import test from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';
import { scenario, type Actor, type Merchant } from '../support/tenants.ts';
import { until } from '../support/eventually.ts';

const WEBHOOK_KEY = 'storm-webhook-signature-key';
const API_BASE_URL = 'https://api.storm.test';
const CRON_SECRET = 'cron-secret-for-storms-012345678';

let square: SquareTestServer;
let service: TestService;
let actors: ReturnType<typeof scenario>;
let send: ReturnType<typeof webhookSender>;
let admin: Actor;
let kim: Actor;
let merchant: Merchant;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-STORM', businessName: 'Storm', locations: [{ id: 'L-MAIN', name: 'Main' }] });
  square.addCustomer('M-STORM', { id: 'cust-kim', email: 'kim@storm.test' });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@storm.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    CRON_SECRET,
  });
  actors = scenario(service, square);
  send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  admin = await actors.register('consumer', 'ops@storm.test');
  kim = await actors.register('consumer', 'kim@storm.test');
  merchant = await actors.merchant(admin, 'owner@storm.test');
  await actors.connect(merchant, 'M-STORM');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

/** Credits per payment in the ledger, once every stored webhook is processed and every event projected. */
async function creditsOf(paymentIds: string[]): Promise<Map<string, number>> {
  await until(
    async () => (await service.database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pos_webhook_events_raw WHERE NOT processed')).rows[0]!.n,
    (n) => n === 0,
    { timeoutMs: 20_000, intervalMs: 50 },
  );
  // A credit is the reactor's answer to a purchase: it is appended after the purchase is projected, so settle
  // until every payment has one (or time runs out), then once more for anything appended meanwhile.
  const read = async () => {
    await actors.settle();
    const rows = await service.database.pool.query<{ payment_id: string; n: number }>(
      `SELECT payment_id, count(*)::int AS n FROM wallet_ledger WHERE kind = 'earn' AND payment_id = ANY($1) GROUP BY payment_id`,
      [paymentIds],
    );
    return new Map(rows.rows.map((r) => [r.payment_id, r.n]));
  };
  await until(read, (credits) => credits.size === paymentIds.length, { timeoutMs: 5_000, intervalMs: 50 });
  return read();
}

async function balance(): Promise<number> {
  return (await actors.balances(kim))[merchant.tenantId] ?? 0;
}

test.serial('the same webhook delivered 50 times at once: every delivery acknowledged, one stored, one credit', async (t) => {
  const before = await balance();
  const payload = paymentWebhook({ eventId: 'evt-storm-1', merchantId: 'M-STORM', paymentId: 'pay-storm-1', amount: 4200, customerId: 'cust-kim' });
  const responses = await Promise.all(Array.from({ length: 50 }, () => send(payload)));
  t.deepEqual([...new Set(responses.map((r) => r.status))], [200], JSON.stringify(responses.find((r) => r.status !== 200)?.body));
  const stored = await service.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pos_webhook_events_raw WHERE id = 'evt-storm-1'`);
  t.is(stored.rows[0]!.n, 1);
  t.deepEqual([...(await creditsOf(['pay-storm-1']))], [['pay-storm-1', 1]]);
  t.is(await balance(), before + 42);
});

test.serial('50 different events about one payment at once: one credit, the rest are duplicates', async (t) => {
  const before = await balance();
  const responses = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      send(paymentWebhook({ eventId: `evt-storm-2-${i}`, merchantId: 'M-STORM', paymentId: 'pay-storm-2', amount: 1700, customerId: 'cust-kim' })),
    ),
  );
  t.true(responses.every((r) => r.status === 200));
  t.deepEqual([...(await creditsOf(['pay-storm-2']))], [['pay-storm-2', 1]]);
  const outcomes = await service.database.pool.query<{ outcome: string; n: number }>(
    `SELECT outcome, count(*)::int AS n FROM pos_webhook_events_raw WHERE object_id = 'pay-storm-2' GROUP BY outcome ORDER BY outcome`,
  );
  t.deepEqual(outcomes.rows, [
    { outcome: 'credited', n: 1 },
    { outcome: 'duplicate', n: 49 },
  ]);
  t.is(await balance(), before + 17);
});

test.serial('webhooks racing the poll for the same payments: each payment credited exactly once', async (t) => {
  const before = await balance();
  const ids: string[] = [];
  let expected = 0;
  for (let round = 0; round < 5; round++) {
    const batch = Array.from({ length: 4 }, (_, i) => ({ id: `pay-race-${round}-${i}`, amount: 100 * (round * 4 + i + 1) }));
    for (const p of batch) {
      square.addPayment('M-STORM', { id: p.id, locationId: 'L-MAIN', amount: p.amount, status: 'COMPLETED', customerId: 'cust-kim', createdAt: new Date().toISOString() });
      ids.push(p.id);
      expected += p.amount / 100;
    }
    await actors.settle();
    const [polled, ...delivered] = await Promise.all([
      actors.call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } }),
      ...batch.flatMap((p) =>
        // Each payment twice from the webhook side, as Square does for created + updated.
        [1, 2].map((n) => send(paymentWebhook({ eventId: `evt-${p.id}-${n}`, merchantId: 'M-STORM', paymentId: p.id, amount: p.amount, customerId: 'cust-kim' }))),
      ),
    ]);
    t.is(polled.status, 200, JSON.stringify(polled.body));
    t.true(delivered.every((r) => r.status === 200));
  }
  const credits = await creditsOf(ids);
  t.deepEqual(ids.filter((id) => credits.get(id) !== 1), [], 'every payment has exactly one credit');
  t.is(await balance(), before + expected);
  const reconcile = await actors.call('POST', '/api/v1/admin/reconcile', { token: admin.token, body: { tenantId: merchant.tenantId } });
  t.deepEqual(reconcile.body.mismatches, []);
});
