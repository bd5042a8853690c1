/**
 * The wallets first, in the whole service: while the webhook worker works through a backlog, the read models only
 * operators read (the audit trail, the program summary) give way (projections/runner.ts), and catch up once it is
 * done. The backlog is 30 payments stored in the inbox at once and leased one at a time (WEBHOOK_BATCH_SIZE=1);
 * PROJECTIONS_BACKGROUND_WAIT_MS is the most allowed, so nothing but the end of the backlog (or a reader waiting on
 * them) lets them go on.
 */
import test from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook } from '../support/square-webhooks.ts';
import { scenario, type Actor } from '../support/tenants.ts';

const PAYMENTS = 30;

let square: SquareTestServer;
let service: TestService;
let admin: Actor;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-BACKLOG', businessName: 'Backlog', locations: [{ id: 'L-MAIN', name: 'Main' }] });
  square.addCustomer('M-BACKLOG', { id: 'cust-backlog', email: 'backlog@example.com', phone: null });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@tally.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: 'test-webhook-signature-key',
    API_BASE_URL: 'https://api.tally.test',
    WEBHOOK_BATCH_SIZE: '1',
    WEBHOOK_BATCHES_IN_FLIGHT: '1',
    PROJECTIONS_BACKGROUND_WAIT_MS: '60000',
  });
  admin = await scenario(service, square).register('consumer', 'ops@tally.test');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

test.serial('during a webhook backlog the wallets are credited while the audit trail and the program summary give way; they catch up after', async (t) => {
  const { call, merchant, connect, register } = scenario(service, square);
  const owner = await merchant(admin, 'owner@backlog.test');
  await connect(owner, 'M-BACKLOG');
  await register('consumer', 'backlog@example.com');
  const { pool } = service.database;
  const credits = async () => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM wallet_ledger WHERE kind = 'earn' AND payment_id LIKE 'pay-backlog-%'`)).rows[0]!.n;
  const audited = async () =>
    (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events WHERE type = 'PointsCredited' AND payment_id LIKE 'pay-backlog-%'`)).rows[0]!.n;
  const status = async () => (await call('GET', '/api/v1/admin/projections', { token: admin.token })).body as { name: string; background: boolean; givingWay: boolean }[];
  t.like((await status()).find((p) => p.name === 'wallets'), { background: false, givingWay: false });
  t.like((await status()).find((p) => p.name === 'audit'), { background: true, givingWay: false }, 'no backlog, nothing gives way');

  // Stored at once, as acknowledgements would have stored them during a burst.
  const webhooks = Array.from({ length: PAYMENTS }, (_, i) =>
    paymentWebhook({ eventId: `evt-backlog-${i}`, merchantId: 'M-BACKLOG', paymentId: `pay-backlog-${i}`, amount: 1000, customerId: 'cust-backlog' }),
  );
  await pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, headers)
     SELECT w->>'event_id', w->>'merchant_id', w->>'type', w::text, '{}' FROM jsonb_array_elements($1::jsonb) AS w`,
    [JSON.stringify(webhooks)],
  );

  // Halfway through the backlog: credits in the wallets, none of them in the audit trail, which says it gives way.
  const seen = await eventually(
    async () => ({ credits: await credits(), audited: await audited(), projections: await status() }),
    (s) => s.credits >= 5 && s.projections.some((p) => p.name === 'audit' && p.givingWay),
    { timeoutMs: 20_000, intervalMs: 20 },
  );
  t.true(seen.credits >= 5 && seen.credits < PAYMENTS, `credits while the backlog lasts (${seen.credits})`);
  t.is(seen.audited, 0, 'the audit trail gave way');
  t.like(seen.projections.find((p) => p.name === 'audit'), { givingWay: true });
  t.like(seen.projections.find((p) => p.name === 'wallets'), { givingWay: false });

  // The backlog over, everything is there.
  t.is(await eventually(credits, (n) => n === PAYMENTS, { timeoutMs: 30_000, intervalMs: 50 }), PAYMENTS);
  t.is(await eventually(audited, (n) => n === PAYMENTS, { timeoutMs: 10_000, intervalMs: 50 }), PAYMENTS, 'the audit trail caught up');
  const { rows } = await pool.query<{ earned: string }>(`SELECT coalesce(sum(earned), 0)::text AS earned FROM program_days d JOIN pos_connections c USING (tenant_id) WHERE c.merchant_id = 'M-BACKLOG'`);
  t.is(Number(rows[0]!.earned), PAYMENTS * 10, 'and the program summary: 10 points a payment of $10');
  t.false((await status()).some((p) => p.givingWay));
});
