/**
 * What a poll run writes and how runs share the work, over HTTP on two instances of one database:
 * - a quiet run (nothing new for a connection: cursor unchanged, nothing processed, no error) appends no event for it,
 *   while "last polled" (the connection view, the admin list, the debug endpoint) still says when it was polled;
 * - one run at a time across instances: a request while a run goes on is answered 409 and polls nothing, so Square is
 *   asked once per merchant; the `poll completed` log line carries totals, not every connection.
 */
import test from 'ava';
import { api, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { startSecondInstance, startTestService, type SecondInstance, type TestService } from '../support/service.ts';
import { heldAnswer, startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
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
const storedEvents = async () => Number((await service.database.pool.query('SELECT count(*) AS n FROM events')).rows[0].n);
const auditRows = async () => Number((await service.database.pool.query('SELECT count(*) AS n FROM audit_events')).rows[0].n);
const locationCalls = () => square.requests.filter((r) => r.path === '/v2/locations');

test.serial('two poll requests at once, on two instances: one polls, the other is refused and Square is asked once per merchant', async (t) => {
  const callsBefore = locationCalls().length;
  // The first merchant's locations are not answered until the second request has been: the first run is still
  // under way when it comes, however long the machine takes to get there.
  const slowLocations = heldAnswer();
  t.teardown(slowLocations.release);
  square.failNext('/v2/locations', slowLocations.fault, { merchantId: 'M-ONE' });
  const first = pollOn(service.url);
  await eventually(async () => locationCalls().length, (n) => n > callsBefore, { timeoutMs: 10_000, intervalMs: 20 });
  const refused = await pollOn(second.url);
  slowLocations.release();
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

test.serial('quiet polls append nothing to the event store, and the last polled time stays current', async (t) => {
  await pollOn(service.url); // whatever is left to find
  await actors.settle();
  const [eventsBefore, auditBefore] = [await storedEvents(), await auditRows()];
  const QUIET_RUNS = 3;
  let startedLast = '';
  for (let run = 0; run < QUIET_RUNS; run++) {
    startedLast = new Date().toISOString();
    const polled = await pollOn(service.url);
    t.true(polled.body.connections.every((c: { status: string; seen: number }) => c.status === 'ok' && c.seen === 0), JSON.stringify(polled.body));
  }
  await actors.settle();
  const appended = (await storedEvents()) - eventsBefore;
  t.log(`events per quiet run: ${appended / QUIET_RUNS} for ${MERCHANTS.length} connections (one per connection before)`);
  t.is(appended, 0, 'a quiet run appends no event');
  t.is((await auditRows()) - auditBefore, 0, 'nor an audit row');

  const owner = merchants.get('M-TWO')!;
  const view = await actors.call('GET', '/api/v1/client/pos/square', { token: owner.token });
  t.true(view.body.lastPolledAt >= startedLast, `the connection says it was polled in the last run (${view.body.lastPolledAt} < ${startedLast})`);
  const debug = await actors.call('GET', '/api/v1/client/debug/square', { token: owner.token });
  t.is(debug.body.lastPollAt, view.body.lastPolledAt, 'the debug endpoint says the same');
  const listed = await actors.call('GET', '/api/v1/admin/connections', { token: admin.token });
  t.is(listed.body.items.find((c: { tenantId: string }) => c.tenantId === owner.tenantId).lastPolledAt, view.body.lastPolledAt, 'and the admin list');

  // A run that finds something still records it, and its time wins.
  square.addPayment('M-TWO', { id: 'M-TWO-later', locationId: 'L-MAIN', amount: 500, status: 'COMPLETED', createdAt: new Date().toISOString() });
  const busyStart = new Date().toISOString();
  const found = await pollOn(service.url);
  t.like(found.body.connections.find((c: { merchantId: string }) => c.merchantId === 'M-TWO'), { seen: 1 });
  await actors.settle();
  t.true((await storedEvents()) > eventsBefore, 'a run that found a payment appends');
  const after = await actors.call('GET', '/api/v1/client/pos/square', { token: owner.token });
  t.true(after.body.lastPolledAt >= busyStart);
  t.truthy(after.body.lastPollSummary, 'its summary is shown');
});
