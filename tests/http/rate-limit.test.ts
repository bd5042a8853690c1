/** Authentication failures are throttled per source: bad tokens, wrong cron secrets and bad webhook signatures. */
import test from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { api } from '../support/http.ts';

let service: TestService;
let call: ReturnType<typeof api>;

test.before(async () => {
  service = await startTestService({ AUTH_FAILURE_LIMIT_PER_MINUTE: '5', SQUARE_WEBHOOK_SIGNATURE_KEY: 'k' });
  call = api(service.url);
});
test.after.always(async () => {
  await service?.stop();
});

test('after the limit, a source gets 429 with Retry-After on every authenticated route, even with a right secret', async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await call('GET', '/api/v1/me', { token: 'not-a-token' })).status);
  statuses.push((await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': 'guess' } })).status);
  statuses.push((await call('POST', '/api/v1/webhooks/square', { body: { event_id: 'x' }, headers: { 'x-square-hmacsha256-signature': 'bad' } })).status);
  t.deepEqual(statuses, [401, 401, 401, 401, 401]);
  const limited = await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': service.tally.config.CRON_SECRET } });
  t.is(limited.status, 429);
  t.is(limited.body.error.code, 'RATE_LIMITED');
  t.true(Number(limited.headers.get('retry-after')) >= 1);
  t.is((await call('POST', '/api/v1/webhooks/square', { body: {} })).status, 429);
  t.is((await fetch(`${service.url}/healthz`)).status, 200, 'public routes are not affected');
});
