/**
 * Square faults during a poll, mixed across connections: a 429 with a short Retry-After (on payments, on the
 * locations list), one asking for 120 s (not waited out: that merchant's poll resumes next run), a 500 on one
 * location, a timeout, a dropped connection on the refunds list and a revoked grant. The healthy connections complete,
 * a failing one keeps its cursor where it stopped (nothing half-applied: what was credited stays credited once,
 * what was not is credited by the next poll), and the revoked one turns `needs_reconnect` and is no longer polled.
 */
import test from 'ava';
import { pollEvents } from '../../domain/connections/poll-log.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { heldAnswer, startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { scenario, type Actor, type Merchant } from '../support/tenants.ts';

const CRON_SECRET = 'cron-secret-for-poll-faults-0123';
const TIMEOUT_SECONDS = 5;
/** The client's timeout when SQUARE_TIMEOUT_SECONDS is not applied: a first poll this long did not use ours. */
const DEFAULT_TIMEOUT_MS = 30_000;
const MERCHANTS = ['M-OK', 'M-500', 'M-SLOW', 'M-REVOKED', 'M-429', 'M-DROP', 'M-THROTTLED', 'M-LOC429'] as const;
/** Per merchant: two payments at the main location, one at the kiosk; 1 point per dollar, so 60 points in all. */
const PAYMENTS = [
  { suffix: 'a', locationId: 'L-MAIN', amount: 1000 },
  { suffix: 'b', locationId: 'L-MAIN', amount: 2000 },
  { suffix: 'c', locationId: 'L-KIOSK', amount: 3000 },
];

let square: SquareTestServer;
let service: TestService;
let actors: ReturnType<typeof scenario>;
let admin: Actor;
let pat: Actor;
const merchants = new Map<string, Merchant>();

test.before(async () => {
  square = await startSquareServer();
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@poll.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    CRON_SECRET,
    // A slow Square answer must fail this poll, not stall it: five seconds per call (well under the 30 s default,
    // well over what a loaded machine takes for any of the ~30 calls the stand-in answers at once).
    SQUARE_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
  });
  actors = scenario(service, square);
  admin = await actors.register('consumer', 'ops@poll.test');
  pat = await actors.register('consumer', 'pat@poll.test');
  for (const id of MERCHANTS) {
    square.addMerchant({ merchantId: id, businessName: id, locations: [{ id: 'L-MAIN', name: 'Main' }, { id: 'L-KIOSK', name: 'Kiosk' }] });
    square.addCustomer(id, { id: `cust-pat-${id}`, email: 'pat@poll.test' });
    const owner = await actors.merchant(admin, `owner@${id.toLowerCase()}.test`);
    await actors.connect(owner, id);
    merchants.set(id, owner);
    // Sales made once the program runs and the merchant is connected (a first poll starts at the connection).
    const created = Date.now();
    PAYMENTS.forEach((p, i) =>
      square.addPayment(id, {
        id: `${id}-${p.suffix}`,
        locationId: p.locationId,
        amount: p.amount,
        status: 'COMPLETED',
        customerId: `cust-pat-${id}`,
        createdAt: new Date(created + i * 1000).toISOString(),
      }),
    );
  }
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});

// Polls find connections through the pos_connections read model: let it catch up with the connects first.
const poll = async () => (await actors.settle(), actors.call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } }));
const tenant = (id: string) => merchants.get(id)!.tenantId;

test.serial('faults on some connections leave the others complete and nothing half-applied; the next poll finishes the job', async (t) => {
  square.failNext('/v2/payments', { status: 500 }, { merchantId: 'M-500', skip: 1 }); // the kiosk's list fails
  // M-SLOW's main location is not answered until the first poll has answered: only SQUARE_TIMEOUT_SECONDS ends that call.
  const slow = heldAnswer();
  t.teardown(slow.release);
  square.failNext('/v2/payments', slow.fault, { merchantId: 'M-SLOW' });
  square.failNext('/v2/payments', { status: 429, retryAfter: 1 }, { merchantId: 'M-429' });
  square.failNext('/v2/refunds', { dropConnection: true }, { merchantId: 'M-DROP' });
  square.failNext('/v2/payments', { status: 429, retryAfter: 120 }, { merchantId: 'M-THROTTLED' }); // longer than a poll waits
  square.failNext('/v2/locations', { status: 429, retryAfter: 1 }, { merchantId: 'M-LOC429' });
  square.revokeTokensOf('M-REVOKED');

  const startedAt = Date.now();
  const first = await poll();
  const elapsedMs = Date.now() - startedAt;
  slow.release();
  t.is(first.status, 200, JSON.stringify(first.body));
  t.true(elapsedMs < DEFAULT_TIMEOUT_MS, `the held call ended at SQUARE_TIMEOUT_SECONDS (${TIMEOUT_SECONDS} s), not the 30 s default: ${elapsedMs} ms`);
  const summary = (id: string) => first.body.connections.find((c: { tenantId: string }) => c.tenantId === tenant(id));
  t.like(summary('M-OK'), { status: 'ok', credited: 3, errors: [] });
  t.like(summary('M-429'), { status: 'ok', credited: 3, errors: [] }, 'a 429 is waited out (Retry-After) and the poll completes');
  t.like(summary('M-500'), { status: 'partial', credited: 2 }, 'the main location was credited before the kiosk failed');
  t.regex(summary('M-500').errors.join(), /INTERNAL_SERVER_ERROR/);
  t.like(summary('M-SLOW'), { status: 'partial', credited: 1 }, 'the main location timed out; the kiosk was still polled');
  t.regex(summary('M-SLOW').errors.join(), /TIMEOUT/);
  t.like(summary('M-THROTTLED'), { status: 'failed', credited: 0 }, 'Retry-After 120 s: not waited out inside the cron request');
  t.regex(summary('M-THROTTLED').errors.join(), /RATE_LIMITED.*wait 120 s/);
  t.like(summary('M-LOC429'), { status: 'ok', credited: 3, errors: [] }, 'a 429 on the locations list is waited out too');
  t.like(summary('M-DROP'), { status: 'partial', credited: 3 }, 'payments credited; the refunds list failed');
  t.regex(summary('M-DROP').errors.join(), /NETWORK/);
  t.like(summary('M-REVOKED'), { status: 'failed', credited: 0 });
  t.regex(summary('M-REVOKED').errors.join(), /ACCESS_TOKEN_REVOKED/);

  const after = await actors.balances(pat);
  t.deepEqual(
    MERCHANTS.map((id) => after[tenant(id)] ?? 0),
    [60, 30, 30, 0, 60, 60, 0, 60],
    'exactly what each summary says was credited, and nothing else',
  );

  // The revoked grant turned the connection to needs_reconnect: the merchant sees why, and polls skip it.
  await actors.settle();
  const revoked = await actors.call('GET', '/api/v1/client/pos/square', { token: merchants.get('M-REVOKED')!.token });
  t.like(revoked.body, { status: 'needs_reconnect' });
  t.is(revoked.body.lastError?.code ?? revoked.body.last_error_code, 'ACCESS_TOKEN_REVOKED', JSON.stringify(revoked.body));
  const connections = await actors.call('GET', '/api/v1/admin/connections', { token: admin.token });
  const statuses = Object.fromEntries(connections.body.items.map((c: { merchantId: string; status: string }) => [c.merchantId, c.status]));
  t.like(statuses, { 'M-OK': 'active', 'M-500': 'active', 'M-SLOW': 'active', 'M-REVOKED': 'needs_reconnect', 'M-429': 'active', 'M-DROP': 'active', 'M-THROTTLED': 'active' });

  const second = await poll();
  t.is(second.status, 200);
  const again = (id: string) => second.body.connections.find((c: { tenantId: string }) => c.tenantId === tenant(id));
  t.is(again('M-REVOKED'), undefined, 'a connection that needs a reconnect is not polled');
  t.like(again('M-500'), { status: 'ok', credited: 1 }, 'only the kiosk payment was left');
  t.like(again('M-SLOW'), { status: 'ok', credited: 2 }, 'the main location resumed from its cursor');
  t.like(again('M-THROTTLED'), { status: 'ok', credited: 3 }, 'the throttled merchant resumed on the next run');
  for (const id of ['M-OK', 'M-429', 'M-DROP', 'M-500', 'M-SLOW', 'M-THROTTLED', 'M-LOC429']) t.is(again(id).errors.length, 0, id);
  for (const id of ['M-OK', 'M-429', 'M-DROP', 'M-LOC429']) t.is(again(id).credited, 0, `${id}: nothing is credited twice`);

  const final = await actors.balances(pat);
  t.deepEqual(MERCHANTS.map((id) => final[tenant(id)] ?? 0), [60, 60, 60, 0, 60, 60, 60, 60]);
  for (const id of MERCHANTS) {
    const reconcile = await actors.call('POST', '/api/v1/admin/reconcile', { token: admin.token, body: { tenantId: tenant(id) } });
    t.deepEqual(reconcile.body.mismatches, [], `${id}: the wallets equal the replay of their events`);
  }
});

test.serial('a merchant whose grant was refused connects again and polling resumes', async (t) => {
  const owner = merchants.get('M-REVOKED')!;
  await actors.connect(owner, 'M-REVOKED');
  const polled = await poll();
  const summary = polled.body.connections.find((c: { tenantId: string }) => c.tenantId === owner.tenantId);
  t.like(summary, { status: 'ok', credited: 3 });
  t.is((await actors.balances(pat))[owner.tenantId], 60);
});

test.serial('polls are recorded on their own stream: the connection stream, read on every customer lookup, does not grow with them', async (t) => {
  const tenantId = tenant('M-OK');
  const connectionStream = async () => (await service.tally.store.readStream(`square-connection-${tenantId}`)).map((e) => e.type);
  const before = await connectionStream();
  // Each run finds a sale: a run that finds nothing new records no poll (tests/http/poll-runs.test.ts).
  for (let i = 0; i < 3; i++) {
    square.addPayment('M-OK', { id: `M-OK-more-${i}`, locationId: 'L-MAIN', amount: 500, status: 'COMPLETED', createdAt: new Date().toISOString() });
    await poll();
  }
  t.deepEqual(await connectionStream(), before);
  t.false(before.includes('SquarePaymentsPolled'));
  const polls = await service.tally.store.readStream(`square-poll-${tenantId}`);
  t.true(polls.length >= 4, `one record per poll that found something (${polls.length})`);
  const [last] = await service.tally.store.readStream(`square-poll-${tenantId}`, { direction: 'backwards', limit: 1 });
  const record = last && pollEvents.decode(last).data;
  t.like(record, { tenantId, merchantId: 'M-OK' });
  await actors.settle();
  const listed = await actors.call('GET', '/api/v1/client/pos/square', { token: merchants.get('M-OK')!.token });
  t.is(listed.body.lastPolledAt, record?.polledAt, 'the read model shows the last poll');
});

test.serial('a 429 on the second page: what the retry lists again, processed earlier in the run, is re-read, not seen or credited twice', async (t) => {
  const id = 'M-PAGED';
  square.addMerchant({ merchantId: id, businessName: id, locations: [{ id: 'L-MAIN', name: 'Main' }] });
  square.addCustomer(id, { id: `cust-pat-${id}`, email: 'pat@poll.test' });
  const owner = await actors.merchant(admin, 'owner@m-paged.test');
  await actors.connect(owner, id);
  const created = Date.now();
  // Two pages of 100: the list is read again from its cursor minus the overlap, so the first page comes again.
  for (let i = 0; i < 150; i++) {
    square.addPayment(id, { id: `${id}-${i}`, locationId: 'L-MAIN', amount: 100, status: 'COMPLETED', customerId: `cust-pat-${id}`, createdAt: new Date(created + i * 1000).toISOString() });
  }
  square.failNext('/v2/payments', { status: 429, retryAfter: 1 }, { merchantId: id, skip: 1 }); // the second page is refused once
  const polled = await poll();
  t.is(polled.status, 200, JSON.stringify(polled.body));
  const summary = polled.body.connections.find((c: { tenantId: string }) => c.tenantId === owner.tenantId);
  t.like(summary, { status: 'ok', seen: 150, reread: 100, credited: 150, errors: [] });
  t.is((await actors.balances(pat))[owner.tenantId], 150);
  await actors.settle();
  const shown = await actors.call('GET', '/api/v1/client/pos/square', { token: owner.token });
  t.like(shown.body.lastPollSummary, { seen: 150, reread: 100, credited: 150 }, 'the merchant sees the same numbers');
});

test.serial('a connection whose run cannot be recorded is reported and logged; the other connections are polled and recorded', async (t) => {
  // Connections are polled in the order they were authorized: M-OK first, so the others come after its failure.
  const failing = tenant('M-OK');
  const db = service.database.pool;
  await db.query(`CREATE FUNCTION refuse_poll_record() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.stream_name = 'square-poll-${failing}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
  await db.query('CREATE TRIGGER refuse_poll_record BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_poll_record()');
  const drop = async () => {
    await db.query('DROP TRIGGER IF EXISTS refuse_poll_record ON events');
    await db.query('DROP FUNCTION IF EXISTS refuse_poll_record()');
  };
  t.teardown(drop);
  const before = await actors.balances(pat);
  for (const id of ['M-OK', 'M-500'] as const) {
    square.addPayment(id, { id: `${id}-unrecorded`, locationId: 'L-MAIN', amount: 1000, status: 'COMPLETED', customerId: `cust-pat-${id}`, createdAt: new Date().toISOString() });
  }
  const polled = await poll();
  t.is(polled.status, 200, JSON.stringify(polled.body));
  const summary = (id: string) => polled.body.connections.find((c: { tenantId: string }) => c.tenantId === tenant(id));
  t.like(summary('M-OK'), { status: 'partial', credited: 1 }, 'its payment is credited; only the record is missing');
  t.regex(summary('M-OK').errors.join(), /poll record not written.*refused by the test/);
  t.like(summary('M-500'), { status: 'ok', credited: 1, errors: [] }, 'a connection polled after the failure');
  const logged = service.logs.map((l) => JSON.parse(l)).find((l) => l.tenantId === failing && /could not be recorded/.test(l.msg));
  t.like(logged, { merchantId: 'M-OK' });

  await drop();
  const again = await poll();
  const next = again.body.connections.find((c: { tenantId: string }) => c.tenantId === failing);
  t.like(next, { status: 'ok', credited: 0, errors: [] }, 'the next run resumes from the cursor recorded before: nothing is credited twice');
  const after = await actors.balances(pat);
  t.is(after[failing], (before[failing] ?? 0) + 10);
  t.is(after[tenant('M-500')], (before[tenant('M-500')] ?? 0) + 10);
});
