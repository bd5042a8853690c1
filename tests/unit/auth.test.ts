import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { createTokenVerifier } from '../../http/auth.ts';

const secret = 'a-secret-of-at-least-thirty-two-characters!!';
const key = new TextEncoder().encode(secret);
const verify = createTokenVerifier({ secret, issuer: 'https://idp.test', audience: 'authenticated' });

const hs = (claims: Record<string, unknown> = {}, build: (jwt: SignJWT) => SignJWT = (j) => j) =>
  build(
    new SignJWT({ email: 'a@b.test', ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('user-1')
      .setIssuer('https://idp.test')
      .setAudience('authenticated')
      .setIssuedAt()
      .setExpirationTime('5m'),
  ).sign(key);

const rejects = async (t: import('ava').ExecutionContext, token: string, reason: RegExp) => {
  const error = await t.throwsAsync(verify(token));
  t.is((error as { code?: string }).code, 'UNAUTHENTICATED');
  t.regex(error!.message, reason);
};

test('a valid HS256 token gives the subject and email', async (t) => {
  t.deepEqual(await verify(await hs()), { userId: 'user-1', email: 'a@b.test', emailVerified: false, phone: undefined, phoneVerified: false, verifiedBy: 'token' });
});

test('the email and phone count as verified only where the token says so, at the configured claim paths', async (t) => {
  t.like(await verify(await hs({ email_verified: true, phone_number: '+12125550100', phone_number_verified: true })), { emailVerified: true, phone: '+12125550100', phoneVerified: true });
  t.like(await verify(await hs({ email_verified: 'false', phone_number: '+12125550100' })), { emailVerified: false, phoneVerified: false });
  // Supabase: `phone` is the claim, and a Custom Access Token Hook may add the flags under user_metadata.
  const supabase = createTokenVerifier({
    secret,
    identity: { emailVerified: ['user_metadata.email_verified'], phone: ['phone'], phoneVerified: ['user_metadata.phone_verified'], providerConfirmsContacts: false },
  });
  t.like(await supabase(await hs({ email_verified: true })), { emailVerified: false }, 'the top-level flag is not where this provider puts it');
  t.like(await supabase(await hs({ phone: '+12125550100', user_metadata: { email_verified: true, phone_verified: true } })), { emailVerified: true, phone: '+12125550100', phoneVerified: true });
  // Supabase with confirmations on: the provider only issues sessions for confirmed contacts.
  const confirming = createTokenVerifier({ secret, identity: { emailVerified: [], phone: ['phone'], phoneVerified: [], providerConfirmsContacts: true } });
  t.like(await confirming(await hs({ phone: '+12125550100' })), { emailVerified: true, phoneVerified: true, verifiedBy: 'identity_provider' });
  t.like(await confirming(await hs({ email: undefined, phone: '' })), { email: undefined, emailVerified: false, phoneVerified: false }, 'no contact, nothing verified');
});

test('alg none is refused', async (t) => {
  const unsigned = new UnsecuredJWT({ email: 'a@b.test' }).setSubject('user-1').setIssuer('https://idp.test').setAudience('authenticated').setExpirationTime('5m').encode();
  await rejects(t, unsigned, /algorithm|malformed/);
});

test('expired, not-yet-valid, wrong issuer, wrong audience and a tampered payload are each refused with the reason', async (t) => {
  await rejects(t, await hs({}, (j) => j.setExpirationTime(Math.floor(Date.now() / 1000) - 60)), /expired/);
  await rejects(t, await hs({}, (j) => j.setNotBefore('10m')), /not valid yet/);
  await rejects(t, await hs({}, (j) => j.setIssuer('https://evil.test')), /issuer/);
  await rejects(t, await hs({}, (j) => j.setAudience('other')), /audience/);
  const [header, , signature] = (await hs()).split('.');
  const forged = Buffer.from(JSON.stringify({ sub: 'admin', email: 'a@b.test', iss: 'https://idp.test', aud: 'authenticated', exp: 9999999999 })).toString('base64url');
  await rejects(t, `${header}.${forged}.${signature}`, /signature/);
  await rejects(t, await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').sign(new TextEncoder().encode('another-secret-another-secret-another')), /signature/);
  await rejects(t, 'not.a.jwt', /malformed|cannot be verified/);
});

test('an RS256 token is refused when the service expects HS256 (no algorithm confusion)', async (t) => {
  const { privateKey } = await generateKeyPair('RS256');
  const rs = await new SignJWT({ email: 'a@b.test' })
    .setProtectedHeader({ alg: 'RS256' })
    .setSubject('user-1')
    .setIssuer('https://idp.test')
    .setAudience('authenticated')
    .setExpirationTime('5m')
    .sign(privateKey);
  await rejects(t, rs, /algorithm/);
});

test('a token without a subject is refused', async (t) => {
  const noSub = await new SignJWT({ email: 'a@b.test' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://idp.test').setAudience('authenticated').setExpirationTime('5m').sign(key);
  await rejects(t, noSub, /subject/);
});

test('asymmetric keys from a JWKS URL, served over a real socket; HS256 tokens are then refused', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const jwksVerify = createTokenVerifier({ jwksUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json` });
  const es = await new SignJWT({ email: 'c@d.test' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('user-9').setExpirationTime('5m').sign(privateKey);
  t.like(await jwksVerify(es), { userId: 'user-9', email: 'c@d.test' });
  const hsToken = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('user-9').setExpirationTime('5m').sign(key);
  const error = await t.throwsAsync(jwksVerify(hsToken));
  t.regex(error!.message, /algorithm/);
});

test('the key server failing (an error status, no key set, nothing listening) is a 503 UNAVAILABLE, never a 401; a kid it lacks is still a 401', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let answer: { status: number; body: string } = { status: 500, body: 'oops' };
  const server = http.createServer((_req, res) => {
    res.statusCode = answer.status;
    res.end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('user-9').setExpirationTime('5m').sign(privateKey);
  const failures: unknown[] = [];
  const verifier = () => createTokenVerifier({ jwksUrl: url, onKeyServerFailure: (error) => failures.push(error) });
  const unavailable = async (why: string) => {
    const error = await t.throwsAsync(verifier()(token));
    t.is((error as { code?: string }).code, 'UNAVAILABLE', why);
    t.regex(error!.message, /AUTH_JWKS_URL/);
  };
  await unavailable('500');
  answer = { status: 200, body: 'not json' };
  await unavailable('not JSON');
  answer = { status: 200, body: JSON.stringify({ nothing: [] }) };
  await unavailable('not a key set');
  answer = { status: 200, body: JSON.stringify({ keys: [{ ...jwk, kid: 'other' }] }) };
  const noKey = await t.throwsAsync(verifier()(token));
  t.is((noKey as { code?: string }).code, 'UNAUTHENTICATED', 'the token names a key the set does not have');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await unavailable('nothing listening');
  t.is(failures.length, 4, 'each key-server failure is reported for the log');
});

test('a token accepted once stays accepted only until its expiry; a remembered token vouches for no other payload or signature', async (t) => {
  let clock = Date.now();
  const fresh = createTokenVerifier({ secret, issuer: 'https://idp.test', audience: 'authenticated', now: () => new Date(clock) });
  const token = await hs();
  t.like(await fresh(token), { userId: 'user-1', email: 'a@b.test' });
  t.like(await fresh(token), { userId: 'user-1', email: 'a@b.test' }, 'remembered');

  // A token about to expire: accepted now, refused once its exp passes, remembered or not.
  const shortLived = await hs({}, (j) => j.setExpirationTime(Math.floor(clock / 1000) + 2));
  t.is((await fresh(shortLived)).userId, 'user-1');
  t.is((await fresh(shortLived)).userId, 'user-1', 'remembered');
  clock += 3000; // past its exp
  const expired = await t.throwsAsync(fresh(shortLived));
  t.regex(expired!.message, /expired/);

  // A remembered token's signature does not vouch for another payload, nor a changed signature for its payload.
  const [header, payload, signature] = token.split('.');
  const forged = Buffer.from(JSON.stringify({ sub: 'admin', email: 'a@b.test', iss: 'https://idp.test', aud: 'authenticated', exp: 9999999999 })).toString('base64url');
  t.regex((await t.throwsAsync(fresh(`${header}.${forged}.${signature}`)))!.message, /signature/);
  const flipped = `${signature!.slice(0, -2)}${signature!.endsWith('AA') ? 'BB' : 'AA'}`;
  t.regex((await t.throwsAsync(fresh(`${header}.${payload}.${flipped}`)))!.message, /signature|malformed/);
  // Refused tokens are never remembered: a future nbf stays refused.
  const early = await hs({}, (j) => j.setNotBefore('10m'));
  for (let i = 0; i < 2; i++) t.regex((await t.throwsAsync(fresh(early)))!.message, /not valid yet/);
});

test('a token without exp is refused: it would be valid forever', async (t) => {
  const forever = await new SignJWT({ email: 'a@b.test' }).setProtectedHeader({ alg: 'HS256' }).setSubject('user-1').setIssuer('https://idp.test').setAudience('authenticated').sign(key);
  await rejects(t, forever, /no expiry/);
});
