/**
 * Issue 14, item 5: balances stay exact. A rule of a million points per cent meets large payments: a credit
 * past the bounds is recorded as refused and not applied, reads keep working, and a read-model row that fails
 * to parse is a logged 500, never a 400 naming internal columns.
 */
import test from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually, until } from '../support/eventually.ts';
import { squareEnv, startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';
import { scenario } from '../support/tenants.ts';
import { randomUUID } from 'node:crypto';
import { MAX_BALANCE_POINTS, walletDecider } from '../../domain/wallets/wallet.ts';

const WEBHOOK_KEY = 'bounds-webhook-key';
const API_BASE_URL = 'https://api.tally.test';

let square: SquareTestServer;
let service: TestService;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-BIG', businessName: 'Big Spender', locations: [{ id: 'L-1', name: 'Main' }] });
  square.addCustomer('M-BIG', { id: 'cust-rich', email: 'rich@example.com', phone: null });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@bounds.test',
    ...squareEnv(square, WEBHOOK_KEY, API_BASE_URL),
  });
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

test('credits past the bounds are refused and recorded; the wallet stays exact and readable', async (t) => {
  const world = scenario(service, square);
  const call = api(service.url);
  const send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  const admin = { id: 'ops', token: await tokenFor('ops', 'ops@bounds.test') };
  await call('POST', '/api/v1/me/register', { token: admin.token, body: { role: 'consumer' } });
  const merchant = await world.merchant(admin, 'owner@big.test', { kind: 'spend', points: 1_000_000, per: 1, basis: 'amount' });
  await world.connect(merchant, 'M-BIG');
  const rich = await world.register('consumer', 'rich@example.com');

  const pay = async (eventId: string, amount: number) => {
    await send(paymentWebhook({ eventId, merchantId: 'M-BIG', paymentId: `pay-${eventId}`, amount, customerId: 'cust-rich' }));
    await until(() => call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin.token }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
  };
  await pay('evt-ok', 900); // 900,000,000 points: within the bound of one credit
  await pay('evt-huge-1', 5_000_000_000); // $50M at a million points a cent: 5·10^15 points
  await pay('evt-huge-2', 5_000_000_000);
  // The webhook's outcome says what happened to the customer: not credited.
  const huge = await call('GET', '/api/v1/admin/webhooks/evt-huge-1', { token: admin.token });
  t.is(huge.body.outcome, service.tally.inlineWalletEffects ? 'credit_refused' : 'credited', JSON.stringify(huge.body));
  if (service.tally.inlineWalletEffects) {
    const listed = await call('GET', '/api/v1/admin/webhooks?outcome=credit_refused', { token: admin.token });
    const ids = listed.body.items.map((w: { eventId: string }) => w.eventId);
    t.true(ids.includes('evt-huge-1') && ids.includes('evt-huge-2') && !ids.includes('evt-ok'), JSON.stringify(ids));
  }
  const balances = await eventually(() => world.balances(rich), (b) => Object.values(b)[0] === 900_000_000, { timeoutMs: 10_000 });
  t.deepEqual(Object.values(balances), [900_000_000], 'only the credit within the bounds is applied');
  const wallets = await call('GET', '/api/v1/me/wallets', { token: rich.token });
  t.is(wallets.status, 200);
  const walletId = wallets.body[0].walletId as string;
  // The wallet-credits reactor records each refusal a moment after its purchase.
  const stream = await eventually(
    () => service.tally.store.readStream(`wallet-${walletId}`),
    (events) => events.filter((e) => e.type === 'PointsCreditRefused').length === 2,
    { timeoutMs: 10_000 },
  );
  t.deepEqual(Object.values(await world.balances(rich)), [900_000_000], 'the refused credits changed nothing');
  const refusals = stream.filter((e) => e.type === 'PointsCreditRefused').map((e) => e.data);
  t.is(refusals.length, 2);
  t.like(refusals[0], { reason: 'credit_above_limit', limit: 1_000_000_000, points: 5_000_000_000_000_000 });
  const redeemed = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: merchant.token, body: { points: 1, idempotencyKey: 'r-1' } });
  t.like(redeemed.body, { balance: 899_999_999 }, 'exact arithmetic');
  await world.settle();
  const reconciled = await call('GET', `/api/v1/admin/wallets/${walletId}/reconcile`, { token: admin.token });
  t.like(reconciled.body, { consistent: true }, JSON.stringify(reconciled.body));

  // A read-model row no code wrote (here: past 2^53) is our fault, not the caller's: 500, the reason logged.
  await service.database.pool.query(`UPDATE wallets SET points_balance = 9007199254740993 WHERE id = $1`, [walletId]);
  const broken = await call('GET', '/api/v1/me/wallets', { token: rich.token });
  t.is(broken.status, 500);
  t.deepEqual(Object.keys(broken.body.error).sort(), ['code', 'message', 'requestId']);
  t.false(JSON.stringify(broken.body).includes('points_balance'), 'no internal column named to the client');
  t.true(service.logs.some((l) => l.includes('stored data failed to parse') && l.includes('points_balance')));
  // The caller's own mistakes are still 400s that say what to fix.
  const bad = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: merchant.token, body: { points: 'many', idempotencyKey: 'r-2' } });
  t.is(bad.status, 400);
  t.regex(bad.body.error.message, /points/);
});

test('a credit that would take a balance past its bound is refused on the inline path too, and says so', async (t) => {
  const world = scenario(service, square);
  const call = api(service.url);
  const send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  square.addMerchant({ merchantId: 'M-FULL', businessName: 'Full Wallets', locations: [{ id: 'L-2', name: 'Main' }] });
  square.addCustomer('M-FULL', { id: 'cust-full', email: 'full@example.com', phone: null });
  const admin = { id: 'ops', token: await tokenFor('ops', 'ops@bounds.test') };
  await call('POST', '/api/v1/me/register', { token: admin.token, body: { role: 'consumer' } });
  const merchant = await world.merchant(admin, 'owner@full.test', { kind: 'spend', points: 1, per: 1, basis: 'amount' });
  await world.connect(merchant, 'M-FULL');
  const full = await world.register('consumer', 'full@example.com');
  const pay = async (eventId: string, amount: number) => {
    await send(paymentWebhook({ eventId, merchantId: 'M-FULL', paymentId: `pay-${eventId}`, amount, customerId: 'cust-full' }));
    const done = await eventually(() => call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin.token }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
    return done.body.outcome as string;
  };
  t.is(await pay('evt-first', 100), 'credited');
  await until(() => world.balances(full), (b) => Object.values(b)[0] === 100, { timeoutMs: 10_000 });
  const walletId = (await call('GET', '/api/v1/me/wallets', { token: full.token })).body[0].walletId as string;
  // A balance a breath below the bound, written as another process would (this one has not seen it).
  const stream = `wallet-${walletId}`;
  const existing = await service.tally.store.readStream(stream);
  const first = existing[0] && walletDecider.codec.decode(existing[0]);
  if (first?.type !== 'PointsCredited') return t.fail('the wallet starts with its credit');
  const owner = { walletId, tenantId: first.data.tenantId, consumerId: first.data.consumerId };
  const revision = existing.at(-1)?.revision ?? -1;
  await service.tally.store.append(
    stream,
    [walletDecider.codec.encode({ type: 'PointsAdjusted', data: { ...owner, points: MAX_BALANCE_POINTS - 150, reason: 'test: nearly full', adjustedBy: 'ops', adjustedAs: 'admin', idempotencyKey: null } }, randomUUID(), {})],
    revision,
  );
  t.is(await pay('evt-over', 100), service.tally.inlineWalletEffects ? 'credit_refused' : 'credited', 'MAX - 50 + 100 is past the bound');
  const events = await eventually(() => service.tally.store.readStream(stream), (e) => e.some((x) => x.type === 'PointsCreditRefused'), { timeoutMs: 10_000 });
  t.like(events.find((e) => e.type === 'PointsCreditRefused')?.data, { reason: 'balance_above_limit', limit: MAX_BALANCE_POINTS, points: 100 });
  t.is(await pay('evt-fits', 40), 'credited', 'a credit that fits still lands');
  await world.settle();
  t.deepEqual(Object.values(await world.balances(full)), [MAX_BALANCE_POINTS - 10]);
});
