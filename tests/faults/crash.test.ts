/**
 * The promise under SIGKILL: the service runs as a child process under steady signed-webhook load and is killed
 * at random moments (seeded; the seed is printed). After every restart: each webhook that got a 2xx is
 * eventually processed, each payment is credited exactly once, and the wallets equal the replay of their events.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { v4 as uuid } from 'uuid';
import { freePort } from '../../adapters/postgres/embedded.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { startSquareServer, TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';

const KILLS = Number(process.env.CRASH_KILLS ?? 20);
const KEY = 'crash-webhook-key';
const API_BASE_URL = 'https://api.crash.test';

let database: TestDatabase;
let square: SquareTestServer;
let child: ChildProcess | undefined;
let url: string;
let env: NodeJS.ProcessEnv;

async function startChild(): Promise<void> {
  child = spawn(process.execPath, ['--import=tsx', 'main.ts'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += String(chunk)));
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`the service exited: ${stderr.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the service did not become ready');
}

function kill(): Promise<void> {
  const running = child;
  child = undefined;
  if (!running || running.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    running.once('exit', () => resolve());
    running.kill('SIGKILL');
  });
}

test.before(async () => {
  database = await createTestDatabase();
  square = await startSquareServer();
  square.addMerchant({ merchantId: 'M-CRASH', businessName: 'Crash Cafe', locations: [{ id: 'L1', name: 'Main' }] });
  for (let c = 0; c < 20; c++) square.addCustomer('M-CRASH', { id: `cust-${c}`, email: `c${c}@crash.test` });
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'tally-crash-')),
    DATABASE_URL: database.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@crash.test',
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: KEY,
    API_BASE_URL,
    AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000',
  };
  await startChild();
});
test.after.always(async () => {
  await kill();
  await square?.stop();
  await database?.drop();
});

test('SIGKILL at random moments under webhook load: nothing acknowledged is lost, nothing is credited twice', async (t) => {
  t.timeout(300_000);
  const call = api(url);
  const admin = await tokenFor(uuid(), 'ops@crash.test');
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  const merchantId = uuid();
  const merchant = await tokenFor(merchantId, 'owner@crash.test');
  await call('POST', '/api/v1/me/register', { token: merchant, body: { role: 'client', businessName: 'Crash Cafe' } });
  const tenantId = (await call('PATCH', `/api/v1/admin/users/${merchantId}/approve`, { token: admin })).body.user.tenantId as string;
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: merchant, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: merchant });
  for (let c = 0; c < 20; c++) await call('POST', '/api/v1/me/register', { token: await tokenFor(uuid(), `c${c}@crash.test`), body: { role: 'consumer' } });
  const started = await call('GET', '/api/v1/client/pos/square/connect', { token: merchant });
  const state = new URL(started.body.url).searchParams.get('state')!;
  const connected = await call('GET', `/api/v1/oauth/square/callback?code=${square.issueCode('M-CRASH')}&state=${encodeURIComponent(state)}`);
  t.regex(connected.headers.get('location') ?? '', /connected=square/);

  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (rerun with CRASH_SEED=${seed}), ${KILLS} kills`);
  let s = seed;
  const random = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

  const acked = new Map<string, number>(); // payment id → amount, for every webhook that got a 2xx
  let sent = 0;
  for (let kill_ = 0; kill_ < KILLS; kill_++) {
    const send = webhookSender(url, KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
    let sending = true;
    const senders = Array.from({ length: 4 }, async () => {
      while (sending) {
        const n = sent++;
        const paymentId = `pay-${n}`;
        const amount = 100 + (n % 50) * 100;
        try {
          const response = await send(paymentWebhook({ eventId: `evt-${n}`, merchantId: 'M-CRASH', paymentId, amount, customerId: `cust-${n % 20}` }));
          if (response.status === 200) acked.set(paymentId, amount);
        } catch {
          // The process died under the request: not acknowledged, so Square would retry; nothing to check.
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(random() * 400)));
    await kill();
    sending = false;
    await Promise.all(senders);
    await startChild();
  }
  t.log(`${sent} webhooks sent, ${acked.size} acknowledged, ${KILLS} kills survived`);
  t.true(acked.size > KILLS, 'webhooks were acknowledged between the kills');

  // Every acknowledged webhook is processed (the inbox), and every credit reached its wallet exactly once.
  let pending = -1;
  for (let i = 0; i < 600 && pending !== 0; i++) {
    pending = Number((await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM pos_webhook_events_raw WHERE NOT processed')).rows[0]!.n);
    if (pending) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.is(pending, 0, 'every stored webhook was processed after the restarts');
  const stored = await database.pool.query<{ object_id: string; outcome: string }>('SELECT object_id, outcome FROM pos_webhook_events_raw');
  const outcome = new Map(stored.rows.map((r) => [r.object_id, r.outcome]));
  const lost = [...acked.keys()].filter((id) => !outcome.has(id));
  t.deepEqual(lost, [], 'no acknowledged webhook is lost');
  t.deepEqual([...new Set(stored.rows.map((r) => r.outcome))].sort(), ['credited']);

  const head = (await call('GET', '/api/v1/admin/projections', { token: admin })).status;
  t.is(head, 200);
  let credits: { payment_id: string; n: number }[] = [];
  for (let i = 0; i < 600; i++) {
    credits = (await database.pool.query<{ payment_id: string; n: number }>(`SELECT payment_id, count(*)::int AS n FROM wallet_ledger WHERE entry_type = 'credit' GROUP BY payment_id`)).rows;
    // Done when every acknowledged payment has its credit (unacknowledged ones may be credited too: the
    // process can die after storing a webhook and before answering).
    const have = new Set(credits.map((r) => r.payment_id));
    if ([...acked.keys()].every((id) => have.has(id))) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const credited = new Map(credits.map((r) => [r.payment_id, r.n]));
  t.deepEqual([...acked.keys()].filter((id) => credited.get(id) !== 1), [], 'each acknowledged payment credited exactly once');
  t.deepEqual(credits.filter((r) => r.n !== 1), [], 'no payment credited twice');
  const points = await database.pool.query<{ p: string }>('SELECT coalesce(sum(points_balance), 0)::text AS p FROM wallets WHERE tenant_id = $1', [tenantId]);
  const expected = [...credited.keys()].reduce((sum, id) => sum + Math.floor((100 + (Number(id.slice(4)) % 50) * 100) / 100), 0);
  t.is(Number(points.rows[0]!.p), expected, 'balances are the rule applied to each credited payment once');
  const reconcile = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.deepEqual(reconcile.body.mismatches, [], 'the wallets equal the replay of their events');
});
