/**
 * The seed runbooks' SQL, as operators have it in their hands (../shared/seed/runbooks.txt): every snippet is read
 * from that file, not copied, and run verbatim (only its `<tenant-id>` / `<wallet-id>` placeholders filled in) on a
 * healthy database with real data: webhooks through the local Square server, a credit, a refund, a redemption and
 * adjustments both ways. Each must run and give the right answer.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { until } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, refundWebhook, webhookSender } from '../support/square-webhooks.ts';
import { scenario } from '../support/tenants.ts';

// From the project's folder (ava's working directory), whether this file runs from tests/ or compiled in .build/.
const RUNBOOKS = path.resolve('../shared/seed/runbooks.txt');
const WEBHOOK_KEY = 'runbook-webhook-key';
const NOTIFICATION_URL = 'https://api.tally.test/api/v1/webhooks/square';

/** Each SQL snippet of the runbooks: from a `SELECT` line to the line that ends with `;`, with the comment above it. */
function snippets(text: string): { title: string; sql: string }[] {
  const lines = text.split('\n');
  const found: { title: string; sql: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*SELECT\b/.test(lines[i] ?? '')) continue;
    const previous = lines[i - 1]?.trim() ?? '';
    const body: string[] = [];
    while (i < lines.length) {
      const line = lines[i] ?? '';
      body.push(line);
      if (line.trim().endsWith(';')) break;
      i++;
    }
    found.push({ title: previous.startsWith('--') ? previous.replace(/^--\s*/, '') : 'Wallet snapshot vs ledger sum', sql: body.join('\n') });
  }
  return found;
}

let square: SquareTestServer;
let service: TestService;

test.before(async () => {
  square = await startSquareServer();
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@runbooks.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL: 'https://api.tally.test',
  });
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

test('every SQL snippet of the seed runbooks runs verbatim on a healthy database and gives the right answer', async (t) => {
  const found = snippets(readFileSync(RUNBOOKS, 'utf8'));
  t.is(found.length, 3, 'the runbooks hold three SQL snippets');

  const { call, settle, register, merchant, connect } = scenario(service, square);
  const send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  const admin = await register('consumer', 'ops@runbooks.test');
  const owner = await merchant(admin, `owner-${uuid().slice(0, 6)}@runbooks.test`);
  square.addMerchant({ merchantId: 'M-RUNBOOK', businessName: 'Runbook Cafe', locations: [{ id: 'L-RUNBOOK', name: 'Main' }] });
  square.addCustomer('M-RUNBOOK', { id: 'cust-jane', email: 'jane@runbooks.test', phone: null });
  await connect(owner, 'M-RUNBOOK');
  const jane = await register('consumer', 'jane@runbooks.test');
  const rules = await call('GET', '/api/v1/client/reward-rules', { token: owner.token });
  const activeRule = (rules.body as { ruleId: string; isActive: boolean; version: number }[]).find((r) => r.isActive);

  // $25.00 earns 25 points; $6.00 of it refunded takes 6 back; 4 redeemed; an adjustment of −3 and one of +5: 17.
  const sent = [
    paymentWebhook({ eventId: `evt-rb-pay-${uuid()}`, merchantId: 'M-RUNBOOK', paymentId: 'pay-runbook', amount: 2500, customerId: 'cust-jane' }),
    refundWebhook({ eventId: `evt-rb-ref-${uuid()}`, merchantId: 'M-RUNBOOK', refundId: 'ref-runbook', paymentId: 'pay-runbook', amount: 600 }),
  ];
  for (const payload of sent) {
    t.is((await send(payload)).status, 200);
    await until(() => call('GET', `/api/v1/admin/webhooks/${payload.event_id}`, { token: admin.token }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
  }
  await settle();
  const wallet = (await call('GET', '/api/v1/me/wallets', { token: jane.token })).body[0] as { walletId: string };
  const redeemed = await call('POST', `/api/v1/client/wallets/${wallet.walletId}/redeem`, { token: owner.token, body: { points: 4, idempotencyKey: uuid() } });
  t.is(redeemed.status, 200);
  for (const points of [-3, 5]) {
    const adjusted = await call('POST', `/api/v1/admin/wallets/${wallet.walletId}/adjust`, { token: admin.token, body: { points, reason: 'runbook check' } });
    t.is(adjusted.status, 200, JSON.stringify(adjusted.body));
  }
  await settle();

  const run = async (sql: string) => (await service.database.pool.query(sql.replaceAll('<tenant-id>', owner.tenantId).replaceAll('<wallet-id>', wallet.walletId))).rows;

  const [recent, activeRules, discrepancy] = found;
  t.is(recent?.title, 'Recent webhook events');
  const webhooks = await run(recent!.sql);
  t.deepEqual(
    webhooks.map((w) => [w.id, w.tenant_id, w.provider, w.event_type, w.processed]),
    [...sent].reverse().map((p) => [p.event_id, owner.tenantId, 'square', p.type, true]),
    'newest first: the refund, then the payment, both processed for the tenant',
  );
  t.true(webhooks.every((w) => w.received_at instanceof Date));

  t.is(activeRules?.title, 'Active reward rule for tenant');
  t.deepEqual(await run(activeRules!.sql), [{ id: activeRule?.ruleId, tenant_id: owner.tenantId, version: activeRule?.version, is_active: true }]);

  t.regex(discrepancy!.sql, /ledger_sum/);
  const figures = await run(discrepancy!.sql);
  t.deepEqual(
    figures.map((r) => ({ id: r.id, snapshot: Number(r.snapshot), ledger_sum: Number(r.ledger_sum) })),
    [{ id: wallet.walletId, snapshot: 17, ledger_sum: 17 }],
    'the snapshot equals the ledger sum: 25 − 6 − 4 − 3 + 5',
  );
  const balance = await call('GET', `/api/v1/client/wallets/${wallet.walletId}`, { token: owner.token });
  t.is(balance.body.balance, 17);
});
