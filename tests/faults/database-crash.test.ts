/**
 * PostgreSQL crashes (a backend SIGKILLed: the postmaster ends every session and replays the WAL from disk) right
 * after the webhook worker settled a batch, while the service (one child process) runs on. What the worker committed
 * must have been durable: its ingestion view and the wallets' states it keeps in memory take the batch as written.
 * A batch committed without waiting for the WAL flush was lost by such a crash, the webhook decided again, its
 * wallet found already credited in memory and credited nothing (the purchase said `credited`, the wallet had no
 * credit), and every later command on that wallet conflicted with its stale state (503 `STREAM_CONTENDED`).
 *
 * The WAL writer is slowed (`wal_writer_delay` 10 s) so that a commit that does not wait for the flush stays
 * unflushed long enough for the crash to lose it: the window is widened, not created.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../adapters/postgres/embedded.ts';
import { api } from '../support/http.ts';
import { until } from '../support/eventually.ts';
import { startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';
import { connectMerchant, killService, pointsFor, serviceEnv, startService } from './support.ts';

const KEY = 'crash-webhook-key';
const API_BASE_URL = 'https://api.crash.test';
const ROUNDS = 4;

let tmp: string;
let postgres: EmbeddedPostgresServer | undefined;
let square: SquareTestServer;
let child: ChildProcess | undefined;
let url: string;

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tally-database-crash-'));
  await chmod(tmp, 0o755);
  postgres = await startEmbeddedPostgres({
    dataDir: path.join(tmp, 'pg'),
    port: await freePort(),
    throwaway: true,
    settings: ['wal_writer_delay=10000ms', 'checkpoint_timeout=3600'],
  });
  square = await startSquareServer();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  child = await startService(url, {
    ...serviceEnv({ port, databaseUrl: postgres.adminUrl, dataDir: path.join(tmp, 'service'), square, webhookSignatureKey: KEY, apiBaseUrl: API_BASE_URL, adminEmail: 'ops@crash.test' }),
    LOG_LEVEL: 'warn',
  });
});

test.after.always(async () => {
  await killService(child);
  await square?.stop();
  await postgres?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** One query on a connection of its own (the server may have just crashed: no pooled connection to reuse). */
async function query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: postgres!.adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const inboxRow = async (eventId: string) =>
  (await query<{ processed: boolean; outcome: string | null }>('SELECT processed, outcome FROM pos_webhook_events_raw WHERE id = $1', [eventId]))[0];
const creditsOf = async (paymentId: string) =>
  Number((await query<{ n: string }>(`SELECT count(*) AS n FROM events WHERE event_type = 'PointsCredited' AND data->>'paymentId' = $1`, [paymentId]))[0]!.n);

test('a PostgreSQL crash right after a batch is settled loses none of it, and the wallet goes on taking commands', async (t) => {
  t.timeout(240_000);
  const { merchantToken } = await connectMerchant(url, square, { squareMerchantId: 'M-CRASH', businessName: 'Crash Cafe', domain: 'crash.test', consumers: 1 });
  const send = webhookSender(url, KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  const processed = (eventId: string) => until(() => inboxRow(eventId), (row) => row?.processed === true, { timeoutMs: 60_000, intervalMs: 20 });

  // A first payment: the consumer's wallet is credited, and the service holds its state in memory.
  t.is((await send(paymentWebhook({ eventId: 'evt-0', merchantId: 'M-CRASH', paymentId: 'pay-0', amount: 1000, customerId: 'cust-0' }))).status, 200);
  t.is((await processed('evt-0'))?.outcome, 'credited');
  await query('CHECKPOINT');
  let points = pointsFor(1000);

  for (let round = 1; round <= ROUNDS; round++) {
    const eventId = `evt-${round}`;
    const paymentId = `pay-${round}`;
    t.is((await send(paymentWebhook({ eventId, merchantId: 'M-CRASH', paymentId, amount: 500, customerId: 'cust-0' }))).status, 200);
    // Watch for the settlement on a session whose own backend is then killed: PostgreSQL crash-restarts at once.
    const watcher = new pg.Client({ connectionString: postgres!.adminUrl });
    watcher.on('error', () => undefined);
    await watcher.connect();
    const pid = (await watcher.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await until(async () => (await watcher.query<{ processed: boolean }>('SELECT processed FROM pos_webhook_events_raw WHERE id = $1', [eventId])).rows[0], (row) => row?.processed === true, {
      timeoutMs: 60_000,
      intervalMs: 5,
    });
    process.kill(pid, 'SIGKILL');
    await watcher.end().catch(() => undefined);
    await until(() => query('SELECT 1').then(() => true, () => false), Boolean, { timeoutMs: 60_000, intervalMs: 100 });
    // Settled before the crash, so settled after it: the batch was durable.
    t.like(await inboxRow(eventId), { processed: true, outcome: 'credited' }, `round ${round}: the settled webhook survived the crash`);
    t.is(await creditsOf(paymentId), 1, `round ${round}: its credit survived the crash`);
    points += pointsFor(500);
  }

  // The wallet's state in memory is the stored one: a redemption is decided on it and appended.
  const walletId = (await query<{ w: string }>(`SELECT data->>'walletId' AS w FROM events WHERE event_type = 'PointsCredited' LIMIT 1`))[0]!.w;
  const redeem = await until(
    () => api(url)('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: merchantToken, body: { points: 1, idempotencyKey: 'after-the-crashes' } }),
    (answer) => answer.status !== 503 || answer.body?.error?.code === 'STREAM_CONTENDED',
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  t.is(redeem.status, 200, JSON.stringify(redeem.body));
  t.is(redeem.body.balance, points - 1);
});
