/**
 * Promotions and locations (issue 19) against the running service: the merchant's locations from the local
 * Square server, promotions scheduled over HTTP, and signed Square webhooks of payments made at chosen instants,
 * so each window edge (start, end, time zone, a daylight-saving change) is decided as a merchant would expect.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, TEST_JWT_SECRET } from '../support/http.ts';
import { scenario } from '../support/tenants.ts';
import { eventually } from '../support/eventually.ts';
import { squareEnv, startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, refundWebhook, webhookSender } from '../support/square-webhooks.ts';
import { paymentEvents } from '../../domain/payments/events.ts';
import { paymentStream } from '../../domain/payments/payment.ts';
import { codeSentTo } from '../support/sms.ts';

const WEBHOOK_KEY = 'test-webhook-signature-key';
const API_BASE_URL = 'https://api.tally.test';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
const MERCHANT = 'M-PROMO';

let square: SquareTestServer;
let service: TestService;
let call: ReturnType<typeof api>;
let send: ReturnType<typeof webhookSender>;
let admin: string;
let client: string;
let ann: string;
let tenantId: string;
let actors: ReturnType<typeof scenario>;
const register = (role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) => actors.register(role, email, extra);

async function processed(eventId: string) {
  const row = await eventually(() => call('GET', `/api/v1/admin/webhooks/${encodeURIComponent(eventId)}`, { token: admin }), (r) => r.status === 200 && r.body.processed, {
    timeoutMs: 10_000,
    intervalMs: 50,
  });
  if (!row.body.processed) throw new Error(`webhook ${eventId} was not processed in time`);
  return row.body;
}

/** The purchase Tally recorded for a payment, decoded as every reader decodes it. */
async function purchaseOf(paymentId: string) {
  const events = (await service.tally.store.readStream(paymentStream(paymentId))).map((e) => paymentEvents.decode(e));
  const completed = events.find((e) => e.type === 'PurchaseCompleted');
  if (completed?.type !== 'PurchaseCompleted') throw new Error(`no purchase recorded for ${paymentId}`);
  return completed.data;
}

/** Ann pays `amount` cents at `at` (Square's `created_at`); answers the points and the promotion recorded. */
async function pay(at: string, options: { amount?: number; locationId?: string; customerId?: string | null; buyerEmail?: string; orderId?: string; currency?: string } = {}) {
  const paymentId = `pay-${uuid().slice(0, 12)}`;
  const eventId = `evt-${paymentId}`;
  const customerId = options.customerId === undefined ? 'cust-ann' : options.customerId;
  const answer = await send(
    paymentWebhook({ eventId, merchantId: MERCHANT, paymentId, amount: options.amount ?? 1000, customerId, createdAt: at, updatedAt: at, locationId: options.locationId ?? 'L-MAIN', ...(options.buyerEmail ? { buyerEmail: options.buyerEmail } : {}), ...(options.orderId ? { orderId: options.orderId } : {}), ...(options.currency ? { currency: options.currency } : {}) }),
  );
  if (answer.status !== 200) throw new Error(`webhook refused: ${answer.status}`);
  const row = await processed(eventId);
  const purchase = await purchaseOf(paymentId);
  return { paymentId, outcome: row.outcome as string, points: purchase.points, promotion: purchase.promotion?.name ?? null, promotionPoints: purchase.promotion?.points ?? 0, localDate: purchase.promotion?.localDate ?? null };
}

async function schedule(body: Record<string, unknown>) {
  const answer = await call('POST', '/api/v1/client/promotions', { token: client, body });
  if (answer.status !== 201) throw new Error(`schedule: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function balance(): Promise<number> {
  const head = await service.tally.store.headPosition();
  const wallets = await call('GET', '/api/v1/me/wallets', { token: ann, headers: head ? { 'x-min-position': head } : {} });
  return (wallets.body as { tenantId: string; balance: number }[]).find((w) => w.tenantId === tenantId)?.balance ?? 0;
}

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({
    merchantId: MERCHANT,
    businessName: 'Promo Cafe',
    locations: [
      { id: 'L-MAIN', name: 'Main street', timezone: 'America/New_York' },
      { id: 'L-AIRPORT', name: 'Airport kiosk', timezone: 'America/New_York' },
      { id: 'L-LA', name: 'Venice Beach', timezone: 'America/Los_Angeles' },
    ],
  });
  square.addCustomer(MERCHANT, { id: 'cust-ann', email: 'ann@promo.test', phone: null });
  square.addCustomer(MERCHANT, { id: 'cust-bo', email: 'bo@promo.test', phone: null });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@promo.test',
    ...squareEnv(square, WEBHOOK_KEY, API_BASE_URL),
  });
  call = api(service.url);
  actors = scenario(service, square);
  send = webhookSender(service.url, WEBHOOK_KEY, NOTIFICATION_URL);
  admin = (await register('consumer', 'ops@promo.test')).token;
  ann = (await register('consumer', 'ann@promo.test')).token;
  const merchant = await register('client', 'owner@promo.test', { businessName: 'Promo Cafe' });
  client = merchant.token;
  tenantId = (await call('PATCH', `/api/v1/admin/users/${merchant.id}/approve`, { token: admin })).body.user.tenantId;
  await actors.connect(merchant, MERCHANT);
  // 1 point per $1 of the amount: a $10 payment earns 10 points before any promotion.
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: client, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: client });
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

test.serial("the merchant's locations come from Square's ListLocations, with the main location's time zone", async (t) => {
  const answer = await call('GET', '/api/v1/client/locations', { token: client });
  t.is(answer.status, 200);
  t.is(answer.body.timeZone, 'America/New_York');
  t.deepEqual(
    answer.body.locations.map((l: { id: string; timezone: string }) => [l.id, l.timezone]),
    [
      ['L-MAIN', 'America/New_York'],
      ['L-AIRPORT', 'America/New_York'],
      ['L-LA', 'America/Los_Angeles'],
    ],
  );
});

test.serial('bad promotions are 400s naming the field, and nothing is recorded', async (t) => {
  const valid = { name: 'Double', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-01-05' };
  const cases: [Record<string, unknown>, string][] = [
    [{ ...valid, incentive: { type: 'multiplier', multiplier: 11 } }, 'incentive.multiplier'],
    [{ ...valid, incentive: { type: 'multiplier', multiplier: 0 } }, 'incentive.multiplier'],
    [{ ...valid, incentive: { type: 'bonus', points: 0 } }, 'incentive.points'],
    [{ ...valid, incentive: { type: 'bonus', points: 1_000_001 } }, 'incentive.points'],
    [{ ...valid, endsOn: '2027-01-04' }, 'endsOn'],
    [{ ...valid, hours: [{ from: '17:00', to: '14:00' }] }, 'hours.0.to'],
    [{ ...valid, hours: [{ from: '09:00', to: '12:00' }, { from: '11:30', to: '13:00' }] }, 'hours.1'],
    [{ ...valid, locationIds: ['L-MAIN', 'L-ELSEWHERE'] }, 'locationIds.1'],
  ];
  for (const [body, field] of cases) {
    const answer = await call('POST', '/api/v1/client/promotions', { token: client, body });
    t.is(answer.status, 400, JSON.stringify(body));
    // Schema failures and a location Square does not list (found after the schema) answer alike: `issues`, `body.<field>`.
    const issues: { path: string }[] = answer.body.error.issues ?? [];
    t.true(answer.body.error.message.includes(`body.${field}`), answer.body.error.message);
    t.is(answer.body.error.code, 'VALIDATION_FAILED');
    t.true(
      issues.some((i) => i.path === field),
      `${field} is named: ${JSON.stringify(answer.body.error)}`,
    );
  }
  t.deepEqual((await call('GET', '/api/v1/client/promotions', { token: client })).body, [], 'nothing recorded');
});

test.serial('scheduling under an idempotency key: a retry is one promotion and the same answer; another body is a 422', async (t) => {
  // Far in the future, and ended at the end: no payment of the other tests meets it.
  const body = { name: 'Key test', incentive: { type: 'bonus', points: 5 }, startsOn: '2099-01-05', idempotencyKey: `promo-${uuid()}` };
  const first = await call('POST', '/api/v1/client/promotions', { token: client, body });
  t.is(first.status, 201);
  const retry = await call('POST', '/api/v1/client/promotions', { token: client, body });
  t.is(retry.status, 200);
  t.is(retry.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(retry.body, first.body, 'the retry answers what the first call answered');

  // The header alone is the same key (it was ignored: every retry scheduled another promotion).
  const headers = { 'idempotency-key': `promo-${uuid()}` };
  const { idempotencyKey: _key, ...plain } = body;
  const byHeader = await call('POST', '/api/v1/client/promotions', { token: client, body: plain, headers });
  const byHeaderAgain = await call('POST', '/api/v1/client/promotions', { token: client, body: plain, headers });
  t.deepEqual([byHeader.status, byHeaderAgain.status, byHeaderAgain.headers.get('idempotent-replayed')], [201, 200, 'true']);
  t.is(byHeaderAgain.body.promotionId, byHeader.body.promotionId);

  const reused = await call('POST', '/api/v1/client/promotions', { token: client, body: { ...body, incentive: { type: 'bonus', points: 6 } } });
  t.is(reused.status, 422);
  t.is(reused.body.error.code, 'IDEMPOTENCY_KEY_REUSED');

  const listed = await call('GET', '/api/v1/client/promotions', { token: client });
  t.deepEqual(listed.body.map((p: { promotionId: string }) => p.promotionId).sort(), [first.body.promotionId, byHeader.body.promotionId].sort(), 'one promotion per key');
  for (const p of [first, byHeader]) t.is((await call('POST', `/api/v1/client/promotions/${p.body.promotionId}/end`, { token: client })).status, 200);
});

test.serial('double points Tuesdays 14:00–17:00 New York time at Main street: each edge of the window', async (t) => {
  const scheduled = await schedule({
    name: 'Double Tuesday afternoons',
    incentive: { type: 'multiplier', multiplier: 2 },
    startsOn: '2027-01-05',
    endsOn: '2027-01-26',
    daysOfWeek: ['TUE'],
    hours: [{ from: '14:00', to: '17:00' }],
    locationIds: ['L-MAIN'],
  });
  t.like(scheduled, { timeZone: 'America/New_York', status: 'scheduled', phase: 'upcoming', endedAt: null });
  // January in New York is EST, UTC−5.
  t.like(await pay('2027-01-05T18:59:59Z'), { outcome: 'credited', points: 10, promotion: null }, '13:59:59: before the start');
  t.like(await pay('2027-01-05T19:00:00Z'), { points: 20, promotion: 'Double Tuesday afternoons', promotionPoints: 10 }, '14:00:00: the start is included');
  t.like(await pay('2027-01-05T21:59:59Z'), { points: 20, promotion: 'Double Tuesday afternoons' }, '16:59:59: still in');
  t.like(await pay('2027-01-05T22:00:00Z'), { points: 10, promotion: null }, '17:00:00: the end is excluded');
  t.like(await pay('2027-01-05T15:00:00Z'), { points: 10, promotion: null }, '15:00 UTC is 10:00 in New York: the window is local');
  t.like(await pay('2027-01-05T20:00:00Z', { locationId: 'L-AIRPORT' }), { points: 10, promotion: null }, 'another location');
  t.like(await pay('2027-01-04T20:00:00Z'), { points: 10, promotion: null }, 'a Monday');
  t.like(await pay('2027-01-26T20:00:00Z'), { points: 20, promotion: 'Double Tuesday afternoons' }, 'the last day is included');
  t.like(await pay('2027-02-02T20:00:00Z'), { points: 10, promotion: null }, 'the Tuesday after the last day');
});

test.serial("a promotion limited to a location in another time zone runs on that location's clock; locations in two zones are refused", async (t) => {
  const window = { startsOn: '2027-10-05', endsOn: '2027-10-05', daysOfWeek: ['TUE'], hours: [{ from: '15:00', to: '18:00' }] };
  const scheduled = await schedule({ name: 'Double LA Tuesdays', incentive: { type: 'multiplier', multiplier: 2 }, ...window, locationIds: ['L-LA'] });
  t.like(scheduled, { timeZone: 'America/Los_Angeles' }, "the location's zone, not the main location's");
  // October in Los Angeles is PDT, UTC−7; New York is EDT, UTC−4.
  t.like(await pay('2027-10-05T23:00:00Z', { locationId: 'L-LA' }), { points: 20, promotion: 'Double LA Tuesdays' }, '16:00 in Los Angeles (19:00 in New York)');
  t.like(await pay('2027-10-05T19:30:00Z', { locationId: 'L-LA' }), { points: 10, promotion: null }, '12:30 in Los Angeles (15:30 in New York)');
  t.like(await pay('2027-10-06T00:59:00Z', { locationId: 'L-LA' }), { points: 20, promotion: 'Double LA Tuesdays', localDate: '2027-10-05' }, 'still Tuesday 17:59 in Los Angeles (its daily limit counts on that day), Wednesday in New York');

  const mixed = await call('POST', '/api/v1/client/promotions', { token: client, body: { name: 'Both coasts', incentive: { type: 'bonus', points: 5 }, startsOn: '2027-10-05', locationIds: ['L-MAIN', 'L-AIRPORT', 'L-LA'] } });
  t.is(mixed.status, 422, JSON.stringify(mixed.body));
  t.regex(mixed.body.error.message, /America\/New_York \(L-MAIN, L-AIRPORT\), America\/Los_Angeles \(L-LA\).*one promotion per time zone/);
  t.false((await call('GET', '/api/v1/client/promotions', { token: client })).body.some((p: { promotion: { name: string } }) => p.promotion.name === 'Both coasts'), 'nothing recorded');
  const east = await schedule({ name: 'East coast', incentive: { type: 'bonus', points: 5 }, startsOn: '2099-10-05', locationIds: ['L-MAIN', 'L-AIRPORT'] });
  t.is(east.timeZone, 'America/New_York');
  const everywhere = await schedule({ name: 'Everywhere', incentive: { type: 'bonus', points: 5 }, startsOn: '2099-10-05' });
  t.is(everywhere.timeZone, 'America/New_York', "no locationIds: the main location's zone");
  for (const p of [east, everywhere]) t.is((await call('POST', `/api/v1/client/promotions/${p.promotionId}/end`, { token: client })).status, 200);
});

test.serial('a daylight-saving change day: Sunday 09:00–12:00 stays 09:00–12:00 on the wall clock (US DST starts 2027-03-14)', async (t) => {
  await schedule({ name: 'Sunday brunch', incentive: { type: 'bonus', points: 50 }, startsOn: '2027-03-01', endsOn: '2027-03-31', daysOfWeek: ['SUN'], hours: [{ from: '09:00', to: '12:00' }] });
  // 2027-03-07: EST, UTC−5.
  t.like(await pay('2027-03-07T13:59:00Z'), { points: 10, promotion: null }, '08:59 EST');
  t.like(await pay('2027-03-07T14:00:00Z'), { points: 60, promotion: 'Sunday brunch', promotionPoints: 50 }, '09:00 EST');
  // 2027-03-14: clocks go from 02:00 EST to 03:00 EDT, UTC−4 from then.
  t.like(await pay('2027-03-14T12:59:00Z'), { points: 10, promotion: null }, '08:59 EDT');
  t.like(await pay('2027-03-14T13:00:00Z'), { points: 60, promotion: 'Sunday brunch' }, '09:00 EDT (08:00 had the clocks not changed)');
  t.like(await pay('2027-03-14T15:59:00Z'), { points: 60, promotion: 'Sunday brunch' }, '11:59 EDT');
  t.like(await pay('2027-03-14T16:00:00Z'), { points: 10, promotion: null }, '12:00 EDT (11:00 had the clocks not changed)');
});

test.serial('at most one promotion applies to a purchase: the one giving the most points', async (t) => {
  await schedule({ name: 'Triple on the 21st', incentive: { type: 'multiplier', multiplier: 3 }, startsOn: '2027-03-21', endsOn: '2027-03-21' });
  // Sunday 2027-03-21 10:00 EDT: brunch (+50) and triple (+2 × the rule's points) both qualify.
  t.like(await pay('2027-03-21T14:00:00Z', { amount: 1000 }), { points: 60, promotion: 'Sunday brunch', promotionPoints: 50 }, '$10: +50 beats +20');
  t.like(await pay('2027-03-21T14:05:00Z', { amount: 10000 }), { points: 300, promotion: 'Triple on the 21st', promotionPoints: 200 }, '$100: +200 beats +50');
});

test.serial('a fixed bonus is given once per order, however many tenders pay it; a multiplier still scales each tender', async (t) => {
  await schedule({ name: 'Bonus August 3rd', incentive: { type: 'bonus', points: 50 }, startsOn: '2027-08-03', endsOn: '2027-08-03' });
  const before = await balance();
  // A $10 order paid as five $2 tenders (gift cards, then a card): one at a time, then three decided together.
  const orderId = `order-split-${uuid().slice(0, 8)}`;
  const first = await pay('2027-08-03T14:00:00Z', { amount: 200, orderId });
  const second = await pay('2027-08-03T14:00:01Z', { amount: 200, orderId });
  const rest = await Promise.all(['2027-08-03T14:00:02Z', '2027-08-03T14:00:03Z', '2027-08-03T14:00:04Z'].map((at) => pay(at, { amount: 200, orderId })));
  t.like(first, { points: 52, promotion: 'Bonus August 3rd', promotionPoints: 50 }, 'the first tender that earns takes the bonus');
  t.deepEqual([second, ...rest].map((p) => [p.points, p.promotionPoints]), [[2, 0], [2, 0], [2, 0], [2, 0]], 'the other tenders earn by the rule only');
  t.is(await balance(), before + 60, '10 points for $10 and the bonus once: 60, not 260');
  // Two tenders of another order sent together: exactly one gets the bonus, whichever is decided first.
  const other = `order-split-${uuid().slice(0, 8)}`;
  const both = await Promise.all(['2027-08-03T15:00:00Z', '2027-08-03T15:00:01Z'].map((at) => pay(at, { amount: 500, orderId: other })));
  t.deepEqual(both.map((p) => p.promotionPoints).sort(), [0, 50]);
  // A multiplier scales the points of each tender, split or not.
  await schedule({ name: 'Double August 4th', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-08-04', endsOn: '2027-08-04' });
  const doubled = `order-split-${uuid().slice(0, 8)}`;
  const tenders = [await pay('2027-08-04T14:00:00Z', { amount: 300, orderId: doubled }), await pay('2027-08-04T14:00:01Z', { amount: 700, orderId: doubled })];
  t.deepEqual(tenders.map((p) => p.points), [6, 14]);
});

test.serial('a limit per customer per day counts per local day, also for payments decided together', async (t) => {
  await schedule({ name: 'Two bonuses a day', incentive: { type: 'bonus', points: 100 }, startsOn: '2027-04-06', endsOn: '2027-04-07', limitPerCustomerPerDay: 2, minimumSpend: 500 });
  t.like(await pay('2027-04-06T14:00:00Z', { amount: 400 }), { points: 4, promotion: null }, 'below the minimum spend: no use taken');
  // Three payments of Ann on 2027-04-06 (New York) sent at once: two get the bonus, whatever order they are decided in.
  const same = await Promise.all(['2027-04-06T15:00:00Z', '2027-04-06T16:00:00Z', '2027-04-07T03:30:00Z'].map((at) => pay(at)));
  t.deepEqual(same.map((p) => p.promotionPoints).sort(), [0, 100, 100], '23:30 EDT on the 6th is still the 6th');
  t.like(await pay('2027-04-07T04:30:00Z'), { points: 110, promotion: 'Two bonuses a day' }, '00:30 EDT on the 7th: a new day');
  t.like(await pay('2027-04-06T17:00:00Z', { customerId: 'cust-bo' }), { outcome: 'stored_anonymous', points: 110 }, "another customer's own count");
  t.like(await pay('2027-04-06T18:00:00Z', { customerId: null }), { points: 10, promotion: null }, 'with neither a Square customer nor a buyer email a limited promotion cannot be counted: it does not apply');
});

test.serial('a purchase paid in several tenders is one use of the daily limit: each tender gets the promotion, the next order of the day does not', async (t) => {
  await schedule({ name: 'Double once a day', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-09-14', endsOn: '2027-09-14', limitPerCustomerPerDay: 1 });
  // Tuesday 14 September 2027, New York: Ann pays a $40 order with two $20 tenders (two Square payments, one order).
  const orderId = `order-split-${uuid().slice(0, 8)}`;
  const first = await pay('2027-09-14T14:00:00Z', { amount: 2000, orderId });
  const second = await pay('2027-09-14T14:00:01Z', { amount: 2000, orderId });
  t.deepEqual([first, second].map((p) => [p.points, p.promotion]), [[40, 'Double once a day'], [40, 'Double once a day']], 'the order earns 80, not 40 + 20');
  t.like(await pay('2027-09-14T16:00:00Z', { amount: 1000, orderId: `order-${uuid().slice(0, 8)}` }), { points: 10, promotion: null }, "another order that day: the day's one purchase is used");
  t.like(await pay('2027-09-14T17:00:00Z', { amount: 1000 }), { points: 10, promotion: null }, 'a payment without an order too');
  // Another order's two tenders sent together, on the next day's own count: both get it, whichever is decided first.
  await schedule({ name: 'Double once on the 15th', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2027-09-15', endsOn: '2027-09-15', limitPerCustomerPerDay: 1 });
  const together = `order-split-${uuid().slice(0, 8)}`;
  const both = await Promise.all(['2027-09-15T14:00:00Z', '2027-09-15T14:00:01Z'].map((at) => pay(at, { amount: 2000, orderId: together })));
  t.deepEqual(both.map((p) => p.points), [40, 40]);
  const uses = await service.database.pool.query<{ order_id: string | null }>(`SELECT data->>'orderId' AS order_id FROM events WHERE event_type = 'PromotionUseCounted' AND data->>'paymentId' = ANY($1)`, [
    [first.paymentId, second.paymentId],
  ]);
  t.deepEqual(uses.rows.map((r) => r.order_id), [orderId, orderId], 'each tender records its use with the order');
});

test.serial('a Square Online buyer without a Square customer is counted by their email: the daily limit holds for them too', async (t) => {
  await schedule({ name: 'Online once a day', incentive: { type: 'bonus', points: 40 }, startsOn: '2027-04-20', endsOn: '2027-04-21', limitPerCustomerPerDay: 1 });
  const online = (at: string, buyerEmail: string) => pay(at, { customerId: null, buyerEmail });
  // Ann checks out online twice on Tuesday 20 April 2027 (New York), her address written differently the second time.
  const first = await online('2027-04-20T15:00:00Z', 'ann@promo.test');
  t.like(first, { outcome: 'credited', points: 50, promotion: 'Online once a day' }, 'identified by the buyer email, and counted by it');
  t.like(await online('2027-04-20T16:00:00Z', ' ANN@Promo.Test '), { outcome: 'credited', points: 10, promotion: null }, 'the same address, however written: the use is taken');
  const cy = await online('2027-04-20T16:30:00Z', 'cy@promo.test');
  t.like(cy, { outcome: 'stored_anonymous', points: 50, promotion: 'Online once a day' }, 'another buyer has their own count');
  t.like(await online('2027-04-20T17:00:00Z', 'cy@promo.test'), { outcome: 'stored_anonymous', points: 10, promotion: null }, "Cy, not a customer of the workspace, is counted by her address: the day's use is taken");
  t.like(await online('2027-04-21T15:00:00Z', 'ann@promo.test'), { points: 50, promotion: 'Online once a day' }, 'a new local day');
  // The use stream names the key, never the address: Ann's is the customer she resolved to, Cy's the keyed hash of hers.
  const streamOf = async (paymentId: string) => {
    const streams = await service.database.pool.query<{ stream_name: string }>(`SELECT DISTINCT stream_name FROM events WHERE event_type = 'PromotionUseCounted' AND data->>'paymentId' = $1`, [paymentId]);
    t.is(streams.rows.length, 1);
    return streams.rows[0]!.stream_name;
  };
  t.regex(await streamOf(first.paymentId), /^promotion-uses-[0-9a-f-]{36}-consumer:[0-9a-f-]{36}-2027-04-20$/);
  const ofCy = await streamOf(cy.paymentId);
  t.regex(ofCy, /^promotion-uses-[0-9a-f-]{36}-email:[A-Za-z0-9_-]+-2027-04-20$/);
  t.false(ofCy.includes('promo.test'), 'no address in a stream name');
});

test.serial('one person, however they pay: as a Square customer and by email alone on one day, one count', async (t) => {
  await schedule({ name: 'Once a day, any way', incentive: { type: 'bonus', points: 25 }, startsOn: '2027-04-27', endsOn: '2027-04-27', limitPerCustomerPerDay: 1 });
  // Ann, a customer of the workspace: at the counter as Square customer cust-ann, then online as a guest with her address.
  t.like(await pay('2027-04-27T14:00:00Z'), { outcome: 'credited', points: 35, promotion: 'Once a day, any way' });
  t.like(await pay('2027-04-27T16:00:00Z', { customerId: null, buyerEmail: 'Ann@Promo.test' }), { outcome: 'credited', points: 10, promotion: null }, 'the same person: her use is taken');
  // Bo, not registered: Square customer cust-bo (bo@promo.test on Square), then online with that address.
  const atCounter = await pay('2027-04-27T15:00:00Z', { customerId: 'cust-bo' });
  t.like(atCounter, { outcome: 'stored_anonymous', points: 35, promotion: 'Once a day, any way' });
  t.like(await pay('2027-04-27T17:00:00Z', { customerId: null, buyerEmail: 'bo@promo.test' }), { outcome: 'stored_anonymous', points: 10, promotion: null }, "the Square customer's address and the buyer's are one key");
  const stream = await service.database.pool.query<{ stream_name: string }>(`SELECT stream_name FROM events WHERE event_type = 'PromotionUseCounted' AND data->>'paymentId' = $1`, [atCounter.paymentId]);
  t.regex(stream.rows[0]?.stream_name ?? '', /-email:[A-Za-z0-9_-]+-2027-04-27$/, 'without a customer of the workspace, the email is the key');
  t.false((stream.rows[0]?.stream_name ?? '').includes('promo.test'));
});

test.serial('a buyer who pays, registers and pays again on one day: the use counted by their email before they joined counts', async (t) => {
  await schedule({ name: 'Once a day, joined or not', incentive: { type: 'bonus', points: 30 }, startsOn: '2027-07-13', endsOn: '2027-07-13', limitPerCustomerPerDay: 1 });
  // Fay checks out online at 10:00 New York time, not yet a customer of the workspace: her points are held, with the bonus.
  const before = await pay('2027-07-13T14:00:00Z', { customerId: null, buyerEmail: 'fay@promo.test' });
  t.like(before, { outcome: 'stored_anonymous', points: 40, promotion: 'Once a day, joined or not' });
  // 10:05: she registers, her email verified by her sign-in.
  await register('consumer', 'fay@promo.test');
  // 12:00 the same day she resolves to a customer of the workspace: the 10:00 use is hers, the day's one use is taken.
  t.like(await pay('2027-07-13T16:00:00Z', { customerId: null, buyerEmail: 'fay@promo.test' }), { outcome: 'credited', points: 10, promotion: null });
});

test.serial('a use counted by his email before he joined counts when he pays later as a Square customer known by his phone alone', async (t) => {
  await schedule({ name: 'Once a day, in store too', incentive: { type: 'bonus', points: 30 }, startsOn: '2027-07-20', endsOn: '2027-07-20', limitPerCustomerPerDay: 1 });
  // Gil checks out online at 10:00 New York time, not yet a customer of the workspace: the use is counted under his email.
  t.like(await pay('2027-07-20T14:00:00Z', { customerId: null, buyerEmail: 'gil@promo.test' }), { outcome: 'stored_anonymous', points: 40, promotion: 'Once a day, in store too' });
  // 10:05: he registers (his email verified by his sign-in) and verifies his phone; Square knows him in store by that phone alone.
  const gil = await register('consumer', 'gil@promo.test');
  const ok = (r: { status: number; body: unknown }) => t.true(r.status < 300, JSON.stringify(r.body));
  ok(await call('PATCH', '/api/v1/me', { token: gil.token, body: { phone: '+1 212 555 4277' } }));
  ok(await call('POST', '/api/v1/me/phone/verification', { token: gil.token }));
  ok(await call('POST', '/api/v1/me/phone/verify', { token: gil.token, body: { code: codeSentTo(service.logs, '+12125554277') } }));
  await actors.settle();
  square.addCustomer(MERCHANT, { id: 'cust-gil', email: null, phone: '+12125554277' });
  // 12:00: at the counter as that Square customer, resolved to him by his phone: the 10:00 use is his, no second bonus.
  t.like(await pay('2027-07-20T16:00:00Z', { customerId: 'cust-gil' }), { outcome: 'credited', points: 10, promotion: null });
});

test.serial("a refund takes the promotion's points back in proportion with the rest; ending a promotion keeps what was earned", async (t) => {
  const before = await balance();
  const scheduled = await schedule({ name: 'Quintuple May', incentive: { type: 'multiplier', multiplier: 5 }, startsOn: '2027-05-01', endsOn: '2027-05-31' });
  const promoted = await pay('2027-05-04T16:00:00Z', { amount: 2000 });
  t.like(promoted, { outcome: 'credited', points: 100, promotionPoints: 80 });
  t.is(await balance(), before + 100);
  const refund = await send(refundWebhook({ eventId: `evt-refund-${promoted.paymentId}`, merchantId: MERCHANT, refundId: `ref-${promoted.paymentId}`, paymentId: promoted.paymentId, amount: 500 }));
  t.is(refund.status, 200);
  t.like(await processed(`evt-refund-${promoted.paymentId}`), { outcome: 'refund_applied' });
  t.is(await balance(), before + 75, 'a quarter of the amount refunded: a quarter of the 100 points (rule and promotion alike)');

  const ended = await call('POST', `/api/v1/client/promotions/${scheduled.promotionId}/end`, { token: client });
  t.like(ended.body, { status: 'ended' });
  t.like(await pay('2027-05-05T16:00:00Z'), { points: 10, promotion: null }, 'a payment made after the end does not use it');
  const listed = await call('GET', '/api/v1/client/promotions', { token: client });
  t.is(listed.body[0].promotionId, scheduled.promotionId, 'newest first');
  t.is((await call('POST', `/api/v1/client/promotions/${uuid()}/end`, { token: client })).status, 404);
});

test.serial('a rule limited to some locations: a payment elsewhere is location_excluded, recorded, filterable, and earns no promotion', async (t) => {
  const foreign = await call('POST', '/api/v1/client/reward-rules', { token: client, body: { kind: 'spend', points: 1, per: 100, basis: 'amount', locationIds: ['L-MAIN', 'L-NOWHERE'] } });
  t.is(foreign.status, 400);
  t.true(foreign.body.error.issues.some((i: { path: string }) => i.path === 'locationIds.1'), JSON.stringify(foreign.body));
  t.deepEqual(foreign.body.error.details.issues, foreign.body.error.issues, 'details.issues kept for the clients that read it');
  t.regex(foreign.body.error.message, /^The request is invalid: body\.locationIds\.1: L-NOWHERE is not one of/);
  const before = (await call('GET', '/api/v1/client/reward-rules', { token: client })).body.length;
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: client, body: { kind: 'spend', points: 1, per: 100, basis: 'amount', locationIds: ['L-MAIN'] } });
  t.is(rule.status, 201);
  t.deepEqual(rule.body.rule.locationIds, ['L-MAIN']);
  const activated = await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: client });
  t.is(activated.status, 200);
  const rules = await call('GET', '/api/v1/client/reward-rules', { token: client, headers: { 'x-min-position': activated.body.position } });
  t.is(rules.body.length, before + 1, 'the refused rule was not recorded');
  // A bonus promotion at every location: it only adds to a purchase the rules credit.
  await schedule({ name: 'June bonus', incentive: { type: 'bonus', points: 7 }, startsOn: '2027-06-01', endsOn: '2027-06-30' });
  const kiosk = await pay('2027-06-01T16:00:00Z', { locationId: 'L-AIRPORT' });
  t.like(kiosk, { outcome: 'location_excluded', points: 0, promotion: null });
  t.like(await pay('2027-06-01T16:05:00Z', { locationId: 'L-MAIN' }), { outcome: 'credited', points: 17, promotion: 'June bonus' });
  // The preview reads the payment from Square and says the rule does not apply at its location.
  square.addPayment(MERCHANT, { id: kiosk.paymentId, locationId: 'L-AIRPORT', amount: 1000, customerId: 'cust-ann', createdAt: '2027-06-01T16:00:00Z' });
  const preview = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body: { paymentId: kiosk.paymentId } });
  t.is(preview.status, 200, JSON.stringify(preview.body));
  t.is(preview.body.points, 0);
  t.true(preview.body.warnings.some((w: string) => /L-AIRPORT.*location_excluded/.test(w)), JSON.stringify(preview.body.warnings));
  const listed = await call('GET', `/api/v1/admin/webhooks?outcome=location_excluded&tenantId=${tenantId}`, { token: admin });
  t.is(listed.status, 200);
  t.deepEqual(
    listed.body.items.map((w: { eventId: string }) => w.eventId),
    [`evt-${kiosk.paymentId}`],
  );
});

test.serial('the rule preview adds the promotion ingestion would: its window, location and daily limit, on a sample order and on a Square payment', async (t) => {
  // February 2028: twice the points on Wednesdays at Main street; 5 points more once a day per customer anywhere.
  const double = await schedule({ name: 'Preview double', incentive: { type: 'multiplier', multiplier: 2 }, startsOn: '2028-02-01', endsOn: '2028-02-29', daysOfWeek: ['WED'], locationIds: ['L-MAIN'] });
  await schedule({ name: 'Once a day', incentive: { type: 'bonus', points: 5 }, startsOn: '2028-02-01', endsOn: '2028-02-29', limitPerCustomerPerDay: 1 });
  const order = { lines: [{ name: 'Lunch', quantity: '1', totalMinor: 1000 }] };
  const preview = async (body: Record<string, unknown>) => {
    const answer = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body });
    t.is(answer.status, 200, JSON.stringify(answer.body));
    return answer.body;
  };
  const tryRule = { kind: 'spend', points: 1, per: 100, basis: 'amount' };

  // A sample order on Wednesday 2 February 2028, 12:00 in New York (EST, UTC−5): the most points, the double.
  const wednesday = await preview({ rule: tryRule, order, at: '2028-02-02T17:00:00Z', locationId: 'L-MAIN' });
  t.like(wednesday, { points: 20, rulePoints: 10, promotion: { promotionId: double.promotionId, name: 'Preview double', points: 10, localDate: '2028-02-02' } });
  t.like(wednesday.payment, { paymentId: null, createdAt: '2028-02-02T17:00:00Z', locationId: 'L-MAIN' });
  t.deepEqual(wednesday.rules, [{ ruleId: null, version: null, kind: 'spend', points: 10 }], 'the rules keep their own points');
  // Thursday: the bonus, whose daily limit the preview cannot count for a sample, and says so.
  const thursday = await preview({ rule: tryRule, order, at: '2028-02-03T17:00:00Z', locationId: 'L-MAIN' });
  t.like(thursday, { points: 15, promotion: { name: 'Once a day', points: 5, localDate: '2028-02-03' } });
  t.true(thursday.warnings.some((w: string) => /"Once a day" applies to 1 purchase\(s\) per customer per day/.test(w)), JSON.stringify(thursday.warnings));
  t.like(await preview({ rule: tryRule, order, at: '2028-02-03T04:00:00Z', locationId: 'L-MAIN' }), { points: 20, promotion: { localDate: '2028-02-02' } }, '04:00 UTC on Thursday is Wednesday evening in New York');
  const nowhere = await preview({ rule: tryRule, order, at: '2028-02-02T17:00:00Z' });
  t.like(nowhere, { points: 15, promotion: { name: 'Once a day' } }, 'no location given: promotions limited to locations are left out');
  t.true(nowhere.warnings.some((w: string) => /give locationId/.test(w)), JSON.stringify(nowhere.warnings));
  const small = { lines: [{ name: 'Mint', quantity: '1', totalMinor: 50 }] };
  t.like(await preview({ rule: tryRule, order: small, at: '2028-02-02T17:00:00Z', locationId: 'L-MAIN' }), { points: 0, rulePoints: 0, promotion: null }, 'a promotion adds only to what the rules give');
  for (const [body, message] of [
    [{ order, at: 'yesterday' }, /at must be an ISO 8601 date-time/],
    [{ paymentId: 'pay-x', at: '2028-02-02T17:00:00Z' }, /at goes with a sample order/],
    [{ paymentId: 'pay-x', locationId: 'L-MAIN' }, /locationId goes with a sample order/],
  ] as const) {
    const refused = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body });
    t.is(refused.status, 400);
    t.regex(JSON.stringify(refused.body), message);
  }

  // Square payments, under the active rules: the preview of each answers what ingestion then records for it.
  const cases = [
    { paymentId: `pay-${uuid().slice(0, 12)}`, createdAt: '2028-02-09T17:00:00Z', customerId: 'cust-ann', points: 20, promotion: 'Preview double' },
    // A walk-in has no Square customer nor buyer email to count the daily limit against: the bonus cannot apply.
    { paymentId: `pay-${uuid().slice(0, 12)}`, createdAt: '2028-02-10T17:00:00Z', customerId: null, points: 10, promotion: null },
    // A Square Online checkout: no Square customer, but a buyer email to count by.
    { paymentId: `pay-${uuid().slice(0, 12)}`, createdAt: '2028-02-11T17:00:00Z', customerId: null, buyerEmail: 'dee@promo.test', points: 15, promotion: 'Once a day' },
  ];
  for (const c of cases) {
    square.addPayment(MERCHANT, { id: c.paymentId, locationId: 'L-MAIN', amount: 1000, ...(c.customerId ? { customerId: c.customerId } : {}), ...(c.buyerEmail ? { buyerEmail: c.buyerEmail } : {}), createdAt: c.createdAt });
    const previewed = await preview({ paymentId: c.paymentId });
    t.like(previewed, { points: c.points, promotion: c.promotion ? { name: c.promotion } : null });
    t.like(previewed.payment, { paymentId: c.paymentId, createdAt: c.createdAt, locationId: 'L-MAIN' });
    const uncounted = previewed.warnings.some((w: string) => /no Square customer and no buyer email.*"Once a day" cannot apply/.test(w));
    t.is(uncounted, !c.customerId && !c.buyerEmail, JSON.stringify(previewed.warnings));
    const ingested = await pay(c.createdAt, { customerId: c.customerId, ...(c.buyerEmail ? { buyerEmail: c.buyerEmail } : {}) });
    t.like(ingested, { points: previewed.points, promotion: previewed.promotion?.name ?? null });
  }
});

test.serial("the preview of a Square payment in another currency answers ingestion's currency_mismatch: no points; one not completed says it earns once completed", async (t) => {
  // The workspace counts in USD (the merchant's currency); 1 point per 100 minor units is active.
  const euros = `pay-${uuid().slice(0, 12)}`;
  square.addPayment(MERCHANT, { id: euros, locationId: 'L-MAIN', amount: 10000, currency: 'EUR', customerId: 'cust-ann', createdAt: '2028-05-02T17:00:00Z' });
  const previewed = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body: { paymentId: euros, rule: { kind: 'spend', points: 1, per: 100, basis: 'amount' } } });
  t.is(previewed.status, 200, JSON.stringify(previewed.body));
  t.like(previewed.body, { points: 0, rulePoints: 0, promotion: null, rules: [] });
  t.true(previewed.body.warnings.some((w: string) => /in EUR and the workspace counts in USD: .*currency_mismatch, with no points/.test(w)), JSON.stringify(previewed.body.warnings));
  t.like(await pay('2028-05-02T17:00:00Z', { amount: 10000, currency: 'EUR' }), { outcome: 'currency_mismatch', points: 0 }, 'what ingestion records');

  const approved = `pay-${uuid().slice(0, 12)}`;
  square.addPayment(MERCHANT, { id: approved, locationId: 'L-MAIN', amount: 1000, status: 'APPROVED', customerId: 'cust-ann', createdAt: '2028-05-02T18:00:00Z' });
  const pending = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body: { paymentId: approved } });
  t.is(pending.status, 200, JSON.stringify(pending.body));
  t.is(pending.body.points, 10, 'what it would earn once completed');
  t.true(pending.body.warnings.some((w: string) => /APPROVED, not COMPLETED: it earns nothing until it completes.*recorded.*credits it once/.test(w)), JSON.stringify(pending.body.warnings));
  const eventId = `evt-${approved}`;
  t.is((await send(paymentWebhook({ eventId, merchantId: MERCHANT, paymentId: approved, amount: 1000, status: 'APPROVED', customerId: 'cust-ann', createdAt: '2028-05-02T18:00:00Z', updatedAt: '2028-05-02T18:00:00Z', locationId: 'L-MAIN' }))).status, 200);
  t.like(await processed(eventId), { outcome: 'recorded' }, 'ingestion records it, no credit yet');

  // A FAILED (or CANCELED) payment is final at Square: the preview does not say it will be credited once completed.
  const failed = `pay-${uuid().slice(0, 12)}`;
  square.addPayment(MERCHANT, { id: failed, locationId: 'L-MAIN', amount: 1000, status: 'FAILED', customerId: 'cust-ann', createdAt: '2028-05-02T19:00:00Z' });
  const final = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body: { paymentId: failed } });
  t.is(final.status, 200, JSON.stringify(final.body));
  t.true(final.body.warnings.some((w: string) => /FAILED, which is final at Square: it earns nothing, ever/.test(w)), JSON.stringify(final.body.warnings));
  t.false(final.body.warnings.some((w: string) => /credits it once/.test(w)));
});

test.serial('on a tie the preview names the promotion ingestion applies: the first scheduled', async (t) => {
  // March 2028: two bonuses of 7 points; the first has no limit, the second (scheduled after it) one a day.
  await schedule({ name: 'Tie first', incentive: { type: 'bonus', points: 7 }, startsOn: '2028-03-01', endsOn: '2028-03-31' });
  await schedule({ name: 'Tie second', incentive: { type: 'bonus', points: 7 }, startsOn: '2028-03-01', endsOn: '2028-03-31', limitPerCustomerPerDay: 1 });
  const order = { lines: [{ name: 'Lunch', quantity: '1', totalMinor: 1000 }] };
  const sample = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body: { order, at: '2028-03-08T17:00:00Z', locationId: 'L-MAIN' } });
  t.is(sample.status, 200, JSON.stringify(sample.body));
  t.like(sample.body, { points: 17, promotion: { name: 'Tie first' } });
  t.false(sample.body.warnings.some((w: string) => /Tie second/.test(w)), JSON.stringify(sample.body.warnings));
  const paymentId = `pay-${uuid().slice(0, 12)}`;
  square.addPayment(MERCHANT, { id: paymentId, locationId: 'L-MAIN', amount: 1000, customerId: 'cust-ann', createdAt: '2028-03-09T17:00:00Z' });
  const previewed = await call('POST', '/api/v1/client/reward-rules/preview', { token: client, body: { paymentId } });
  t.like(previewed.body, { points: 17, promotion: { name: 'Tie first' } });
  t.like(await pay('2028-03-09T17:00:00Z'), { points: 17, promotion: 'Tie first' });
});

test.serial('replay: a rebuild of the wallets gives the same balances, and reconciliation finds them matching', async (t) => {
  const before = await balance();
  t.true(before > 0);
  const started = await call('POST', '/api/v1/admin/projections/wallets/rebuild', { token: admin });
  t.is(started.status, 202);
  const done = await eventually(
    () => call('GET', `/api/v1/admin/jobs/${started.body.jobId}`, { token: admin }),
    (job) => job.body.state === 'completed',
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  t.is(done.body.state, 'completed');
  t.is(await balance(), before);
  const reconcile = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.is(reconcile.status, 200);
  t.deepEqual(reconcile.body.mismatches, []);
  t.true(reconcile.body.walletsChecked >= 1);
});
