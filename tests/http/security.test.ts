/**
 * Issue 14 over the real API, with signed webhooks and the real OAuth flow against the local Square server:
 * only a verified identity earns or claims points (item 1); ADMIN_EMAILS makes an admin only of a verified,
 * exact email, bound to the first `sub` that registers with it (item 2); erasure and webhook body retention
 * (item 7); refunds only from the merchant who took the payment (item 9).
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually, until } from '../support/eventually.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, refundWebhook, squarePayload, webhookSender } from '../support/square-webhooks.ts';
import { scenario } from '../support/tenants.ts';
import { createIdentityHasher } from '../../adapters/identity/hasher.ts';
import { codeSentTo } from '../support/sms.ts';

const WEBHOOK_KEY = 'test-webhook-signature-key';
const API_BASE_URL = 'https://api.tally.test';
const ADMIN_EMAIL = 'root@sec.test';

let square: SquareTestServer;
let service: TestService;
let call: ReturnType<typeof api>;
let send: ReturnType<typeof webhookSender>;
let world: ReturnType<typeof scenario>;
let admin: string;
/** The cafe's owner (M-SEC's workspace). */
let cafe: Awaited<ReturnType<ReturnType<typeof scenario>['merchant']>>;

test.before(async () => {
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-SEC', businessName: 'Sec Cafe', locations: [{ id: 'L-1', name: 'Main' }] });
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: `${ADMIN_EMAIL},kim@sec.test,legacy@sec.test`,
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    // The retention test counts what its own call empties: the service's run soon after start must not take it first.
  }, { retention: { firstAfterMs: 3_600_000, jitterMs: 0 } });
  call = api(service.url);
  send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  world = scenario(service, square);
  admin = await tokenFor('root-first', ADMIN_EMAIL);
  const registered = await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  if (registered.body.user?.role !== 'admin') throw new Error(`the first verified admin did not become admin: ${JSON.stringify(registered.body)}`);
  cafe = await world.merchant({ id: 'root-first', token: admin }, 'owner@sec-cafe.test');
  await world.connect(cafe, 'M-SEC');
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

async function consumer(email: string, claims: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const id = uuid();
  const token = await tokenFor(id, email, { claims });
  const response = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', ...extra } });
  if (response.body.position) await service.tally.runner.waitForPosition(response.body.position, 15_000);
  return { id, token, response };
}

let payments = 0;
/** A completed payment by this Square customer; resolves to the webhook's outcome once processed. */
async function pay(customerId: string, amount: number): Promise<string> {
  await world.settle();
  const eventId = `evt-${++payments}-${uuid().slice(0, 6)}`;
  await send(paymentWebhook({ eventId, merchantId: 'M-SEC', paymentId: `pay-${eventId}`, amount, customerId }));
  const row = await eventually(
    () => call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin }),
    (r) => r.status === 200 && r.body.processed,
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  return row.body.outcome as string;
}

/** Square tells Tally about a customer of M-SEC (`customer.updated`, these contacts as typed): stored and processed. */
async function customerUpdated(eventId: string, contacts: { id: string; email_address: string | null; phone_number: string | null }) {
  const customer = squarePayload('customer.updated.json');
  customer.event_id = eventId;
  customer.merchant_id = 'M-SEC';
  Object.assign(customer.data.object.customer, contacts);
  await send(customer);
  await until(() => call('GET', `/api/v1/admin/webhooks/${customer.event_id}`, { token: admin }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
  return customer;
}

async function balance(token: string): Promise<number> {
  const byTenant = await world.balances({ id: '', token });
  return Object.values(byTenant).reduce((a, b) => a + b, 0);
}

/**
 * The balance once it reaches `expected` (a credit follows its purchase through a reactor, a moment later), or
 * the last reading after 10 s for the assertion to report.
 */
const balanceReaching = (token: string, expected: number) => eventually(() => balance(token), (b) => b === expected, { timeoutMs: 10_000, intervalMs: 100 });

const lastCodeSentTo = (phone: string) => codeSentTo(service.logs, phone);

test.serial("someone else's phone, added without verifying it, earns nothing and claims nothing", async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-victim', email: null, phone: '+1 (646) 555-0100' });
  t.is(await pay('cust-victim', 1000), 'stored_anonymous', 'nobody has verified that phone yet');

  const attacker = await consumer('attacker@evil.test');
  const patched = await call('PATCH', '/api/v1/me', { token: attacker.token, body: { phone: '+1 (646) 555-0100' } });
  t.is(patched.status, 200);
  t.like(patched.body.user, { phone: '+16465550100', phoneVerified: false }, 'stored, and shown as unverified');
  t.is(await pay('cust-victim', 2000), 'stored_anonymous', 'an unverified phone matches no purchase');

  const victim = await consumer('victim@example.com', {}, { phone: '+16465550100' });
  t.is(victim.response.body.user.phoneVerified, false);
  t.is(await pay('cust-victim', 2600), 'stored_anonymous', 'the victim has not verified either');
  t.is(await balance(attacker.token), 0);

  // The victim proves the phone with Tally's one-time code: the held points become theirs, and later ones too.
  const sent = await call('POST', '/api/v1/me/phone/verification', { token: victim.token });
  t.is(sent.status, 202);
  t.regex(sent.body.expiresAt, /^\d{4}-/);
  const verified = await call('POST', '/api/v1/me/phone/verify', { token: victim.token, body: { code: lastCodeSentTo('+16465550100') } });
  t.is(verified.status, 200, JSON.stringify(verified.body));
  t.like(verified.body.user, { phone: '+16465550100', phoneVerified: true });
  t.is(await balanceReaching(victim.token, 10 + 20 + 26), 10 + 20 + 26, 'the three held payments are claimed by the verified owner');
  t.is(await pay('cust-victim', 500), 'credited');
  t.is(await balanceReaching(victim.token, 61), 61);
  t.is(await balance(attacker.token), 0, 'the attacker received nothing at any point');
});

test.serial('an email the identity provider did not verify matches no purchase and claims nothing', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-mail', email: 'mail-victim@example.com', phone: null });
  const attacker = await consumer('Mail-Victim@example.com', { email_verified: false });
  t.like(attacker.response.body.user, { emailVerified: false });
  t.is(await pay('cust-mail', 1500), 'stored_anonymous');
  t.is(await balance(attacker.token), 0);
  const owner = await consumer('mail-victim@example.com');
  t.like(owner.response.body.user, { emailVerified: true });
  t.is(await balanceReaching(owner.token, 15), 15, 'the verified owner claims what was held');
  t.is(await pay('cust-mail', 300), 'credited');
  t.is(await balanceReaching(owner.token, 18), 18);
  t.is(await balance(attacker.token), 0);
});

test.serial('registering again once the provider has confirmed the email records the verification, and points follow', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-late', email: 'late-confirm@example.com', phone: null });
  const id = uuid();
  const unconfirmed = await tokenFor(id, 'late-confirm@example.com', { claims: { email_verified: false } });
  t.like((await call('POST', '/api/v1/me/register', { token: unconfirmed, body: { role: 'consumer' } })).body.user, { emailVerified: false });
  t.is(await pay('cust-late', 400), 'stored_anonymous');
  const confirmed = await tokenFor(id, 'late-confirm@example.com');
  const again = await call('POST', '/api/v1/me/register', { token: confirmed, body: { role: 'consumer' } });
  t.is(again.status, 200);
  t.like(again.body.user, { id, emailVerified: true });
  t.is(await balanceReaching(confirmed, 4), 4, 'the held points are claimed once the email is verified');
  t.is(await pay('cust-late', 300), 'credited');
});

test.serial("a phone the token vouches for (phone_number + phone_number_verified) is verified at once", async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-tokphone', email: null, phone: '+12125550111' });
  const spoof = await consumer('spoof@example.com', { phone_number: '+12125550111', phone_number_verified: false }, { phone: '+12125550111' });
  t.like(spoof.response.body.user, { phoneVerified: false }, 'phone_number_verified false is not a verification');
  const other = await consumer('other@example.com', { phone_number: '+12125550999', phone_number_verified: true }, { phone: '+12125550111' });
  t.like(other.response.body.user, { phoneVerified: false }, "the token vouches for another phone than the one given");
  const owner = await consumer('owner-phone@example.com', { phone_number: '+1 212 555 0111', phone_number_verified: true }, { phone: '+12125550111' });
  t.like(owner.response.body.user, { phoneVerified: true });
  t.is(await pay('cust-tokphone', 700), 'credited');
  t.is(await balanceReaching(owner.token, 7), 7);
  t.is(await balance(spoof.token), 0);
});

test.serial('a later verifier takes a phone over only from then on, never retroactively', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-shared', email: null, phone: '+13125550142' });
  const first = await consumer('first@example.com', { phone_number: '+13125550142', phone_number_verified: true }, { phone: '+13125550142' });
  t.is(await pay('cust-shared', 1100), 'credited');
  const second = await consumer('second@example.com', {}, { phone: '+13125550142' });
  await call('POST', '/api/v1/me/phone/verification', { token: second.token });
  const verified = await call('POST', '/api/v1/me/phone/verify', { token: second.token, body: { code: lastCodeSentTo('+13125550142') } });
  t.is(verified.status, 200);
  t.is(await pay('cust-shared', 900), 'credited');
  t.is(await balanceReaching(first.token, 11), 11, 'the first owner keeps what was credited while the phone was theirs');
  t.is(await balanceReaching(second.token, 9), 9, 'the second owner gets only what came after');
});

test.serial('one-time codes: wrong codes are limited, expired codes refused, codes stored only hashed', async (t) => {
  const person = await consumer('otp@example.com', {}, { phone: '+14155550123' });
  const noPhone = await consumer('nophone@example.com');
  const refused = await call('POST', '/api/v1/me/phone/verification', { token: noPhone.token });
  t.is(refused.status, 409);
  t.regex(refused.body.error.message, /PATCH \/api\/v1\/me/);

  t.is((await call('POST', '/api/v1/me/phone/verification', { token: person.token })).status, 202);
  const code = lastCodeSentTo('+14155550123');
  const stored = await service.database.pool.query('SELECT * FROM phone_verifications');
  t.false(JSON.stringify(stored.rows).includes(code), 'the code is stored hashed');

  const badFormat = await call('POST', '/api/v1/me/phone/verify', { token: person.token, body: { code: '12ab' } });
  t.is(badFormat.status, 400);
  const wrong = code === '000000' ? '111111' : '000000';
  for (let attempt = 1; attempt <= 5; attempt++) {
    const answer = await call('POST', '/api/v1/me/phone/verify', { token: person.token, body: { code: wrong } });
    t.is(answer.status, 422, `attempt ${attempt}`);
  }
  const locked = await call('POST', '/api/v1/me/phone/verify', { token: person.token, body: { code } });
  t.is(locked.status, 422, 'after 5 wrong codes even the right one is refused');
  t.regex(locked.body.error.message, /request a new code/);

  await call('POST', '/api/v1/me/phone/verification', { token: person.token });
  const fresh = lastCodeSentTo('+14155550123');
  await service.database.pool.query(`UPDATE phone_verifications SET expires_at = now() - interval '1 second'`);
  const expired = await call('POST', '/api/v1/me/phone/verify', { token: person.token, body: { code: fresh } });
  t.is(expired.status, 422);
  t.regex(expired.body.error.message, /expired|request a new code/);

  await call('POST', '/api/v1/me/phone/verification', { token: person.token });
  const ok = await call('POST', '/api/v1/me/phone/verify', { token: person.token, body: { code: lastCodeSentTo('+14155550123') } });
  t.is(ok.status, 200);
  t.true(ok.body.user.phoneVerified);
  const me = await call('GET', '/api/v1/me', { token: person.token });
  t.like(me.body, { phone: '+14155550123', phoneVerified: true, emailVerified: true });
});

test.serial('ADMIN_EMAILS: an unverified, re-cased, padded or look-alike email under a new sub is an ordinary consumer', async (t) => {
  const attempts: [string, string, Record<string, unknown>][] = [
    ['root-unverified', ADMIN_EMAIL, { email_verified: false }],
    ['root-upper', 'ROOT@SEC.TEST', {}],
    ['root-padded', '  root@sec.test\t', {}],
    ['root-second', ADMIN_EMAIL, {}],
    ['kim-kelvin', '\u212Aim@sec.test', {}],
  ];
  for (const [sub, email, claims] of attempts) {
    const token = await tokenFor(sub, email, { claims });
    const registered = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } });
    t.is(registered.status, 201, sub);
    t.is(registered.body.user.role, 'consumer', `${sub} (${JSON.stringify(email)}) is not an admin`);
    t.is((await call('GET', '/api/v1/admin/users/search?q=sec', { token })).status, 403, sub);
  }
  t.true(service.logs.some((l) => l.includes('admin email already bound to another user')), 'the refusal is logged');
  // The look-alike did not take the email either: the real owner still becomes admin.
  const kim = await tokenFor('kim-real', 'kim@sec.test');
  t.is((await call('POST', '/api/v1/me/register', { token: kim, body: { role: 'consumer' } })).body.user.role, 'admin');
});

test.serial('an admin registered before admin emails were bound keeps the email: a new sub with it is a consumer', async (t) => {
  const hasher = createIdentityHasher(service.tally.config.IDENTITY_HASH_KEY);
  const registered = {
    type: 'UserRegistered',
    data: { userId: 'legacy-admin', role: 'admin', status: 'approved', emailHash: hasher.hashEmail('legacy@sec.test'), phoneHash: null, businessName: null, registeredAt: new Date().toISOString() },
  };
  await service.tally.store.append('user-legacy-admin', [{ id: uuid(), ...registered, metadata: { actor: 'system:test' } }], 'any');
  await world.settle();
  const newcomer = await tokenFor('legacy-newcomer', 'legacy@sec.test');
  const answer = await call('POST', '/api/v1/me/register', { token: newcomer, body: { role: 'consumer' } });
  t.like(answer.body.user, { role: 'consumer' });
});

test.serial('a suspended admin stays suspended when registering again under a new sub', async (t) => {
  const kim = await tokenFor('kim-real', 'kim@sec.test');
  const suspended = await call('PATCH', '/api/v1/admin/users/kim-real/suspend', { token: admin, body: { reason: 'left' } });
  t.is(suspended.status, 200);
  // The suspension is carried through the users read model: let it include the suspension first.
  t.true(await service.tally.runner.waitForPosition(suspended.body.position, 30_000));
  t.is((await call('GET', '/api/v1/admin/users/search?q=sec', { token: kim })).status, 403);
  const again = await tokenFor('kim-new-sub', 'kim@sec.test');
  const registered = await call('POST', '/api/v1/me/register', { token: again, body: { role: 'consumer' } });
  t.like(registered.body.user, { role: 'consumer', status: 'suspended' });
  t.is((await call('GET', '/api/v1/me/wallets', { token: again })).body.error?.code, 'USER_SUSPENDED');
});

test.serial('an erased person is matched by nothing any more, and the raw webhooks naming them are emptied', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-erased', email: 'erase-me@example.com', phone: '+1 (917) 555-0188' });
  const person = await consumer('erase-me@example.com', { phone_number: '+19175550188', phone_number_verified: true }, { phone: '+19175550188' });
  t.is(await pay('cust-erased', 1200), 'credited');
  t.is(await balanceReaching(person.token, 12), 12);
  // Square also tells us about the customer: that raw body holds the email and the phone as typed.
  const customer = await customerUpdated(`evt-customer-${uuid().slice(0, 6)}`, { id: 'cust-erased', email_address: 'Erase-Me@example.com', phone_number: '+1 (917) 555-0188' });
  const mentioning = async () =>
    (
      await service.database.pool.query<{ event_id: string }>(
        `SELECT id AS event_id FROM pos_webhook_events_raw WHERE raw_body ILIKE '%erase-me@example.com%' OR raw_body LIKE '%555-0188%'`,
      )
    ).rows.map((r) => r.event_id);
  t.deepEqual(await mentioning(), [customer.event_id]);

  const erased = await call('DELETE', `/api/v1/admin/users/${person.id}/personal-data`, { token: admin });
  t.is(erased.status, 200);
  t.is(await pay('cust-erased', 800), 'stored_anonymous', 'the erased email and phone no longer match a purchase');
  t.is(await balance(person.token), 12, 'nothing more credited to the erased person');
  // Held points are not claimed by the erased person either, whoever registers next with the email claims them.
  const heir = await consumer('erase-me@example.com');
  t.is(await balanceReaching(heir.token, 8), 8);

  t.deepEqual(await mentioning(), [], 'no stored webhook names the erased person any more');
  const emptied = await call('GET', `/api/v1/admin/webhooks/${customer.event_id}`, { token: admin });
  t.like(emptied.body, { outcome: 'ignored', processed: true }, 'the log row stays');
});

test.serial('erasure empties bodies naming a phone of any country as merchants type it (national form, trunk prefix)', async (t) => {
  const person = await consumer('uk-erase@example.com', { phone_number: '+447700900123', phone_number_verified: true }, { phone: '+447700900123' });
  const customer = await customerUpdated(`evt-customer-uk-${uuid().slice(0, 6)}`, { id: 'cust-uk', email_address: null, phone_number: '07700 900123' });
  t.is((await call('DELETE', `/api/v1/admin/users/${person.id}/personal-data`, { token: admin })).status, 200);
  const { rows } = await service.database.pool.query(`SELECT raw_body FROM pos_webhook_events_raw WHERE id = $1`, [customer.event_id]);
  t.is(rows[0]?.raw_body, '', 'the body naming 07700 900123 is emptied');
});

test.serial('erasure empties bodies naming a phone the person verified and earned through, then changed', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-moved', email: null, phone: '+1 917 555 0166' });
  const person = await consumer('moved-erase@example.com', { phone_number: '+19175550166', phone_number_verified: true }, { phone: '+19175550166' });
  t.is(await pay('cust-moved', 500), 'credited');
  const customer = await customerUpdated(`evt-customer-moved-${uuid().slice(0, 6)}`, { id: 'cust-moved', email_address: null, phone_number: '(917) 555-0166' });
  t.is((await call('PATCH', '/api/v1/me', { token: person.token, body: { phone: '+1 917 555 0167' } })).status, 200);
  t.is((await call('DELETE', `/api/v1/admin/users/${person.id}/personal-data`, { token: admin })).status, 200);
  const { rows } = await service.database.pool.query(`SELECT raw_body FROM pos_webhook_events_raw WHERE id = $1 OR raw_body LIKE '%555-0166%'`, [customer.event_id]);
  t.deepEqual(rows, [{ raw_body: '' }], 'no body names the phone they had before');
});

test.serial('erasure empties bodies naming an email the person earned through before their identity provider vouched for another', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-former-email', email: 'old-mail-erase@example.com', phone: null });
  const person = await consumer('old-mail-erase@example.com');
  t.is(await pay('cust-former-email', 500), 'credited');
  const customer = await customerUpdated(`evt-customer-former-email-${uuid().slice(0, 6)}`, { id: 'cust-former-email', email_address: 'Old-Mail-Erase@example.com', phone_number: null });
  const moved = await call('POST', '/api/v1/me/register', { token: await tokenFor(person.id, 'new-mail-erase@example.com'), body: { role: 'consumer' } });
  t.is(moved.body.user?.email, 'new-mail-erase@example.com');
  t.is((await call('DELETE', `/api/v1/admin/users/${person.id}/personal-data`, { token: admin })).status, 200);
  const { rows } = await service.database.pool.query(`SELECT raw_body FROM pos_webhook_events_raw WHERE id = $1 OR raw_body ILIKE '%old-mail-erase@%'`, [customer.event_id]);
  t.deepEqual(rows, [{ raw_body: '' }], 'no body names the email they had before');
});

test.serial('raw webhook bodies are kept for the retention period after processing, then emptied; the log row stays until its own retention', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-old', email: null, phone: null });
  t.is(await pay('cust-old', 100), 'stored_anonymous');
  const { rows } = await service.database.pool.query<{ event_id: string }>(`SELECT id AS event_id FROM pos_webhook_events_raw WHERE raw_body LIKE '%cust-old%'`);
  const eventId = rows[0]!.event_id;
  t.is(await service.tally.pruneWebhookBodies(), 0, 'nothing is old enough yet');
  await service.database.pool.query(`UPDATE pos_webhook_events_raw SET processed_at = now() - interval '31 days' WHERE id = $1`, [eventId]);
  t.true((await service.tally.pruneWebhookBodies()) >= 1);
  const after = await service.database.pool.query(`SELECT raw_body, headers, outcome, body_redacted_at FROM pos_webhook_events_raw WHERE id = $1`, [eventId]);
  t.like(after.rows[0], { raw_body: '', headers: {}, outcome: 'stored_anonymous' });
  t.truthy(after.rows[0].body_redacted_at);
  const row = await call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin });
  t.like(row.body, { eventId, outcome: 'stored_anonymous', processed: true });

  // The row itself goes WEBHOOK_ROW_RETENTION_DAYS (400) after it was received, once processed; one not processed stays.
  const pending = `evt-unprocessed-${uuid().slice(0, 6)}`;
  await service.database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, headers, received_at, next_attempt_at)
     VALUES ($1, 'M-SEC', 'payment.updated', '{}', '{}', now() - interval '500 days', now() + interval '1 day')`,
    [pending],
  );
  await service.database.pool.query(`UPDATE pos_webhook_events_raw SET received_at = now() - interval '401 days' WHERE id = $1`, [eventId]);
  await service.tally.pruneWebhookBodies();
  const kept = await service.database.pool.query<{ id: string }>(`SELECT id FROM pos_webhook_events_raw WHERE id = ANY($1) ORDER BY id`, [[eventId, pending]]);
  t.deepEqual(kept.rows, [{ id: pending }], 'the processed row past its retention deleted, the unprocessed one kept');
  t.is((await call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin })).status, 404);
  await service.database.pool.query(`DELETE FROM pos_webhook_events_raw WHERE id = $1`, [pending]);
});

test.serial("a signed refund from another merchant does not touch this tenant's payment, before or after it completes", async (t) => {
  square.addMerchant({ merchantId: 'M-OTHER', businessName: 'Other', locations: [{ id: 'L-O', name: 'Other' }] });
  const other = await world.merchant({ id: 'root-first', token: admin }, 'owner@other.test');
  await world.connect(other, 'M-OTHER');
  square.addCustomer('M-SEC', { id: 'cust-refund', email: 'refund-victim@example.com', phone: null });
  const victim = await consumer('refund-victim@example.com');
  const refund = async (eventId: string, paymentId: string) => {
    await send(refundWebhook({ eventId, merchantId: 'M-OTHER', refundId: `ref-${eventId}`, paymentId, amount: 1000 }));
    const row = await eventually(() => call('GET', `/api/v1/admin/webhooks/${eventId}`, { token: admin }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
    return row.body.outcome as string;
  };
  // Held first: the other merchant's refund arrives before the payment it names.
  t.is(await refund('evt-foreign-early', 'pay-evt-foreign-target'), 'refund_held');
  await send(paymentWebhook({ eventId: 'evt-foreign-target', merchantId: 'M-SEC', paymentId: 'pay-evt-foreign-target', amount: 1000, customerId: 'cust-refund' }));
  await until(() => call('GET', '/api/v1/admin/webhooks/evt-foreign-target', { token: admin }), (r) => r.body?.processed === true, { timeoutMs: 10_000, intervalMs: 50 });
  t.is(await balanceReaching(victim.token, 10), 10, 'the held foreign refund was not applied');
  t.is(await refund('evt-foreign-late', 'pay-evt-foreign-target'), 'ignored');
  t.is(await balance(victim.token), 10, 'nor one after the payment completed');
  const purchase = await service.tally.store.readStream('payment-pay-evt-foreign-target');
  t.false(purchase.some((e) => e.type === 'RefundApplied'));
});

/** Sum of the consumer's balances in the read model (works while suspended). */
async function dbBalance(consumerId: string): Promise<number> {
  await world.settle();
  const { rows } = await service.database.pool.query<{ b: string }>(`SELECT coalesce(sum(points_balance),0)::text AS b FROM wallets WHERE consumer_id = $1`, [consumerId]);
  return Number(rows[0]!.b);
}

test.serial('a suspended consumer earns nothing, not even through the claims reactor; reinstated, what was held meanwhile is theirs', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-susp', email: 'susp@example.com', phone: null });
  const person = await consumer('susp@example.com');
  t.is(await pay('cust-susp', 1000), 'credited');
  t.is(await dbBalance(person.id), 10);
  t.is((await call('PATCH', `/api/v1/admin/users/${person.id}/suspend`, { token: admin, body: { reason: 'fraud' } })).status, 200);
  await world.settle();
  t.is(await pay('cust-susp', 2500), 'stored_anonymous');
  t.is(await dbBalance(person.id), 10, 'the purchase stays held: the claims reactor does not credit a suspended consumer');
  t.is((await call('PATCH', `/api/v1/admin/users/${person.id}/reinstate`, { token: admin })).status, 200);
  const reinstated = await until(() => dbBalance(person.id), (balance) => balance === 35, { timeoutMs: 10_000, intervalMs: 50 });
  t.is(reinstated, 35, 'reinstated, the purchase held meanwhile is claimed');
});

test.serial('a code sent before a suspension verifies nothing after it, and claims nothing', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-phone-s', email: null, phone: '+1 646 555 0177' });
  t.is(await pay('cust-phone-s', 4200), 'stored_anonymous');
  const person = await consumer('phone-s@example.com', {}, { phone: '+16465550177' });
  t.is((await call('POST', '/api/v1/me/phone/verification', { token: person.token })).status, 202);
  t.is((await call('PATCH', `/api/v1/admin/users/${person.id}/suspend`, { token: admin, body: { reason: 'abuse' } })).status, 200);
  await world.settle();
  const verified = await call('POST', '/api/v1/me/phone/verify', { token: person.token, body: { code: codeSentTo(service.logs, '+16465550177') } });
  t.is(verified.status, 403);
  t.is(await dbBalance(person.id), 0);
});

test.serial('when the account that owns a verified email is erased, another account that verified it earlier takes it back by registering again, with what was held meanwhile', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-dup', email: 'dup@example.com', phone: null });
  const first = await consumer('dup@example.com');
  t.is(await pay('cust-dup', 1100), 'credited');
  const second = await consumer('dup@example.com'); // the same person signing in another way: the last to verify owns
  t.is(await pay('cust-dup', 900), 'credited');
  t.is(await dbBalance(first.id), 11);
  t.is(await dbBalance(second.id), 9);
  t.is((await call('DELETE', `/api/v1/admin/users/${second.id}/personal-data`, { token: admin })).status, 200);
  t.is(await pay('cust-dup', 700), 'stored_anonymous', 'nobody owns the email now: held');
  // Registering again (as a client does at sign-in) with the token still vouching for the email: the owner again.
  const again = await call('POST', '/api/v1/me/register', { token: first.token, body: { role: 'consumer' } });
  t.is(again.status, 200);
  t.truthy(again.body.position, 'the verification was recorded again');
  await until(() => dbBalance(first.id), (b) => b === 18, { timeoutMs: 10_000, intervalMs: 50 });
  t.is(await pay('cust-dup', 500), 'credited');
  t.is(await dbBalance(first.id), 23);
  // Registering once more while it owns the email records nothing.
  t.falsy((await call('POST', '/api/v1/me/register', { token: first.token, body: { role: 'consumer' } })).body.position);
  // Another account the provider vouches for with the same email registers again while the first holds it: it stays
  // the first's (the two took it from each other at every sign-in).
  const third = await consumer('dup@example.com');
  t.is(await pay('cust-dup', 300), 'credited');
  t.is(await dbBalance(third.id), 3, 'the last to verify owns it');
  t.falsy((await call('POST', '/api/v1/me/register', { token: first.token, body: { role: 'consumer' } })).body.position, 'the first signing in again takes nothing');
  t.is(await pay('cust-dup', 200), 'credited');
  t.is(await dbBalance(third.id), 5);
});

/** The wallets at the cafe its owner finds by `q`, once the read models include `position`. */
const cafeSearch = (q: string, position?: string) =>
  call('GET', `/api/v1/client/wallets?q=${encodeURIComponent(q)}`, { token: cafe.token, ...(position ? { headers: { 'x-min-position': position } } : {}) });

test.serial('a consumer whose identity provider now vouches for another email takes it on registering again: what was held for it is theirs, and the cafe finds them by it', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-jane-work', email: 'jane.work@example.com', phone: null });
  const jane = await consumer('jane@example.com');
  t.is(await pay('cust-jane-work', 1300), 'stored_anonymous', 'nobody has jane.work@example.com: held');
  const token = await tokenFor(jane.id, 'Jane.Work@example.com'); // verified, as tokenFor issues it
  const again = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } });
  t.is(again.status, 200);
  t.like(again.body.user, { id: jane.id, email: 'jane.work@example.com', emailVerified: true });
  t.truthy(again.body.position, 'the change was recorded');
  t.is(await balanceReaching(token, 13), 13, 'the held points are claimed into her wallet');
  const found = await until(() => cafeSearch('jane.work@example.com', again.body.position), (r) => r.body?.length === 1, { timeoutMs: 10_000, intervalMs: 50 });
  t.like(found.body[0], { consumerId: jane.id, balance: 13 });
  t.deepEqual((await cafeSearch('jane@example.com', again.body.position)).body, [], 'the former email finds nothing');
  t.is(await pay('cust-jane-work', 400), 'credited', 'her new email earns');
  t.is(await dbBalance(jane.id), 17);
  t.like((await call('GET', '/api/v1/me', { token })).body, { email: 'jane.work@example.com' });
});

test.serial('an email another account owns stays its: a token vouching for it on registering again changes nothing', async (t) => {
  square.addCustomer('M-SEC', { id: 'cust-taken', email: 'taken@example.com', phone: null });
  const owner = await consumer('taken@example.com');
  const jane = await consumer('jane-other@example.com');
  const again = await call('POST', '/api/v1/me/register', { token: await tokenFor(jane.id, 'taken@example.com'), body: { role: 'consumer' } });
  t.is(again.status, 200);
  t.like(again.body.user, { email: 'jane-other@example.com', emailVerified: true });
  t.falsy(again.body.position, 'nothing recorded');
  t.is(await pay('cust-taken', 600), 'credited');
  t.is(await dbBalance(owner.id), 6, "the owner's email still earns for the owner");
  t.is(await dbBalance(jane.id), 0);
  const found = await cafeSearch('taken@example.com');
  t.deepEqual(found.body.map((w: { consumerId: string }) => w.consumerId), [owner.id]);
});
