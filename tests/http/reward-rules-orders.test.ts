/**
 * Rules that read the Square order (issue 19), over HTTP through the local Square server and the real `square` SDK:
 * item and category rules, spend before tax and with exclusions, several rules adding up, a refund of an order
 * taking each rule's points back, the order fetched only when a rule needs it (cached), a connection without
 * ORDERS_READ failing (retried) rather than earning nothing, unknown catalog ids refused, and the preview.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { DEMO_CATALOG, giftCardLine } from '../../adapters/square/simulator/orders.ts';
import { PAYMENT_ONLY_SCOPES, startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer, type TestOrderLine } from '../support/square-server.ts';
import { paymentWebhook, refundWebhook, webhookSender } from '../support/square-webhooks.ts';
import { scenario, type Actor, type Merchant } from '../support/tenants.ts';

const WEBHOOK_KEY = 'rules-webhook-signature-key';
const API_BASE_URL = 'https://api.rules.test';
const CRON_SECRET = 'cron-secret-for-rule-tests-012345';

/** Demo Bakery's catalog: Latte (Coffee), Muffin (Pastries). A gift card is not in it: Square sells it as a `GIFT_CARD` line. */
const CATALOG = DEMO_CATALOG;

const latte = (quantity = '1', tax = 0): TestOrderLine => ({ catalogObjectId: 'VARLATTE', name: 'Latte', quantity, basePriceMinor: 450, taxMinor: tax });
const muffin = (quantity = '1', tax = 0): TestOrderLine => ({ catalogObjectId: 'VARMUFFIN', name: 'Muffin', quantity, basePriceMinor: 325, taxMinor: tax });
const giftCard = (amountMinor = 2500): TestOrderLine => giftCardLine(amountMinor);

let square: SquareTestServer;
let service: TestService;
let world: ReturnType<typeof scenario>;
let send: ReturnType<typeof webhookSender>;
let admin: Actor;

test.before(async () => {
  square = await startSquareServer();
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@rules.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    CRON_SECRET,
  });
  world = scenario(service, square);
  send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  admin = await world.register('consumer', 'ops@rules.test');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

/** A café: its own Square merchant with the catalog, connected, with `rules` active together; and a customer. */
async function cafe(rules: Record<string, unknown>[], options: { scopes?: readonly string[] } = {}) {
  const key = uuid().slice(0, 8);
  const merchantId = `M-${key}`;
  square.addMerchant({ merchantId, businessName: `Cafe ${key}`, locations: [{ id: `L-${key}`, name: 'Main' }] });
  square.setCatalog(merchantId, CATALOG);
  const email = `guest-${key}@rules.test`;
  square.addCustomer(merchantId, { id: `cust-${key}`, email });
  const [first, ...others] = rules;
  const owner: Merchant = await world.merchant(admin, `owner-${key}@rules.test`, first as never);
  for (const rule of others) {
    const created = await world.call('POST', '/api/v1/client/reward-rules', { token: owner.token, body: rule });
    const activated = await world.call('POST', `/api/v1/client/reward-rules/${created.body.ruleId}/activate`, { token: owner.token, body: { alongside: true } });
    if (activated.status !== 200) throw new Error(`activate: ${activated.status} ${JSON.stringify(activated.body)}`);
  }
  // With `scopes`: a connection made before Tally asked for the order scopes, its grant narrower.
  await world.connect(owner, merchantId, options.scopes ? { scopes: options.scopes } : {});
  const guest = await world.register('consumer', email);
  let paid = 0;
  /** The guest buys `lines` (tip optional) and Square reports the completed payment by webhook (or only lists it: `poll`). */
  async function buys(lines: TestOrderLine[], tip = 0, options: { poll?: boolean } = {}) {
    paid += 1;
    const orderId = `ORD-${key}-${paid}`;
    const paymentId = `PAY-${key}-${paid}`;
    square.addOrder(merchantId, { id: orderId, locationId: `L-${key}`, lines, tipMinor: tip, createdAt: new Date().toISOString() });
    const amount = lines.reduce((sum, l) => sum + Math.round(l.basePriceMinor * Number(l.quantity)) + (l.taxMinor ?? 0), 0);
    const eventId = `evt-${key}-${paid}`;
    // Square holds the payment too (the preview reads it by id).
    const createdAt = new Date().toISOString();
    square.addPayment(merchantId, { id: paymentId, locationId: `L-${key}`, amount, tip, customerId: `cust-${key}`, orderId, createdAt });
    if (options.poll) return { paymentId, orderId, eventId, amount };
    const answer = await send(paymentWebhook({ eventId, merchantId, paymentId, amount, tip, customerId: `cust-${key}`, orderId, locationId: `L-${key}` }));
    if (answer.status !== 200) throw new Error(`webhook: ${answer.status}`);
    return { paymentId, orderId, eventId, amount };
  }
  return { owner, guest, merchantId, buys };
}

/** The webhook's row once it has an outcome (or failed). */
async function settled(eventId: string) {
  const row = await eventually(
    () => world.call('GET', `/api/v1/admin/webhooks/${encodeURIComponent(eventId)}`, { token: admin.token }),
    (r) => r.status === 200 && (r.body.processed || Boolean(r.body.error)),
    { timeoutMs: 15_000, intervalMs: 50 },
  );
  return row.body;
}

/** The purchase event of a payment, from the audit trail. */
async function purchase(paymentId: string) {
  await world.settle();
  const history = await world.call('GET', `/api/v1/admin/audit/streams/payment-${encodeURIComponent(paymentId)}`, { token: admin.token });
  return history.body.items.find((e: { type: string }) => e.type === 'PurchaseCompleted')?.data;
}

const ordersRead = (orderId: string) => square.requests.filter((r) => r.path === `/v2/orders/${orderId}`).length;

test('an item rule gives N points per unit of the listed variations; a muffin earns nothing under "5 per latte"', async (t) => {
  const c = await cafe([{ kind: 'item', points: 5, itemVariationIds: ['VARLATTE'] }]);
  const sale = await c.buys([latte('2'), muffin()]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 10 });
  const recorded = await purchase(sale.paymentId);
  t.like(recorded, { points: 10, orderRead: true });
  t.like(recorded.contributions[0], { kind: 'item', points: 10 });
  const muffinOnly = await c.buys([muffin('3')]);
  t.like(await settled(muffinOnly.eventId), { outcome: 'zero_points' });
});

test('a category rule counts units of items in the listed categories, read from the catalog', async (t) => {
  const c = await cafe([{ kind: 'category', points: 2, categoryIds: ['CATCOFFEE', 'CATPASTRY'] }]);
  const sale = await c.buys([latte('1'), muffin('2'), giftCard()]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 6 }, '3 units in the categories × 2; the gift card is in none');
  t.true(square.requests.some((r) => r.path === '/v2/catalog/batch-retrieve'), 'the categories came from the catalog');
});

test('an item deleted from the catalog after the sale, before it is processed, still earns by its category', async (t) => {
  const c = await cafe([{ kind: 'category', points: 2, categoryIds: ['CATCOFFEE'] }]);
  square.setCatalog(c.merchantId, { ...CATALOG, items: CATALOG.items.map((item) => (item.id === 'ITEMLATTE' ? { ...item, deleted: true } : item)) });
  const sale = await c.buys([latte('3')]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 6 }, '3 lattes in Coffee × 2, though the latte is deleted now');
  t.like((await purchase(sale.paymentId)).contributions[0], { kind: 'category', points: 6 });
});

test('spend before tax leaves the order’s tax out: $100 + $10 tax earns 100, not 110; after tax (the default) 110', async (t) => {
  const line = (): TestOrderLine => ({ name: 'Hamper', quantity: '1', basePriceMinor: 10_000, taxMinor: 1_000 });
  const before = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount', taxMode: 'before_tax' }]);
  const sale = await before.buys([line()]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(before.guest), { [before.owner.tenantId]: 100 });
  const after = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount' }]);
  const other = await after.buys([line()]);
  t.like(await settled(other.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(after.guest), { [after.owner.tenantId]: 110 });
  t.is(ordersRead(other.orderId), 0, 'a payment-only rule never pays an order fetch');
});

test('spend with exclusions leaves excluded categories and variations out, and a gift card sold; a tip counts with basis total', async (t) => {
  const c = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'total', excludedCategoryIds: ['CATPASTRY'] }]);
  // $4.50 latte + $3.25 muffin + $25 gift card (item_type GIFT_CARD, no catalog object) + $1.00 tip: 4.50 + 1.00 counts.
  const sale = await c.buys([latte(), muffin(), giftCard()], 100);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 5 });
  t.like((await purchase(sale.paymentId)).contributions[0], { kind: 'spend', basis: 'total', basisAmountMinor: 550, points: 5 });
});

test('a gift card sold beside an item earns nothing, as in Square Loyalty: only the item earns, by spend and category rules', async (t) => {
  const c = await cafe([
    { kind: 'spend', points: 1, per: 100, basis: 'amount', taxMode: 'before_tax' },
    { kind: 'category', points: 2, categoryIds: ['CATCOFFEE'] },
  ]);
  // A $4.50 latte and a $100 gift card loaded, paid at once: 4 (spend on $4.50) + 2 (one coffee), not 104 + 2.
  const sale = await c.buys([latte(), giftCard(10_000)]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 6 });
  t.deepEqual((await purchase(sale.paymentId)).contributions.map((x: { kind: string; points: number; basisAmountMinor: number }) => [x.kind, x.points, x.basisAmountMinor]), [['spend', 4, 450], ['category', 2, 450]]);
  const previewed = await world.call('POST', '/api/v1/client/reward-rules/preview', { token: c.owner.token, body: { paymentId: sale.paymentId } });
  t.is(previewed.status, 200, JSON.stringify(previewed.body));
  t.like(previewed.body, { points: 6 });
  t.true(JSON.stringify(previewed.body).includes('is excluded (a gift card sale: it earns when spent): 10000 minor units left out'), JSON.stringify(previewed.body));
  // A gift card bought alone earns nothing.
  const alone = await c.buys([giftCard(5_000)]);
  t.like(await settled(alone.eventId), { outcome: 'zero_points' });
});

test('several active rules add up, each recorded; a refund of the order takes each rule’s share back', async (t) => {
  const c = await cafe([
    { kind: 'spend', points: 1, per: 100, basis: 'amount' },
    { kind: 'item', points: 5, itemVariationIds: ['VARLATTE'] },
    { kind: 'visit', points: 3 },
  ]);
  // Two lattes ($9.00): 9 (spend) + 10 (item) + 3 (visit) = 22.
  const sale = await c.buys([latte('2')]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 22 });
  const recorded = await purchase(sale.paymentId);
  t.deepEqual(recorded.contributions.map((x: { kind: string; points: number }) => [x.kind, x.points]), [['spend', 9], ['item', 10], ['visit', 3]]);
  t.like(recorded, { points: 22, basis: 'amount', outcome: 'credited' });
  // Refund one latte ($4.50 of $9.00): half the spend (4) and of the item points (5) go back; the visit stays.
  const half = await send(refundWebhook({ eventId: `evt-refund-${sale.paymentId}`, merchantId: c.merchantId, refundId: `R-${sale.paymentId}`, paymentId: sale.paymentId, amount: 450 }));
  t.is(half.status, 200);
  t.like(await settled(`evt-refund-${sale.paymentId}`), { outcome: 'refund_applied' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 13 });
  // The rest: everything, the visit included.
  await send(refundWebhook({ eventId: `evt-refund2-${sale.paymentId}`, merchantId: c.merchantId, refundId: `R2-${sale.paymentId}`, paymentId: sale.paymentId, amount: 450 }));
  t.like(await settled(`evt-refund2-${sale.paymentId}`), { outcome: 'refund_applied' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 0 });
  const stream = await world.call('GET', `/api/v1/admin/audit/streams/payment-${sale.paymentId}`, { token: admin.token });
  const reversals = stream.body.items.filter((e: { type: string }) => e.type === 'RefundApplied').map((e: { data: { contributions: unknown } }) => e.data.contributions);
  t.is(reversals.length, 2);
  t.deepEqual(reversals[0].map((x: { pointsReversed: number }) => x.pointsReversed), [4, 5]);
});

test('the order is read once per order (cached); a connection without ORDERS_READ fails the webhook, retried, never a silent zero', async (t) => {
  const c = await cafe([{ kind: 'item', points: 1, itemVariationIds: ['VARLATTE'] }]);
  const sale = await c.buys([latte()]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  await send(paymentWebhook({ eventId: `${sale.eventId}-again`, merchantId: c.merchantId, paymentId: `${sale.paymentId}-split`, amount: 450, customerId: null, orderId: sale.orderId }));
  t.like(await settled(`${sale.eventId}-again`), { outcome: 'stored_anonymous' });
  t.is(ordersRead(sale.orderId), 1, 'the second tender of the order found it in the cache');

  const old = await cafe([{ kind: 'item', points: 1, itemVariationIds: ['VARLATTE'] }], { scopes: PAYMENT_ONLY_SCOPES });
  const refused = await old.buys([latte()]);
  const row = await settled(refused.eventId);
  t.false(row.processed);
  t.regex(row.error, /SQUARE_SCOPES_MISSING.*ORDERS_READ.*reconnect Square/);
  t.truthy(row.nextAttemptAt, 'retried later (once the merchant reconnects, it earns)');
  t.is(ordersRead(refused.orderId), 0, 'Square was not asked for what the grant does not cover');
  const debug = await world.call('GET', '/api/v1/client/debug/square', { token: old.owner.token });
  t.deepEqual(debug.body.connection.missingScopes, ['ORDERS_READ', 'ITEMS_READ']);
  t.true(debug.body.problems.some((p: string) => /ORDERS_READ.*connect Square again/.test(p)));
  const view = await world.call('GET', '/api/v1/client/pos/square', { token: old.owner.token });
  t.deepEqual([...view.body.scopes].sort(), [...PAYMENT_ONLY_SCOPES].sort());
});

test('a payment-only rule on a connection without the order scopes keeps earning', async (t) => {
  const c = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount' }], { scopes: PAYMENT_ONLY_SCOPES });
  const sale = await c.buys([latte('2')]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 9 });
});

test('bad rules are 400s naming the field, nothing recorded; ids unknown to the catalog are refused, unchecked ones warned about', async (t) => {
  const c = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount' }]);
  const create = (body: unknown) => world.call('POST', '/api/v1/client/reward-rules', { token: c.owner.token, body });
  const before = (await world.call('GET', '/api/v1/client/reward-rules', { token: c.owner.token })).body.length;
  for (const [body, field] of [
    [{ kind: 'spend', points: 1, per: 100, basis: 'amount', taxMode: 'pre_tax' }, 'taxMode'],
    [{ kind: 'item', points: 5, itemVariationIds: [] }, 'itemVariationIds'],
    [{ kind: 'item', points: 5 }, 'itemVariationIds'],
    [{ kind: 'category', points: 0, categoryIds: ['CATCOFFEE'] }, 'points'],
    [{ kind: 'category', points: 1, categoryIds: ['CATCOFFEE', 'CATCOFFEE'] }, 'categoryIds'],
    [{ kind: 'item', points: 5, itemVariationIds: ['VARNOPE'] }, 'itemVariationIds'],
    [{ kind: 'category', points: 5, categoryIds: ['VARLATTE'] }, 'categoryIds'],
    [{ kind: 'spend', points: 1, per: 100, basis: 'amount', excludedCategoryIds: ['CATNOPE'] }, 'excludedCategoryIds'],
  ] as const) {
    const answer = await create(body);
    t.is(answer.status, 400, JSON.stringify(body));
    // Schema failures and ids the catalog does not hold answer alike: `issues`, the message naming `body.<field>`.
    const issues: { path: string }[] = answer.body.error.issues ?? [];
    t.true(issues.some((i) => i.path.startsWith(field)), `${field}: ${JSON.stringify(answer.body.error)}`);
    t.regex(answer.body.error.message, new RegExp(`body\\.${field}`), JSON.stringify(answer.body.error));
  }
  // The catalog's refusal keeps `details.issues`, where clients read it until 2026-12-08.
  const unknownId = await create({ kind: 'item', points: 5, itemVariationIds: ['VARNOPE'] });
  t.deepEqual(unknownId.body.error.details.issues, unknownId.body.error.issues);
  t.deepEqual(unknownId.body.error.issues, [{ path: 'itemVariationIds', message: "VARNOPE is not in the merchant's Square catalog" }]);
  t.is((await world.call('GET', '/api/v1/client/reward-rules', { token: c.owner.token })).body.length, before, 'nothing recorded');
  const known = await create({ kind: 'item', points: 5, itemVariationIds: ['VARLATTE'] });
  t.is(known.status, 201);
  t.deepEqual(known.body.warnings, []);
  // A workspace not connected to Square: accepted, with a warning that the ids were not checked.
  const fresh = await world.merchant(admin, `unconnected-${uuid().slice(0, 6)}@rules.test`);
  const unchecked = await world.call('POST', '/api/v1/client/reward-rules', { token: fresh.token, body: { kind: 'category', points: 1, categoryIds: ['CATANY'] } });
  t.is(unchecked.status, 201);
  t.regex(unchecked.body.warnings[0], /not connected.*unchecked/);
});

test('preview: the points a rule would give a Square payment or a sample order, line by line; nothing recorded', async (t) => {
  const c = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount' }]);
  const sale = await c.buys([latte('2', 90), muffin()]);
  await settled(sale.eventId);
  const preview = (body: unknown) => world.call('POST', '/api/v1/client/reward-rules/preview', { token: c.owner.token, body });
  const active = await preview({ paymentId: sale.paymentId });
  t.is(active.status, 200);
  t.like(active.body, { points: 13, payment: { paymentId: sale.paymentId, amountMinor: 1315, orderRead: false } });
  const tried = await preview({ paymentId: sale.paymentId, rule: { kind: 'spend', points: 1, per: 100, basis: 'amount', taxMode: 'before_tax', excludedItemVariationIds: ['VARMUFFIN'] } });
  t.like(tried.body, { points: 9, payment: { orderRead: true } });
  t.true(tried.body.lines.some((l: { text: string }) => /Muffin.*excluded/.test(l.text)));
  t.true(tried.body.lines.some((l: { text: string }) => /tax of 90/.test(l.text)));
  const sample = await preview({ rule: { kind: 'item', points: 5, itemVariationIds: ['VARLATTE'] }, order: { lines: [{ itemVariationId: 'VARLATTE', name: 'Latte', quantity: '3', totalMinor: 1350 }] } });
  t.like(sample.body, { points: 15, rules: [{ ruleId: null, kind: 'item', points: 15 }] });
  const both = await preview({ paymentId: sale.paymentId, order: { lines: [] } });
  t.is(both.status, 400);
  t.regex(both.body.error.message, /paymentId/);
  const missing = await preview({ paymentId: 'PAYMENT-NOT-AT-SQUARE' });
  t.is(missing.status, 404);
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 13 }, 'previews change no balance');
});

test('replay: reconciliation covers purchases of several rules and their refunds; a rebuild of the wallets gives the same balances', async (t) => {
  const c = await cafe([
    { kind: 'category', points: 3, categoryIds: ['CATCOFFEE'] },
    { kind: 'spend', points: 1, per: 100, basis: 'amount', taxMode: 'before_tax' },
  ]);
  const sale = await c.buys([latte('2', 72), muffin('1', 26)]);
  t.like(await settled(sale.eventId), { outcome: 'credited' });
  await send(refundWebhook({ eventId: `evt-r-${sale.paymentId}`, merchantId: c.merchantId, refundId: `RR-${sale.paymentId}`, paymentId: sale.paymentId, amount: 500 }));
  t.like(await settled(`evt-r-${sale.paymentId}`), { outcome: 'refund_applied' });
  // 6 (category) + 12 (spend on $12.25 before tax) = 18; $5.00 of $13.23 back: 2 + 4 = 6 reversed.
  const before = await world.balances(c.guest);
  t.deepEqual(before, { [c.owner.tenantId]: 12 });
  const report = await world.call('POST', '/api/v1/admin/reconcile', { token: admin.token, body: { tenantId: c.owner.tenantId } });
  t.is(report.status, 200);
  t.like(report.body, { walletsChecked: 1, mismatches: [] });
  const started = await world.call('POST', '/api/v1/admin/projections/wallets/rebuild', { token: admin.token });
  t.is(started.status, 202);
  const done = await eventually(
    () => world.call('GET', `/api/v1/admin/jobs/${started.body.jobId}`, { token: admin.token }),
    (job) => job.body.state === 'completed' || job.body.state === 'failed',
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  t.is(done.body.state, 'completed');
  t.deepEqual(await world.balances(c.guest), before);
});

// Serial (run before the others): the poll takes every connection's listed payments, which would beat the other tests' webhooks.
test.serial('the poll reads the order the same way: a payment Square only lists earns by the item rule', async (t) => {
  const c = await cafe([{ kind: 'item', points: 4, itemVariationIds: ['VARLATTE'] }]);
  const sale = await c.buys([latte('3')], 0, { poll: true });
  const polled = await world.call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
  t.is(polled.status, 200);
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 12 });
  t.like(await purchase(sale.paymentId), { points: 12, orderRead: true });
});

test('a promotion limited to items applies only when the order has one: by variation or by category; the order is read for it', async (t) => {
  // A payment-only rule: without the promotions, no order would be read at all.
  const c = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount' }]);
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const schedule = (body: Record<string, unknown>) => world.call('POST', '/api/v1/client/promotions', { token: c.owner.token, body: { startsOn: yesterday, ...body } });
  const lattes = await schedule({ name: 'Latte bonus', incentive: { type: 'bonus', points: 50 }, itemVariationIds: ['VARLATTE'] });
  t.is(lattes.status, 201, JSON.stringify(lattes.body));
  t.deepEqual(lattes.body.warnings, [], 'the ids were checked against the catalog');
  const pastries = await schedule({ name: 'Pastry bonus', incentive: { type: 'bonus', points: 20 }, categoryIds: ['CATPASTRY'] });
  t.is(pastries.status, 201);

  const latteSale = await c.buys([latte()]);
  t.like(await settled(latteSale.eventId), { outcome: 'credited' });
  t.like(await purchase(latteSale.paymentId), { points: 4 + 50, orderRead: true, promotion: { promotionId: lattes.body.promotionId, points: 50 } });
  const muffinSale = await c.buys([muffin()]);
  t.like(await settled(muffinSale.eventId), { outcome: 'credited' });
  t.like(await purchase(muffinSale.paymentId), { points: 3 + 20, orderRead: true, promotion: { promotionId: pastries.body.promotionId, points: 20 } });
  const giftSale = await c.buys([giftCard()]);
  t.like(await settled(giftSale.eventId), { outcome: 'credited' });
  t.like(await purchase(giftSale.paymentId), { points: 25, orderRead: true, promotion: null }, 'neither a listed variation nor a listed category');
  t.is(ordersRead(giftSale.orderId), 1);
  t.deepEqual(await world.balances(c.guest), { [c.owner.tenantId]: 54 + 23 + 25 });
  // The preview reads the order for the promotions too (the only rule is payment-only), and answers what was credited.
  const previewed = await world.call('POST', '/api/v1/client/reward-rules/preview', { token: c.owner.token, body: { paymentId: muffinSale.paymentId } });
  t.is(previewed.status, 200, JSON.stringify(previewed.body));
  t.like(previewed.body, { points: 3 + 20, rulePoints: 3, promotion: { promotionId: pastries.body.promotionId, points: 20 }, payment: { orderRead: true }, warnings: [] });

  // Ids the catalog does not hold, or holds as something else, are refused naming the field; nothing is scheduled.
  const unknown = await schedule({ name: 'Nope', incentive: { type: 'bonus', points: 5 }, itemVariationIds: ['VARNOPE'] });
  t.is(unknown.status, 400);
  t.regex(JSON.stringify(unknown.body), /itemVariationIds.*VARNOPE is not in the merchant's Square catalog/);
  const wrongKind = await schedule({ name: 'Nope', incentive: { type: 'bonus', points: 5 }, categoryIds: ['VARLATTE'] });
  t.is(wrongKind.status, 400);
  t.regex(JSON.stringify(wrongKind.body), /categoryIds.*VARLATTE is a item_variation, not a category/);
  const listed = await world.call('GET', '/api/v1/client/promotions', { token: c.owner.token });
  t.deepEqual(listed.body.map((p: { promotion: { name: string } }) => p.promotion.name), ['Pastry bonus', 'Latte bonus']);
});

test('a promotion with qualifying items on a connection without the order scopes: scheduled with warnings; its payments wait for the grant', async (t) => {
  const c = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount' }], { scopes: PAYMENT_ONLY_SCOPES });
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const scheduled = await world.call('POST', '/api/v1/client/promotions', {
    token: c.owner.token,
    body: { name: 'Pastry bonus', incentive: { type: 'bonus', points: 20 }, startsOn: yesterday, categoryIds: ['CATPASTRY'] },
  });
  t.is(scheduled.status, 201);
  t.is(scheduled.body.warnings.length, 2, JSON.stringify(scheduled.body.warnings));
  t.regex(scheduled.body.warnings[0], /lacks ITEMS_READ.*unchecked/);
  t.regex(scheduled.body.warnings[1], /lacks ORDERS_READ.*fail and are retried/);
  const sale = await c.buys([muffin()]);
  const row = await settled(sale.eventId);
  t.false(row.processed, 'not credited without the promotion it may qualify for');
  t.regex(row.error, /SQUARE_SCOPES_MISSING.*ORDERS_READ/);
  t.truthy(row.nextAttemptAt, 'retried later');

  // A promotion limited to items whose window has not begun (or has passed) could not apply: its payments earn.
  const later = await cafe([{ kind: 'spend', points: 1, per: 100, basis: 'amount' }], { scopes: PAYMENT_ONLY_SCOPES });
  const nextWeek = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
  const future = await world.call('POST', '/api/v1/client/promotions', {
    token: later.owner.token,
    body: { name: 'Pastry week', incentive: { type: 'bonus', points: 20 }, startsOn: nextWeek, categoryIds: ['CATPASTRY'] },
  });
  t.is(future.status, 201, JSON.stringify(future.body));
  const now = await later.buys([muffin()]);
  t.like(await settled(now.eventId), { processed: true, outcome: 'credited' });
  t.is(ordersRead(now.orderId), 0, 'no order read for a promotion that could not apply');
});
