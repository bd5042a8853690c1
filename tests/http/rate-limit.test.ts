/**
 * Authentication failures are throttled per source and per kind (bearer tokens, cron secret, webhook
 * signatures), and only failures are ever refused: a valid credential passes whatever its address did. Behind
 * proxies the source is the rightmost address no trusted proxy vouches for (TRUST_PROXY: a count or CIDRs).
 */
import test from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { squareSignature } from '../support/square-webhooks.ts';
import { paymentWebhook } from '../support/square-webhooks.ts';

const WEBHOOK_KEY = 'rate-limit-webhook-key';
const API_BASE_URL = 'https://api.tally.test';

async function serviceWith(env: Record<string, string>): Promise<TestService> {
  return startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_FAILURE_LIMIT_PER_MINUTE: '5', SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY, API_BASE_URL, ...env });
}

function signedWebhook(eventId: string) {
  const body = JSON.stringify(paymentWebhook({ eventId, merchantId: 'M-NOBODY', paymentId: `pay-${eventId}`, amount: 100 }));
  return { body, headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': squareSignature(WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`, body) } };
}

test('failures past the limit get 429 with Retry-After, but valid credentials from that address always pass', async (t) => {
  const service = await serviceWith({ TRUST_PROXY: 'false' });
  t.teardown(() => service.stop());
  const call = api(service.url);
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await call('GET', '/api/v1/me', { token: `not-a-token-${i}` })).status);
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
  const limited = await call('GET', '/api/v1/me', { token: 'still-not-a-token' });
  t.is(limited.body.error.code, 'RATE_LIMITED');
  t.true(Number(limited.headers.get('retry-after')) >= 1);

  const valid = await tokenFor('rate-limit-user', 'someone@example.com');
  t.is((await call('POST', '/api/v1/me/register', { token: valid, body: { role: 'consumer' } })).status, 201, 'a valid token is never refused');
  t.is((await call('GET', '/api/v1/me', { token: valid })).status, 200);
  const cron = await call('POST', '/api/v1/internal/cron/square-refresh-tokens', { headers: { 'x-cron-secret': service.tally.config.CRON_SECRET } });
  t.not(cron.status, 429, 'the right cron secret passes');
  t.not(cron.status, 401);
  // Square's webhooks share no bucket with bearer tokens: bad tokens from their address do not hold them up.
  const webhook = signedWebhook('evt-after-bad-tokens');
  const delivered = await fetch(`${service.url}/api/v1/webhooks/square`, { method: 'POST', ...webhook });
  t.is(delivered.status, 200);
  const unsigned = await call('POST', '/api/v1/webhooks/square', { body: { event_id: 'x' }, headers: { 'x-square-hmacsha256-signature': 'bad' } });
  t.is(unsigned.status, 401, 'a bad signature counts in its own bucket');
  t.is((await fetch(`${service.url}/healthz`)).status, 200, 'public routes are not affected');
});

test('behind one trusted proxy, the client is the rightmost X-Forwarded-For entry: rotating the leftmost one evades nothing', async (t) => {
  const service = await serviceWith({ TRUST_PROXY: '1' });
  t.teardown(() => service.stop());
  const call = api(service.url);
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) {
    const headers = { 'x-forwarded-for': `198.51.100.${i}, 203.0.113.7` };
    statuses.push((await call('GET', '/api/v1/me', { token: 'bad', headers })).status);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429], 'the spoofed leftmost entries change nothing');
  // A victim at another address cannot be locked out by naming it in the leftmost entry.
  const victim = await call('GET', '/api/v1/me', { token: 'bad', headers: { 'x-forwarded-for': '203.0.113.7, 192.0.2.44' } });
  t.is(victim.status, 401);
});

test('TRUST_PROXY as CIDRs: trusted hops are skipped from the right; `true` still means one proxy', async (t) => {
  const service = await serviceWith({ TRUST_PROXY: '127.0.0.0/8, 10.0.0.0/8' });
  t.teardown(() => service.stop());
  const call = api(service.url);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const headers = { 'x-forwarded-for': `${i}.${i}.${i}.${i}, 192.0.2.10, 10.1.2.3` };
    statuses.push((await call('GET', '/api/v1/me', { token: 'bad', headers })).status);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  t.is((await call('GET', '/api/v1/me', { token: 'bad', headers: { 'x-forwarded-for': '192.0.2.11, 10.9.9.9' } })).status, 401, 'another client');

  const legacy = await serviceWith({ TRUST_PROXY: 'true' });
  t.teardown(() => legacy.stop());
  const legacyCall = api(legacy.url);
  const legacyStatuses: number[] = [];
  for (let i = 0; i < 6; i++) legacyStatuses.push((await legacyCall('GET', '/api/v1/me', { token: 'bad', headers: { 'x-forwarded-for': `198.51.100.${i}, 192.0.2.20` } })).status);
  t.deepEqual(legacyStatuses, [401, 401, 401, 401, 401, 429]);
});
