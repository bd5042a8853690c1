/**
 * Batched ingestion on KurrentDB, through the real client to the in-process protocol server: with the v2 append
 * session (KurrentDB 25.1+) a purchase and its wallet credit are appended together (`walletEffect: inline`);
 * without it (older servers) the purchase is appended alone and the wallet-credits reactor credits the wallet.
 * Either way each payment is credited exactly once, and a refund takes back its share.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, openConnectUrl, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, refundWebhook, webhookSender } from '../support/square-webhooks.ts';
import { startKurrentDbTestServer, type KurrentDbTestServer } from '../support/kurrentdb-server.ts';
import { paymentEvents } from '../../domain/payments/events.ts';

const WEBHOOK_KEY = 'kurrent-webhook-signature-key';
const API_BASE_URL = 'https://api.kurrent.test';

async function scenario(t: import('ava').ExecutionContext, multiStreamAppend: boolean, expectedEffect: 'inline' | 'reactor') {
  let kurrent: KurrentDbTestServer | undefined;
  let square: SquareTestServer | undefined;
  let service: TestService | undefined;
  t.teardown(async () => {
    await service?.stop();
    await square?.stop();
    await kurrent?.stop();
  });
  kurrent = await startKurrentDbTestServer({ multiStreamAppend });
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-K', businessName: 'Kurrent Cafe', locations: [{ id: 'L-K', name: 'Main' }] });
  square.addCustomer('M-K', { id: 'cust-kim', email: 'kim@example.com', phone: null });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@kurrent.test',
    EVENTSTORE_URL: kurrent.connectionString,
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
  });
  const call = api(service.url);
  const send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  const register = async (role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) => {
    const id = uuid();
    const token = await tokenFor(id, email);
    const response = await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
    if (response.body.position) await service!.tally.runner.waitForPosition(response.body.position, 15_000);
    return { id, token };
  };
  const admin = await register('consumer', 'ops@kurrent.test');
  const owner = await register('client', 'owner@kurrent.test', { businessName: 'Kurrent Cafe' });
  t.is((await call('PATCH', `/api/v1/admin/users/${owner.id}/approve`, { token: admin.token })).status, 200);
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  t.is((await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: owner.token })).status, 200);
  const started = await call('GET', '/api/v1/client/pos/square/connect', { token: owner.token });
  // The connect URL is a start link: the browser that opens it gets the cookie the callback's state is bound to.
  const browser = await openConnectUrl(service.url, started);
  const state = browser.authorizeUrl.searchParams.get('state')!;
  const callback = await call('GET', `/api/v1/oauth/square/callback?code=${encodeURIComponent(square.issueCode('M-K'))}&state=${encodeURIComponent(state)}`, {
    headers: { cookie: browser.cookie },
  });
  t.is(callback.status, 302);
  t.true(callback.headers.get('location')?.includes('connected=square'), `connected: ${callback.headers.get('location')}`);
  const kim = await register('consumer', 'kim@example.com');

  // Twelve payments at once (several batches' worth of concurrent work), each reported twice, and one refund.
  const payments = Array.from({ length: 12 }, (_, i) => ({ paymentId: `pay-k-${i}`, amount: 1000 + i * 100 }));
  const deliveries = payments.flatMap((p, i) => [
    paymentWebhook({ eventId: `evt-k-${i}`, merchantId: 'M-K', paymentId: p.paymentId, amount: p.amount, customerId: 'cust-kim' }),
    paymentWebhook({ eventId: `evt-k-${i}-again`, merchantId: 'M-K', paymentId: p.paymentId, amount: p.amount, customerId: 'cust-kim' }),
  ]);
  const answers = await Promise.all(deliveries.map((d) => send(d)));
  t.true(answers.every((a) => a.status === 200));
  await send(refundWebhook({ eventId: 'evt-k-refund', merchantId: 'M-K', refundId: 'ref-k-0', paymentId: 'pay-k-0', amount: 500 }));

  const earned = payments.reduce((sum, p) => sum + Math.floor(p.amount / 100), 0);
  const expected = earned - 5;
  const wallet = await eventually(
    async () => {
      const head = await service!.tally.store.headPosition();
      const wallets = await call('GET', '/api/v1/me/wallets', { token: kim.token, headers: head ? { 'x-min-position': head } : {} });
      return wallets.body?.[0];
    },
    (w) => w?.balance === expected,
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  t.is(wallet?.balance, expected, 'each payment credited once, the refund took back its half');

  // The balance is right once the first delivery of each payment is credited; the second ones may still be in the inbox.
  const outcomes = await eventually(
    () => Promise.all(deliveries.map((d) => call('GET', `/api/v1/admin/webhooks/${d.event_id}`, { token: admin.token }))),
    (rows) => rows.every((o) => o.body?.processed),
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  t.is(outcomes.filter((o) => o.body.outcome === 'credited').length, 12);
  t.is(outcomes.filter((o) => o.body.outcome === 'duplicate').length, 12);
  const stored = await service.tally.store.readStream('payment-pay-k-3');
  const completed = stored.map((e) => paymentEvents.decode(e)).find((e) => e.type === 'PurchaseCompleted');
  t.is(completed?.type === 'PurchaseCompleted' ? completed.data.walletEffect : undefined, expectedEffect);
  const credits = (await service.tally.store.readStream(`wallet-${completed?.type === 'PurchaseCompleted' ? completed.data.walletId : ''}`)).filter(
    (e) => e.type === 'PointsCredited',
  );
  t.is(credits.length, 12, 'one credit per payment in the wallet stream');

  // Issue 15 on KurrentDB: a payment from before the program and one in another currency earn nothing; under a visit
  // rule, an order paid with two tenders, each reported twice at once, counts one visit.
  const early = paymentWebhook({ eventId: 'evt-k-early', merchantId: 'M-K', paymentId: 'pay-k-early', amount: 5000, customerId: 'cust-kim', createdAt: '2020-01-01T00:00:00.000Z' });
  const yen = paymentWebhook({ eventId: 'evt-k-yen', merchantId: 'M-K', paymentId: 'pay-k-yen', amount: 5000, currency: 'JPY', customerId: 'cust-kim' });
  // No minimum: the tenders complete at once, so the first to complete may see only its own half of the order.
  const visit = await call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: { kind: 'visit', points: 10, minimumSpend: 0 } });
  t.is((await call('POST', `/api/v1/client/reward-rules/${visit.body.ruleId}/activate`, { token: owner.token })).status, 200);
  const tenders = ['pay-k-gift', 'pay-k-card'].flatMap((paymentId) => [
    paymentWebhook({ eventId: `evt-${paymentId}`, merchantId: 'M-K', paymentId, amount: 450, customerId: 'cust-kim', orderId: 'order-k-1' }),
    paymentWebhook({ eventId: `evt-${paymentId}-again`, merchantId: 'M-K', paymentId, amount: 450, customerId: 'cust-kim', orderId: 'order-k-1' }),
  ]);
  t.true((await Promise.all([early, yen, ...tenders].map((d) => send(d)))).every((a) => a.status === 200));
  const settledOutcome = (eventId: string) =>
    eventually(() => call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin.token }), (r) => r.body?.processed === true, { timeoutMs: 20_000, intervalMs: 100 });
  t.is((await settledOutcome('evt-k-early')).body.outcome, 'before_program');
  t.is((await settledOutcome('evt-k-yen')).body.outcome, 'currency_mismatch');
  const tenderOutcomes = (await Promise.all(tenders.map((d) => settledOutcome(d.event_id)))).map((r) => r.body.outcome).sort();
  t.is(tenderOutcomes.filter((o) => o === 'credited').length, 1, `one tender counts the visit: ${tenderOutcomes.join(', ')}`);
  t.is(tenderOutcomes.filter((o) => o === 'same_order').length, 1, 'the other tender is the same order');
  const withVisit = await eventually(
    async () => {
      const head = await service!.tally.store.headPosition();
      const wallets = await call('GET', '/api/v1/me/wallets', { token: kim.token, headers: head ? { 'x-min-position': head } : {} });
      return wallets.body?.[0];
    },
    (w) => w?.balance === expected + 10,
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  t.is(withVisit?.balance, expected + 10, 'one visit for the order; nothing for the early or foreign payments');
  return kurrent;
}

test('KurrentDB 25.1+: purchases and their credits are appended together in one append session', async (t) => {
  const kurrent = await scenario(t, true, 'inline');
  t.true(kurrent.appendsServed.appendSession > 0);
});

test('KurrentDB before 25.1: purchases are appended alone, the reactor credits the wallets', async (t) => {
  const kurrent = await scenario(t, false, 'reactor');
  t.is(kurrent.appendsServed.appendSession, 0);
});
