/**
 * Phone codes through the Twilio adapter, against a local server speaking Twilio's Messages API: a number Twilio
 * refuses is a 422 naming the phone, Twilio down is a 503, and neither uses up the person's codes of the hour.
 */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { v4 as uuid } from 'uuid';
import { MAX_CODES_PER_HOUR, MAX_CODES_PER_PHONE_PER_HOUR } from '../../domain/users/phone-verification.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { createIdentityHasher } from '../../adapters/identity/hasher.ts';

let service: TestService;
let twilio: http.Server;
let call: ReturnType<typeof api>;
/** What the stand-in answers next, and the codes it was asked to deliver. */
let answer = { status: 201, body: '{"sid":"SM1","status":"queued"}' };
const delivered: string[] = [];

test.before(async () => {
  twilio = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (answer.status === 201) delivered.push(/\b(\d{6})\b/.exec(new URLSearchParams(body).get('Body') ?? '')?.[1] ?? '');
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => twilio.listen(0, '127.0.0.1', resolve));
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    SMS_PROVIDER: 'twilio',
    TWILIO_ACCOUNT_SID: `AC${'0123456789abcdef'.repeat(2)}`,
    TWILIO_AUTH_TOKEN: 'twilio-secret-token',
    TWILIO_FROM: '+15005550006',
    TWILIO_BASE_URL: `http://127.0.0.1:${(twilio.address() as AddressInfo).port}`,
    ADMIN_EMAILS: 'root@sms.test',
  });
  call = api(service.url);
});
/** The suite's one administrator (ADMIN_EMAILS names its email; a second account with it would not be one). */
const ADMIN_ID = uuid();
async function adminToken(): Promise<string> {
  const admin = await tokenFor(ADMIN_ID, 'root@sms.test');
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  return admin;
}
test.after.always(async () => {
  await service?.stop();
  await new Promise<void>((resolve) => twilio?.close(() => resolve()));
});

test.serial('a number Twilio refuses is a 422 naming the phone; Twilio failing is a 503; neither uses up the codes of the hour, nor leaves a code to guess', async (t) => {
  const token = await tokenFor(uuid(), 'sms@example.com');
  t.is((await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone: '+12125550100' } })).status, 201);

  answer = { status: 400, body: '{"code":21614,"message":"To number is not a valid mobile number"}' };
  const refused = await call('POST', '/api/v1/me/phone/verification', { token });
  t.is(refused.status, 422);
  t.like(refused.body.error, { code: 'UNPROCESSABLE', details: { field: 'phone' } });
  t.regex(refused.body.error.message, /PATCH \/api\/v1\/me/);
  t.notRegex(JSON.stringify(refused.body), /21614|Twilio/, 'the provider answer is for the log');
  t.true(service.logs.some((l) => l.includes('21614')), 'the operator sees why');

  answer = { status: 503, body: '{"message":"Service Unavailable"}' };
  for (let i = 0; i < MAX_CODES_PER_HOUR + 1; i++) {
    const down = await call('POST', '/api/v1/me/phone/verification', { token });
    t.is(down.status, 503);
    t.is(down.headers.get('retry-after'), '5');
    t.like(down.body.error, { code: 'UNAVAILABLE' });
  }
  // No code was delivered: none is pending to guess at.
  const guess = await call('POST', '/api/v1/me/phone/verify', { token, body: { code: '123456' } });
  t.is(guess.status, 422);
  t.regex(guess.body.error.message, /No code is pending/);

  answer = { status: 201, body: '{"sid":"SM2","status":"queued"}' };
  const sent = await call('POST', '/api/v1/me/phone/verification', { token });
  t.is(sent.status, 202, 'the failed sends did not count against the hourly limit');
  const verified = await call('POST', '/api/v1/me/phone/verify', { token, body: { code: delivered.at(-1) } });
  t.is(verified.status, 200);
  t.true(verified.body.user.phoneVerified);
});

test.serial('one phone number gets at most its codes of the hour, however many accounts name it; a suspended account sends none', async (t) => {
  answer = { status: 201, body: '{"sid":"SM3","status":"queued"}' };
  const phone = '+12125550177';
  const accounts = await Promise.all(
    Array.from({ length: MAX_CODES_PER_PHONE_PER_HOUR + 1 }, async (_, i) => {
      const token = await tokenFor(uuid(), `flood-${i}@example.com`);
      t.is((await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone } })).status, 201);
      return token;
    }),
  );
  const before = delivered.length;
  for (const token of accounts.slice(0, MAX_CODES_PER_PHONE_PER_HOUR)) t.is((await call('POST', '/api/v1/me/phone/verification', { token })).status, 202);
  const flooded = await call('POST', '/api/v1/me/phone/verification', { token: accounts.at(-1) });
  t.is(flooded.status, 429);
  t.regex(flooded.body.error.message, /one phone number/);
  t.is(delivered.length - before, MAX_CODES_PER_PHONE_PER_HOUR, 'the phone received no more than its limit');

  const admin = await adminToken();
  const suspendedId = uuid();
  const suspended = await tokenFor(suspendedId, 'suspended@example.com');
  await call('POST', '/api/v1/me/register', { token: suspended, body: { role: 'consumer', phone: '+12125550188' } });
  t.is((await call('PATCH', `/api/v1/admin/users/${suspendedId}/suspend`, { token: admin, body: { reason: 'abuse' } })).status, 200);
  const refused = await call('POST', '/api/v1/me/phone/verification', { token: suspended });
  t.is(refused.status, 403);
  t.is(refused.body.error.code, 'USER_SUSPENDED');
  t.is(delivered.length - before, MAX_CODES_PER_PHONE_PER_HOUR);
});

test.serial('a code goes only to the number the account will verify: a phone change half done (the number stored, its event not yet) sends nothing', async (t) => {
  const userId = uuid();
  const token = await tokenFor(userId, 'changing@example.com');
  t.is((await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone: '+12125550166' } })).status, 201);
  // What `PATCH /me {"phone"}` leaves between its two writes: the new number stored, the stream still naming the old.
  await service.database.pool.query('UPDATE personal_data SET phone = $2 WHERE user_id = $1', [userId, '+12125550167']);
  const before = delivered.length;
  const refused = await call('POST', '/api/v1/me/phone/verification', { token });
  t.is(refused.status, 409);
  t.regex(refused.body.error.message, /being changed/);
  t.is(delivered.length, before, 'no code was texted to a number the stream does not name');
  // Once the change is through (or undone), codes flow again, and the one sent verifies.
  t.is((await call('PATCH', '/api/v1/me', { token, body: { phone: '+12125550167' } })).status, 200);
  t.is((await call('POST', '/api/v1/me/phone/verification', { token })).status, 202);
  const verified = await call('POST', '/api/v1/me/phone/verify', { token, body: { code: delivered.at(-1) } });
  t.is(verified.status, 200);
  t.true(verified.body.user.phoneVerified);
});

test.serial('a correct code whose verification could not be recorded is not used up: the same code verifies once the store takes it', async (t) => {
  const userId = uuid();
  const token = await tokenFor(userId, 'unlucky@example.com');
  t.is((await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone: '+12125550188' } })).status, 201);
  const sent = await call('POST', '/api/v1/me/phone/verification', { token });
  t.is(sent.status, 202, JSON.stringify(sent.body));
  const code = delivered.at(-1);
  // The event store refuses the verification's event (as a failing or unreachable database would).
  const db = service.database.pool;
  await db.query(`CREATE FUNCTION refuse_phone_verified() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.event_type = 'UserPhoneVerified' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
  await db.query('CREATE TRIGGER refuse_phone_verified BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_phone_verified()');
  try {
    const failed = await call('POST', '/api/v1/me/phone/verify', { token, body: { code } });
    t.true(failed.status >= 500, `${failed.status} ${JSON.stringify(failed.body)}`);
  } finally {
    await db.query('DROP TRIGGER refuse_phone_verified ON events');
    await db.query('DROP FUNCTION refuse_phone_verified()');
  }
  const retried = await call('POST', '/api/v1/me/phone/verify', { token, body: { code } });
  t.is(retried.status, 200, JSON.stringify(retried.body));
  t.true(retried.body.user.phoneVerified);
  // Its answer lost, the client sends the same code again: answered as the first (it was 422 "no code is pending").
  const again = await call('POST', '/api/v1/me/phone/verify', { token, body: { code } });
  t.is(again.status, 200, JSON.stringify(again.body));
  t.true(again.body.user.phoneVerified);
});

test.serial('a suspended account cannot verify a code sent before its suspension', async (t) => {
  const admin = await adminToken();
  const userId = uuid();
  const token = await tokenFor(userId, 'later-suspended@example.com');
  await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', phone: '+12125550155' } });
  t.is((await call('POST', '/api/v1/me/phone/verification', { token })).status, 202);
  t.is((await call('PATCH', `/api/v1/admin/users/${userId}/suspend`, { token: admin, body: { reason: 'abuse' } })).status, 200);
  const refused = await call('POST', '/api/v1/me/phone/verify', { token, body: { code: delivered.at(-1) } });
  t.is(refused.status, 403);
  t.is(refused.body.error.code, 'USER_SUSPENDED');
  const me = await call('GET', '/api/v1/me', { token });
  t.false(me.body.user?.phoneVerified ?? me.body.phoneVerified);
});

test.serial('a phone verified by an account, then by another that changed its phone since, comes back to the first by a new code', async (t) => {
  const phone = '+12125550144';
  const [firstId, secondId] = [uuid(), uuid()];
  const first = await tokenFor(firstId, 'first-phone@example.com');
  const second = await tokenFor(secondId, 'second-phone@example.com');
  const verifyWithCode = async (token: string) => {
    t.is((await call('POST', '/api/v1/me/phone/verification', { token })).status, 202);
    const verified = await call('POST', '/api/v1/me/phone/verify', { token, body: { code: delivered.at(-1) } });
    t.is(verified.status, 200);
    return verified.body.position;
  };
  const owner = async () =>
    (await service.database.pool.query<{ consumer_id: string }>(`SELECT consumer_id FROM identity_owners WHERE identity_hash = $1`, [createIdentityHasher(service.tally.config.IDENTITY_HASH_KEY).hashPhone(phone)])).rows[0]
      ?.consumer_id;
  await call('POST', '/api/v1/me/register', { token: first, body: { role: 'consumer', phone } });
  await service.tally.runner.waitForPosition(await verifyWithCode(first), 10_000);
  await call('POST', '/api/v1/me/register', { token: second, body: { role: 'consumer', phone } });
  await service.tally.runner.waitForPosition(await verifyWithCode(second), 10_000);
  t.is(await owner(), secondId, 'the last to verify owns it');
  const changed = await call('PATCH', '/api/v1/me', { token: second, body: { phone: '+12125550145' } });
  await service.tally.runner.waitForPosition(changed.body.position, 10_000);
  t.is(await owner(), undefined);
  await service.tally.runner.waitForPosition(await verifyWithCode(first), 10_000);
  t.is(await owner(), firstId);
  const again = await call('POST', '/api/v1/me/phone/verification', { token: first });
  t.is(again.status, 409, 'its owner again: nothing to verify');
});
