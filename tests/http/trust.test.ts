/**
 * Points a merchant can trust (issue 15), over HTTP: signed webhooks and the poll, through real connections to the
 * local Square server, to outcomes and balances. Each scenario is one of the issue's numbered cases.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { paymentEvents } from '../../domain/payments/events.ts';
import { paymentStream } from '../../domain/payments/payment.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { api, openConnectUrl, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, refundWebhook, squarePayload, webhookSender } from '../support/square-webhooks.ts';
import { scenario, type Actor, type Merchant } from '../support/tenants.ts';

const WEBHOOK_KEY = 'trust-webhook-key';
const API_BASE_URL = 'https://api.tally.test';
const CRON_SECRET = 'cron-secret-for-trust-tests-0123456789';
const DAY = 86_400_000;

let square: SquareTestServer;
let service: TestService;
let call: ReturnType<typeof api>;
let send: ReturnType<typeof webhookSender>;
let actors: ReturnType<typeof scenario>;
let admin: Actor;

test.before(async () => {
  square = await startSquareServer();
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@trust.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    CRON_SECRET,
  });
  call = api(service.url);
  send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  actors = scenario(service, square);
  admin = await actors.register('consumer', 'ops@trust.test');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

/** Sends a webhook and waits (bounded) until Tally has processed it; answers its inbox row. */
async function deliver(payload: any): Promise<{ outcome: string; [key: string]: unknown }> {
  const answer = await send(payload);
  if (answer.status !== 200) throw new Error(`webhook answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  const row = await eventually(
    () => call('GET', `/api/v1/admin/webhooks/${encodeURIComponent(payload.event_id)}`, { token: admin.token }),
    (r) => r.body?.processed === true,
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  return row.body;
}

/** A workspace with a rule, connected to a fresh Square merchant of this currency and country. */
async function workspace(rule: Record<string, unknown> = { kind: 'spend', points: 1, per: 100, basis: 'amount' }, profile: { currency?: string; country?: string } = {}) {
  const squareMerchantId = `M-${uuid().slice(0, 8).toUpperCase()}`;
  square.addMerchant({ merchantId: squareMerchantId, businessName: 'Trust Cafe', locations: [{ id: `L-${squareMerchantId}`, name: 'Main' }], ...profile });
  const owner = await actors.merchant(admin, `owner-${uuid().slice(0, 8)}@trust.test`, rule as never);
  await actors.connect(owner, squareMerchantId);
  await actors.settle();
  return { owner, squareMerchantId, locationId: `L-${squareMerchantId}` };
}

/** A consumer whose (verified) email is a Square customer of this merchant. */
async function customer(squareMerchantId: string, extra: { phone?: string | null } = {}) {
  const email = `shopper-${uuid().slice(0, 8)}@trust.test`;
  const customerId = `cust-${uuid().slice(0, 8)}`;
  square.addCustomer(squareMerchantId, { id: customerId, email, phone: extra.phone ?? null });
  const consumer = await actors.register('consumer', email);
  return { consumer, email, customerId };
}

async function balanceAt(consumer: Actor, tenantId: string): Promise<number> {
  return (await actors.balances(consumer))[tenantId] ?? 0;
}

const poll = () => call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });

async function completion(paymentId: string) {
  const events = await service.tally.store.readStream(paymentStream(paymentId));
  const completed = events.map((e) => paymentEvents.decode(e)).find((e) => e.type === 'PurchaseCompleted');
  return completed?.type === 'PurchaseCompleted' ? completed.data : undefined;
}

test.serial('1. payments from before the program earn nothing (before_program), refunded or not; the first poll starts at the connection', async (t) => {
  const { owner, squareMerchantId, locationId } = await workspace();
  const jane = await customer(squareMerchantId);
  // Jane paid $80 thirty days before the program; the merchant refunds $30 of it now, which updates the payment.
  const paidAt = new Date(Date.now() - 30 * DAY).toISOString();
  const old = await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: `pay-old-${uuid()}`, amount: 8000, customerId: jane.customerId, createdAt: paidAt }));
  t.is(old.outcome, 'before_program');
  const refund = await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, refundId: `ref-${uuid()}`, paymentId: String(old.objectId), amount: 3000 }));
  t.is(refund.outcome, 'refund_applied');
  t.is(await balanceAt(jane.consumer, owner.tenantId), 0, 'no 80 points credited, no 30 reversed: nothing for a purchase before the program');

  // The first poll: yesterday's sale (before the connection) is not Tally's; one made now is.
  const yesterday = new Date(Date.now() - DAY).toISOString();
  square.addPayment(squareMerchantId, { id: `pay-yesterday-${uuid()}`, locationId, amount: 5000, customerId: jane.customerId, createdAt: yesterday });
  const today = `pay-today-${uuid()}`;
  square.addPayment(squareMerchantId, { id: today, locationId, amount: 1200, customerId: jane.customerId, createdAt: new Date().toISOString() });
  const polled = await poll();
  t.is(polled.status, 200);
  const mine = polled.body.connections.find((c: { tenantId: string }) => c.tenantId === owner.tenantId);
  t.like(mine, { status: 'ok', seen: 1, credited: 1 }, 'only the sale after the connection is seen');
  t.is(await balanceAt(jane.consumer, owner.tenantId), 12);

  const listed = await call('GET', `/api/v1/admin/webhooks?outcome=before_program&tenantId=${owner.tenantId}`, { token: admin.token });
  t.is(listed.status, 200);
  t.deepEqual(listed.body.items.map((i: { objectId: string }) => i.objectId), [old.objectId]);
});

test.serial('2. points come from the rule in force when the customer paid, whenever the webhook is processed', async (t) => {
  const { owner, squareMerchantId } = await workspace();
  const jane = await customer(squareMerchantId);
  const [single] = (await call('GET', '/api/v1/client/reward-rules', { token: owner.token })).body as { ruleId: string; activatedAt: string }[];
  // A payment made just after the 1-point rule went live and the merchant connected (a sale from before the connect
  // is not the program's); its webhook is processed after a double-points rule.
  const { authorizedAt } = (await call('GET', '/api/v1/client/pos/square', { token: owner.token })).body as { authorizedAt: string };
  const paidAt = new Date(Math.max(Date.parse(single!.activatedAt), Date.parse(authorizedAt)) + 1).toISOString();
  const double = await call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: { kind: 'spend', points: 2, per: 100, basis: 'amount' } });
  t.is((await call('POST', `/api/v1/client/reward-rules/${double.body.ruleId}/activate`, { token: owner.token })).status, 200);
  const late = `pay-late-${uuid()}`;
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: late, amount: 1000, customerId: jane.customerId, createdAt: paidAt })), { outcome: 'credited' });
  t.like(await completion(late), { points: 10, ruleId: single!.ruleId, ruleVersion: 1 }, 'the rule version in force at created_at is recorded');
  const now = `pay-now-${uuid()}`;
  await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: now, amount: 1000, customerId: jane.customerId }));
  t.like(await completion(now), { points: 20, ruleId: double.body.ruleId, ruleVersion: 2 });
  t.is(await balanceAt(jane.consumer, owner.tenantId), 30);
});

test.serial('3. currency: the workspace counts in its merchant’s currency; other currencies get currency_mismatch; a reconnect to another currency waits for the rules to be retired', async (t) => {
  const { owner, squareMerchantId } = await workspace({ kind: 'spend', points: 1, per: 100, basis: 'amount' }, { currency: 'JPY', country: 'JP' });
  const connection = await call('GET', '/api/v1/client/pos/square', { token: owner.token });
  t.like(connection.body, { status: 'active', currency: 'JPY', country: 'JP' });
  const debug = await call('GET', '/api/v1/client/debug/square', { token: owner.token });
  t.like(debug.body.connection, { currency: 'JPY', country: 'JP' });
  const rules = await call('GET', '/api/v1/client/reward-rules', { token: owner.token });
  t.like(rules.body[0], { currency: 'JPY' }, 'rules show the currency their amounts count in');

  const kenji = await customer(squareMerchantId);
  const yen = `pay-yen-${uuid()}`;
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: yen, amount: 1000, currency: 'JPY', customerId: kenji.customerId })), { outcome: 'credited' });
  const dollars = await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: `pay-usd-${uuid()}`, amount: 1000, currency: 'USD', customerId: kenji.customerId }));
  t.is(dollars.outcome, 'currency_mismatch');
  const foreignRefund = await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, refundId: `ref-${uuid()}`, paymentId: yen, amount: 500, currency: 'USD' }));
  t.is(foreignRefund.outcome, 'currency_mismatch');
  t.is(await balanceAt(kenji.consumer, owner.tenantId), 10, '¥1,000 at 1 point per ¥100; nothing for dollars, nothing reversed by a refund in dollars');
  const listed = await call('GET', `/api/v1/admin/webhooks?outcome=currency_mismatch&tenantId=${owner.tenantId}`, { token: admin.token });
  t.is(listed.body.items.length, 2);

  // Reconnecting this workspace to a merchant in dollars is refused while its yen rules stand.
  square.addMerchant({ merchantId: 'M-TRUST-USD', businessName: 'Dollar Cafe', locations: [{ id: 'L-TRUST-USD', name: 'Main' }], currency: 'USD', country: 'US' });
  const attempt = async () => {
    const started = await call('GET', '/api/v1/client/pos/square/connect', { token: owner.token });
    const browser = await openConnectUrl(service.url, started);
    const state = browser.authorizeUrl.searchParams.get('state')!;
    const code = square.issueCode('M-TRUST-USD');
    return call('GET', `/api/v1/oauth/square/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, { headers: { cookie: browser.cookie } });
  };
  const refused = await attempt();
  t.is(refused.status, 302);
  t.regex(refused.headers.get('location') ?? '', /error=currency_mismatch/);
  t.like((await call('GET', '/api/v1/client/pos/square', { token: owner.token })).body, { currency: 'JPY' }, 'the connection stays as it was');

  const retired = await call('POST', '/api/v1/client/reward-rules/retire', { token: owner.token });
  t.like(retired.body, { retiredThroughVersion: 1 });
  const reactivate = await call('POST', `/api/v1/client/reward-rules/${rules.body[0].ruleId}/activate`, { token: owner.token });
  t.is(reactivate.status, 409);
  t.is(reactivate.body.error.code, 'RULE_RETIRED');
  const accepted = await attempt();
  t.regex(accepted.headers.get('location') ?? '', /connected=square/);
  await actors.settle();
  t.like((await call('GET', '/api/v1/client/pos/square', { token: owner.token })).body, { currency: 'USD', country: 'US', merchantId: 'M-TRUST-USD' });

  const zeroDecimal = await call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: { kind: 'spend', points: 1, per: 0, basis: 'amount' } });
  t.is(zeroDecimal.status, 400);
  t.regex(JSON.stringify(zeroDecimal.body), /JPY has no minor unit/);
});

test.serial('4. phones are read in the merchant’s country: a UK number without +44 matches; a consumer gives their country once', async (t) => {
  const { owner, squareMerchantId } = await workspace({ kind: 'spend', points: 1, per: 100, basis: 'amount' }, { currency: 'GBP', country: 'GB' });
  square.addCustomer(squareMerchantId, { id: 'cust-uk', email: null, phone: '07700 900123' });
  const id = uuid();
  const token = await tokenFor(id, `uk-${uuid().slice(0, 6)}@trust.test`, { claims: { phone_number: '07700 900123', phone_number_verified: true } });
  const badCountry = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone: '07700 900123', country: 'XX' } });
  t.is(badCountry.status, 400);
  t.regex(JSON.stringify(badCountry.body), /country must be an ISO 3166 alpha-2 code/);
  const registered = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone: '07700 900123', country: 'GB' } });
  t.is(registered.status, 201, JSON.stringify(registered.body));
  t.like(registered.body.user, { phone: '+447700900123', phoneVerified: true });
  await service.tally.runner.waitForPosition(registered.body.position, 15_000);
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: `pay-uk-${uuid()}`, amount: 500, currency: 'GBP', customerId: 'cust-uk' })), { outcome: 'credited' });
  t.is(await balanceAt({ id, token }, owner.tenantId), 5);
  const found = await call('GET', `/api/v1/client/wallets?q=${encodeURIComponent('07700 900123')}`, { token: owner.token });
  t.is(found.status, 200);
  t.deepEqual(found.body.map((w: { consumerId: string }) => w.consumerId), [id], 'the merchant finds the wallet by the number as its customers say it');
});

test.serial('5. refunds by basis: the amount’s share for amount rules (tip last), the total’s for total rules, all-or-nothing for a visit', async (t) => {
  const onAmount = await workspace({ kind: 'spend', points: 1, per: 100, basis: 'amount' });
  const ann = await customer(onAmount.squareMerchantId);
  const paid = `pay-tip-${uuid()}`;
  await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: onAmount.squareMerchantId, paymentId: paid, amount: 2000, tip: 500, customerId: ann.customerId }));
  t.is(await balanceAt(ann.consumer, onAmount.owner.tenantId), 20, '$20 + $5 tip earns 20 on the amount');
  await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: onAmount.squareMerchantId, refundId: `ref-${uuid()}`, paymentId: paid, amount: 2000 }));
  t.is(await balanceAt(ann.consumer, onAmount.owner.tenantId), 0, 'refunding the $20 reverses all 20 (not 16, the share of the total)');

  const onTotal = await workspace({ kind: 'spend', points: 1, per: 100, basis: 'total' });
  const bea = await customer(onTotal.squareMerchantId);
  const paidTotal = `pay-total-${uuid()}`;
  await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: onTotal.squareMerchantId, paymentId: paidTotal, amount: 2000, tip: 500, customerId: bea.customerId }));
  await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: onTotal.squareMerchantId, refundId: `ref-${uuid()}`, paymentId: paidTotal, amount: 2000 }));
  t.is(await balanceAt(bea.consumer, onTotal.owner.tenantId), 5, '25 on the total, 20 of $25 refunded reverses 20');

  const visits = await workspace({ kind: 'visit', points: 10, minimumSpend: 500 });
  const cal = await customer(visits.squareMerchantId);
  const visit = `pay-visit-${uuid()}`;
  await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: visits.squareMerchantId, paymentId: visit, amount: 2000, customerId: cal.customerId }));
  await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: visits.squareMerchantId, refundId: `ref-${uuid()}`, paymentId: visit, amount: 1000 }));
  t.is(await balanceAt(cal.consumer, visits.owner.tenantId), 10, 'a partial refund leaves the visit');
  await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: visits.squareMerchantId, refundId: `ref-${uuid()}`, paymentId: visit, amount: 1000 }));
  t.is(await balanceAt(cal.consumer, visits.owner.tenantId), 0, 'the refund in full reverses it');
});

test.serial('6. the identity a payment carries: buyer_email_address; and an email Square learns after the sale (customer.created / customer.updated)', async (t) => {
  const { owner, squareMerchantId } = await workspace();
  const online = await actors.register('consumer', `online-${uuid().slice(0, 6)}@trust.test`);
  const me = (await call('GET', '/api/v1/me', { token: online.token })).body;
  t.like(
    await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: `pay-online-${uuid()}`, amount: 1500, customerId: null, buyerEmail: me.email })),
    { outcome: 'credited' },
  );
  t.is(await balanceAt(online, owner.tenantId), 15, 'a Square Online payment is credited by its buyer email');

  // A walk-in with no contacts pays; the barista adds her email afterwards. She is registered already.
  const kim = await actors.register('consumer', `kim-${uuid().slice(0, 6)}@trust.test`);
  const kimEmail = (await call('GET', '/api/v1/me', { token: kim.token })).body.email;
  square.addCustomer(squareMerchantId, { id: 'cust-walkin', email: null, phone: null });
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: `pay-walkin-${uuid()}`, amount: 700, customerId: 'cust-walkin' })), { outcome: 'stored_anonymous' });
  await actors.settle();
  const updated = squarePayload('customer.updated.json');
  updated.event_id = `evt-${uuid()}`;
  updated.merchant_id = squareMerchantId;
  updated.data.id = 'cust-walkin';
  updated.data.object.customer = { ...updated.data.object.customer, id: 'cust-walkin', email_address: kimEmail, phone_number: null };
  t.like(await deliver(updated), { outcome: 'identity_attached' });
  t.is(await balanceAt(kim, owner.tenantId), 7, 'the held points reach the registered consumer');

  // Another walk-in: the email arrives with customer.created, and she registers afterwards.
  square.addCustomer(squareMerchantId, { id: 'cust-walkin-2', email: null, phone: null });
  await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: `pay-walkin2-${uuid()}`, amount: 900, customerId: 'cust-walkin-2' }));
  await actors.settle();
  const leeEmail = `lee-${uuid().slice(0, 6)}@trust.test`;
  const created = squarePayload('customer.created.json');
  created.event_id = `evt-${uuid()}`;
  created.merchant_id = squareMerchantId;
  created.data.id = 'cust-walkin-2';
  created.data.object.customer = { ...created.data.object.customer, id: 'cust-walkin-2', email_address: leeEmail, phone_number: null };
  t.like(await deliver(created), { outcome: 'identity_attached' });
  const lee = await actors.register('consumer', leeEmail);
  t.is(await balanceAt(lee, owner.tenantId), 9, 'a later registration claims them');
  t.like(await deliver({ ...created, event_id: `evt-${uuid()}` }), { outcome: 'ignored' }, 'attached once: nothing held is left');

  // Two card-only profiles of one person, merged in the Square Dashboard into a new one that has her email: Square
  // deletes both and sends customer.created for the new one, naming them in event_context.merge.
  const mae = await actors.register('consumer', `mae-${uuid().slice(0, 6)}@trust.test`);
  const maeEmail = (await call('GET', '/api/v1/me', { token: mae.token })).body.email;
  for (const [id, amount] of [['cust-mae-a', 300], ['cust-mae-b', 400]] as const) {
    square.addCustomer(squareMerchantId, { id, email: null, phone: null });
    t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: `pay-${id}-${uuid()}`, amount, customerId: id })), { outcome: 'stored_anonymous' });
  }
  await actors.settle();
  const merged = squarePayload('customer.created.json');
  merged.event_id = `evt-${uuid()}`;
  merged.merchant_id = squareMerchantId;
  merged.data.id = 'cust-mae-merged';
  merged.data.object = {
    customer: { ...merged.data.object.customer, id: 'cust-mae-merged', email_address: maeEmail, phone_number: null },
    event_context: { merge: { from_customer_ids: ['cust-mae-a', 'cust-mae-b'], to_customer_id: 'cust-mae-merged' } },
  };
  t.like(await deliver(merged), { outcome: 'identity_attached' });
  t.is(await balanceAt(mae, owner.tenantId), 7, 'the points held for both merged-away profiles reach her');
});

test.serial('7. one order, one visit: the first tender to complete counts it on the order’s amount; the others are same_order', async (t) => {
  const { owner, squareMerchantId } = await workspace({ kind: 'visit', points: 10, minimumSpend: 500 });
  const dee = await customer(squareMerchantId);
  const orderId = `order-${uuid()}`;
  const [giftCard, card] = [`pay-gift-${uuid()}`, `pay-card-${uuid()}`];
  // A $9 order paid in halves: both tenders are approved (payment.created), then both complete.
  for (const paymentId of [giftCard, card]) {
    t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId, amount: 450, customerId: dee.customerId, orderId, status: 'APPROVED' })), { outcome: 'recorded' });
  }
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: giftCard, amount: 450, customerId: dee.customerId, orderId })), { outcome: 'credited' });
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: card, amount: 450, customerId: dee.customerId, orderId })), { outcome: 'same_order' });
  t.like(await completion(giftCard), { points: 10, basisAmountMinor: 900, orderId });
  t.is(await balanceAt(dee.consumer, owner.tenantId), 10, 'one visit for the $9 order, its $5 minimum met by both halves');
  const listed = await call('GET', `/api/v1/admin/webhooks?outcome=same_order&tenantId=${owner.tenantId}`, { token: admin.token });
  t.is(listed.body.items.length, 1);

  // A $4.50 order whose first card was declined ($4.50, FAILED), paid by another card: the declined tender adds
  // nothing, so the order's $4.50 does not meet the $5 minimum (it counted $9 before 2026-12-07).
  const retried = `order-${uuid()}`;
  const [declined, paid] = [`pay-declined-${uuid()}`, `pay-paid-${uuid()}`];
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: declined, amount: 450, customerId: dee.customerId, orderId: retried, status: 'FAILED' })), { outcome: 'recorded' });
  t.like(await deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId: paid, amount: 450, customerId: dee.customerId, orderId: retried })), { outcome: 'zero_points' }, 'below the minimum');
  t.like(await completion(paid), { points: 0, basisAmountMinor: 450, orderId: retried });
  t.is(await balanceAt(dee.consumer, owner.tenantId), 10, 'no second visit');
});

test.serial('7b. one order, one visit at the minimum: tenders completing before Tally saw the others reach it together', async (t) => {
  const { owner, squareMerchantId } = await workspace({ kind: 'visit', points: 10, minimumSpend: 500 });
  const eve = await customer(squareMerchantId);
  const orderId = `order-${uuid()}`;
  const [first, second] = [`pay-first-${uuid()}`, `pay-second-${uuid()}`];
  const tender = (paymentId: string, status?: string) => deliver(paymentWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, paymentId, amount: 450, customerId: eve.customerId, orderId, ...(status ? { status } : {}) }));
  // A $9 order paid in halves whose webhooks come one tender after the other: the first half completes before Tally
  // has seen the second, below the $5 minimum (no visit yet, not same_order); the second brings the order to $9 and
  // counts its visit (until 2026-12-08 the first counted it on $4.50, for 0 points, and the second was same_order).
  t.like(await tender(first, 'APPROVED'), { outcome: 'recorded' });
  t.like(await tender(first), { outcome: 'zero_points' }, 'the order so far is below the minimum');
  t.like(await tender(second, 'APPROVED'), { outcome: 'recorded' });
  t.like(await tender(second), { outcome: 'credited' });
  t.like(await completion(first), { points: 0, basisAmountMinor: 450, orderId });
  t.like(await completion(second), { points: 10, basisAmountMinor: 900, orderId });
  t.is(await balanceAt(eve.consumer, owner.tenantId), 10, 'one visit for the $9 order');
  // Seen again (Square's retry, a poll), neither counts a second visit.
  t.like(await tender(first), { outcome: 'duplicate' });
  t.like(await tender(second), { outcome: 'duplicate' });
  // The visit is the second tender's: refunding the first reverses nothing, refunding the second in full reverses it.
  await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, refundId: `ref-${uuid()}`, paymentId: first, amount: 450 }));
  t.is(await balanceAt(eve.consumer, owner.tenantId), 10);
  await deliver(refundWebhook({ eventId: `evt-${uuid()}`, merchantId: squareMerchantId, refundId: `ref-${uuid()}`, paymentId: second, amount: 450 }));
  t.is(await balanceAt(eve.consumer, owner.tenantId), 0, 'the visit reversed with its tender');
});

test.serial('the new outcomes are accepted filters of the admin webhook list; an unknown one is refused with the list', async (t) => {
  for (const outcome of ['before_program', 'currency_mismatch', 'same_order', 'identity_attached']) {
    t.is((await call('GET', `/api/v1/admin/webhooks?outcome=${outcome}`, { token: admin.token })).status, 200, outcome);
  }
  const unknown = await call('GET', '/api/v1/admin/webhooks?outcome=whatever', { token: admin.token });
  t.is(unknown.status, 400);
  t.regex(unknown.body.error.message + JSON.stringify(unknown.body), /before_program/);
});

export type { Merchant };
