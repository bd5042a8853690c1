/**
 * The promise under SIGKILL: the service runs as a child process under steady signed-webhook load and is killed
 * at random moments (seeded; the seed is printed), so mostly in the middle of a batch being decided or appended. After every restart: each webhook that got a 2xx is
 * eventually processed, each payment is credited exactly once, and the wallets equal the replay of their events.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../adapters/postgres/embedded.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { api } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';
import { connectMerchant, killService, pointsFor, serviceEnv, startService } from './support.ts';

const KILLS = Number(process.env.CRASH_KILLS ?? 20);
const KEY = 'crash-webhook-key';
const API_BASE_URL = 'https://api.crash.test';

let database: TestDatabase;
let square: SquareTestServer;
let child: ChildProcess | undefined;
let url: string;
let env: NodeJS.ProcessEnv;

async function startChild(): Promise<void> {
  child = await startService(url, env);
}

function kill(): Promise<void> {
  const running = child;
  child = undefined;
  return killService(running);
}

test.before(async () => {
  database = await createTestDatabase();
  square = await startSquareServer();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  env = serviceEnv({
    port,
    databaseUrl: database.url,
    dataDir: await mkdtemp(path.join(os.tmpdir(), 'tally-crash-')),
    square,
    webhookSignatureKey: KEY,
    apiBaseUrl: API_BASE_URL,
    adminEmail: 'ops@crash.test',
  });
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
  const { adminToken: admin, tenantId, connectedLocation } = await connectMerchant(url, square, {
    squareMerchantId: 'M-CRASH',
    businessName: 'Crash Cafe',
    domain: 'crash.test',
    consumers: 20,
  });
  t.regex(connectedLocation, /connected=square/);

  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (rerun with CRASH_SEED=${seed}), ${KILLS} kills`);
  let s = seed;
  const random = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

  const acked = new Map<string, number>(); // payment id → amount, for every webhook that got a 2xx
  let sent = 0;
  for (let kill_ = 0; kill_ < KILLS; kill_++) {
    const send = webhookSender(url, KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
    let sending = true;
    let firstAcknowledged = () => {};
    const acknowledged = new Promise<void>((resolve) => (firstAcknowledged = resolve));
    const senders = Array.from({ length: 4 }, async () => {
      while (sending) {
        const n = sent++;
        const paymentId = `pay-${n}`;
        const amount = 100 + (n % 50) * 100;
        try {
          const response = await send(paymentWebhook({ eventId: `evt-${n}`, merchantId: 'M-CRASH', paymentId, amount, customerId: `cust-${n % 20}` }));
          if (response.status === 200) {
            acked.set(paymentId, amount);
            firstAcknowledged();
          }
        } catch {
          // The process died under the request: not acknowledged, so Square would retry; nothing to check.
        }
      }
    });
    // The random moment counts from this start's first acknowledgement, so that every kill falls under load the
    // service accepts: on a busy machine, a moment counted from the start fell before the first answer in most runs.
    let waited: NodeJS.Timeout | undefined;
    const answered = await Promise.race([acknowledged.then(() => true), new Promise<false>((resolve) => (waited = setTimeout(resolve, 30_000, false)))]);
    clearTimeout(waited);
    if (!answered) {
      sending = false;
      await Promise.all(senders);
      t.fail(`start ${kill_ + 1}: nothing acknowledged within 30 s of /readyz`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(random() * 400)));
    await kill();
    sending = false;
    await Promise.all(senders);
    await startChild();
  }
  t.log(`${sent} webhooks sent, ${acked.size} acknowledged, ${KILLS} kills survived`);

  // Every acknowledged webhook is processed (the inbox), and every credit reached its wallet exactly once. The
  // leases of the killed processes were taken back by the last start (lease-holder.ts), not waited out (a minute).
  const drainStarted = performance.now();
  const pending = await eventually(
    async () => Number((await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM pos_webhook_events_raw WHERE NOT processed')).rows[0]!.n),
    (n) => n === 0,
    { timeoutMs: 60_000 },
  );
  t.is(pending, 0, 'every stored webhook was processed after the restarts');
  const drainSeconds = (performance.now() - drainStarted) / 1000;
  t.log(`the inbox drained ${drainSeconds.toFixed(1)} s after the last start (a lease lasts 60 s)`);
  // Half a lease: the last start took back what the killed process held, rather than waiting its leases out.
  t.true(drainSeconds < 30, `the inbox drained ${drainSeconds.toFixed(1)} s after the last start: leases of the killed process were waited out`);
  const stored = await database.pool.query<{ object_id: string; outcome: string }>('SELECT object_id, outcome FROM pos_webhook_events_raw');
  const outcome = new Map(stored.rows.map((r) => [r.object_id, r.outcome]));
  const lost = [...acked.keys()].filter((id) => !outcome.has(id));
  t.deepEqual(lost, [], 'no acknowledged webhook is lost');
  t.deepEqual([...new Set(stored.rows.map((r) => r.outcome))].sort(), ['credited']);

  const head = (await call('GET', '/api/v1/admin/projections', { token: admin })).status;
  t.is(head, 200);
  // Done when every acknowledged payment has its credit (unacknowledged ones may be credited too: the process
  // can die after storing a webhook and before answering).
  const credits = await eventually(
    async () => (await database.pool.query<{ payment_id: string; n: number }>(`SELECT payment_id, count(*)::int AS n FROM wallet_ledger WHERE kind = 'earn' GROUP BY payment_id`)).rows,
    (rows) => {
      const have = new Set(rows.map((r) => r.payment_id));
      return [...acked.keys()].every((id) => have.has(id));
    },
    { timeoutMs: 60_000 },
  );
  const credited = new Map(credits.map((r) => [r.payment_id, r.n]));
  t.deepEqual([...acked.keys()].filter((id) => credited.get(id) !== 1), [], 'each acknowledged payment credited exactly once');
  t.deepEqual(credits.filter((r) => r.n !== 1), [], 'no payment credited twice');
  const points = await database.pool.query<{ p: string }>('SELECT coalesce(sum(points_balance), 0)::text AS p FROM wallets WHERE tenant_id = $1', [tenantId]);
  const expected = [...credited.keys()].reduce((sum, id) => sum + pointsFor(100 + (Number(id.slice(4)) % 50) * 100), 0);
  t.is(Number(points.rows[0]!.p), expected, 'balances are the rule applied to each credited payment once');
  // The worker decides webhooks in batches and appends each batch in one transaction: under this load the kills
  // fall in the middle of batches, and the batches were real (several payments in one append).
  const batches = await database.pool.query<{ payments: number }>(
    `SELECT count(DISTINCT stream_name)::int AS payments FROM events WHERE stream_name LIKE 'payment-%' GROUP BY transaction_id`,
  );
  const multi = batches.rows.filter((b) => b.payments > 1).length;
  t.log(`${batches.rows.length} appends of payments, ${multi} of them batches of several payments`);
  t.true(multi > 0, 'webhooks were decided and appended in batches');
  const reconcile = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.deepEqual(reconcile.body.mismatches, [], 'the wallets equal the replay of their events');
});
