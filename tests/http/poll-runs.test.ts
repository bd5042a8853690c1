/**
 * How poll runs share the work, over HTTP on two instances of one database:
 * - one run at a time across instances: a request while a run goes on is answered 409 and polls nothing, so Square is
 *   asked once per merchant; the `poll completed` log line carries totals, not every connection.
 */
import test from 'ava';
import { api, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { startSecondInstance, startTestService, type SecondInstance, type TestService } from '../support/service.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { scenario, type Actor, type Merchant } from '../support/tenants.ts';

const CRON_SECRET = 'cron-secret-for-poll-runs-012345';
const MERCHANTS = ['M-ONE', 'M-TWO', 'M-THREE'] as const;
const POLL_PATH = '/api/v1/internal/cron/square-poll-payments';

let square: SquareTestServer;
let service: TestService;
let second: SecondInstance;
let actors: ReturnType<typeof scenario>;
let admin: Actor;
const merchants = new Map<string, Merchant>();

test.before(async () => {
  square = await startSquareServer();
  // Both instances hold the same keys: either can read the tokens and poll.
  const env = {
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@runs.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    CRON_SECRET,
    ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
    IDENTITY_HASH_KEY: Buffer.alloc(32, 3).toString('base64url'),
  };
  service = await startTestService(env);
  second = await startSecondInstance(service, env);
  actors = scenario(service, square);
  admin = await actors.register('consumer', 'ops@runs.test');
  for (const id of MERCHANTS) {
    square.addMerchant({ merchantId: id, businessName: id, locations: [{ id: 'L-MAIN', name: 'Main' }] });
    const owner = await actors.merchant(admin, `owner@${id.toLowerCase()}.test`);
    await actors.connect(owner, id);
    merchants.set(id, owner);
    square.addPayment(id, { id: `${id}-first`, locationId: 'L-MAIN', amount: 1000, status: 'COMPLETED', createdAt: new Date().toISOString() });
  }
  await actors.settle();
});
test.after.always(async () => {
  await second?.stop();
  await service?.stop();
  await square?.stop();
});

const pollOn = (url: string) => api(url)('POST', POLL_PATH, { headers: { 'x-cron-secret': CRON_SECRET } });
const locationCalls = () => square.requests.filter((r) => r.path === '/v2/locations');

test.serial('two poll requests at once, on two instances: one polls, the other is refused and Square is asked once per merchant', async (t) => {
  const callsBefore = locationCalls().length;
  // The first merchant's locations answer slowly: the first run is still under way when the second request comes.
  square.failNext('/v2/locations', { delayMs: 1500 }, { merchantId: 'M-ONE' });
  const first = pollOn(service.url);
  await eventually(async () => locationCalls().length, (n) => n > callsBefore, { timeoutMs: 10_000, intervalMs: 20 });
  const refused = await pollOn(second.url);
  t.is(refused.status, 409, JSON.stringify(refused.body));
  t.is(refused.body.error.code, 'CONFLICT');
  t.regex(refused.body.error.message, /already under way/);
  const polled = await first;
  t.is(polled.status, 200);
  t.deepEqual(polled.body.connections.map((c: { status: string }) => c.status), MERCHANTS.map(() => 'ok'), JSON.stringify(polled.body));
  const calls = locationCalls().slice(callsBefore);
  t.is(calls.length, MERCHANTS.length, 'one run: Square asked once per merchant');
  t.is(new Set(calls.map((c) => c.authorization)).size, MERCHANTS.length);
  // Once the run is over, the next tick polls, on either instance.
  const next = await pollOn(second.url);
  t.deepEqual(next.body.connections?.map((c: { status: string }) => c.status), MERCHANTS.map(() => 'ok'), JSON.stringify(next.body));
  const completed = service.logs.filter((l) => l.includes('"poll completed"')).map((l) => JSON.parse(l));
  t.like(completed.at(-1), { connections: MERCHANTS.length, ok: MERCHANTS.length, failed: 0, failures: [] }, 'the log line carries totals, not each connection');
});
