/**
 * Callers are read from memory (projections/caller-view.ts), so a suspension must still bind at once: on the
 * instance that suspended, no request sent after the suspension's answer is served.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';

let service: TestService;
let call: ReturnType<typeof api>;
const ADMIN_EMAIL = 'ops@tally.test';

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL, LOG_LEVEL: 'warn' });
  call = api(service.url);
});
test.after.always(async () => {
  await service?.stop();
});

async function registered(email: string) {
  const id = uuid();
  const token = await tokenFor(id, email);
  const response = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } });
  if (response.status !== 201 && response.status !== 200) throw new Error(`register: ${response.status}`);
  return { id, token };
}

test('a consumer suspended under read load: no request sent after the suspension was answered is served', async (t) => {
  const admin = await registered(ADMIN_EMAIL);
  const consumer = await registered(`c-${uuid().slice(0, 8)}@example.test`);
  const requests: { sentAt: number; status: number }[] = [];
  let suspendedAt = Number.POSITIVE_INFINITY;
  let stop = false;
  const reader = async () => {
    while (!stop) {
      const sentAt = performance.now();
      const { status } = await call('GET', '/api/v1/me/wallets', { token: consumer.token });
      requests.push({ sentAt, status });
    }
  };
  const readers = Array.from({ length: 8 }, reader);
  // Served from memory while the load runs: the caller is read once, then kept current from the feed.
  while (requests.filter((r) => r.status === 200).length < 100) await new Promise((resolve) => setImmediate(resolve));
  const suspended = await call('PATCH', `/api/v1/admin/users/${consumer.id}/suspend`, { token: admin.token, body: { reason: 'test' } });
  suspendedAt = performance.now();
  t.is(suspended.status, 200);
  while (requests.filter((r) => r.sentAt > suspendedAt).length < 100) await new Promise((resolve) => setImmediate(resolve));
  stop = true;
  await Promise.all(readers);

  const after = requests.filter((r) => r.sentAt > suspendedAt);
  t.deepEqual(
    after.filter((r) => r.status === 200).length,
    0,
    `${after.length} requests sent after the suspension was answered, ${requests.length - after.length} before`,
  );
  t.true(after.every((r) => r.status === 403));
  t.true(requests.some((r) => r.sentAt < suspendedAt && r.status === 200), 'served before the suspension');
});
