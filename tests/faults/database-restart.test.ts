/**
 * PostgreSQL stopped and restarted under signed-webhook load, the service (one child process) left running.
 * While the database is down every request fails fast: webhooks and reads answer 503 with Retry-After (Square
 * retries), `/readyz` says the database is unreachable, `/healthz` stays 200, nothing hangs. Once the database
 * is back the same process recovers by itself (readiness, the webhook worker, the projection runner), and every
 * webhook it acknowledged is processed and credited exactly once.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { freePort, startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../adapters/postgres/embedded.ts';
import { api } from '../support/http.ts';
import { startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { paymentWebhook, squareSignature } from '../support/square-webhooks.ts';
import { connectMerchant, killService, pointsFor, serviceEnv, startService } from './support.ts';

const KEY = 'restart-webhook-key';
const API_BASE_URL = 'https://api.restart.test';
const WEBHOOK_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
const SENDERS = 4;
const STEADY_MS = 2_000;
const OUTAGE_MS = 5_000;
const RECOVERY_MS = 2_000;
/**
 * "Fast" while the database is down. A refused connection on loopback fails in well under a millisecond, so a
 * 503 needs only the request's own work; 2.5 s leaves ample margin for a 2-core machine shared with other test
 * runs, and is half the pool's 5 s connection timeout: an answer that waited for that timeout fails this bound.
 */
const FAST_MS = 2_500;
/** A request unanswered after this long hangs: it is aborted and counted as a failure. */
const HANG_MS = 15_000;
/** The service must be ready again this soon after PostgreSQL accepts connections (its projection runner retries every 2 s). */
const READY_WITHIN_MS = 15_000;
/**
 * Every stored webhook is processed this soon after the load stops. The worker polls every second and retries a
 * failed webhook after a second or two; one whose failure went unrecorded while the database was down would
 * instead wait out its 30 s lease, which this bound catches.
 */
const DRAINED_WITHIN_MS = 15_000;

type Phase =
  | 'steady' // PostgreSQL up
  | 'stopping' // stop requested, server shutting down: a request may still get through
  | 'down' // server exited
  | 'starting' // server starting again
  | 'restarted' // server accepting connections, /readyz not yet 200
  | 'ready'; // /readyz 200 again
const OUTAGE: readonly Phase[] = ['stopping', 'down', 'starting'];

interface Answer {
  /** HTTP status, or how the request failed without one. */
  status: number | 'timeout' | 'error';
  retryAfter: string | null;
  body: any;
  latencyMs: number;
}

interface WebhookSample extends Answer {
  /** When it was sent. */
  phase: Phase;
  /** When its answer came. */
  answeredIn: Phase;
  paymentId: string;
  amount: number;
}

interface Probe extends Answer {
  kind: 'readyz' | 'healthz' | 'wallets';
}

/** One request, bounded by HANG_MS. */
async function timed(url: string, init: RequestInit = {}): Promise<Answer> {
  const started = performance.now();
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(HANG_MS) });
    const text = await response.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body, latencyMs: performance.now() - started };
  } catch (error) {
    const status = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'error';
    return { status, retryAfter: null, body: String(error), latencyMs: performance.now() - started };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
};
const ms = (value: number) => `${Math.round(value)} ms`;
/** A 503 a client can act on: it says when to retry. */
const isRetryable503 = (a: Answer) => a.status === 503 && a.retryAfter !== null && Number(a.retryAfter) > 0;

let tmp: string;
let dataDir: string;
let pgPort: number;
let postgres: EmbeddedPostgresServer | undefined;
let square: SquareTestServer;
let child: ChildProcess | undefined;
let url: string;

const startPostgres = () => startEmbeddedPostgres({ dataDir, port: pgPort, throwaway: true });

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tally-db-restart-'));
  // Run as root, PostgreSQL runs as the `postgres` user, which must reach its data directory (see tests/run.ts).
  await chmod(tmp, 0o755);
  dataDir = path.join(tmp, 'pg');
  pgPort = await freePort();
  // Its own server, which this test stops and starts; durable settings, as in production.
  postgres = await startPostgres();
  square = await startSquareServer();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const env = serviceEnv({
    port,
    databaseUrl: postgres.adminUrl,
    dataDir: path.join(tmp, 'service'),
    square,
    webhookSignatureKey: KEY,
    apiBaseUrl: API_BASE_URL,
    adminEmail: 'ops@restart.test',
  });
  child = await startService(url, env);
});

test.after.always(async () => {
  await killService(child);
  await square?.stop();
  await postgres?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('PostgreSQL stopped and restarted under load: 503 + Retry-After fast while down, recovery without a service restart, nothing acknowledged lost', async (t) => {
  t.timeout(120_000);
  const service = child;
  if (!service || !postgres) throw new Error('the service and its PostgreSQL server did not start');
  const pid = service.pid;
  let exited: string | undefined;
  let stderr = '';
  service.stderr?.on('data', (chunk) => (stderr = (stderr + String(chunk)).slice(-4000)));
  service.once('exit', (code, signal) => (exited = `code ${code}, signal ${signal}`));

  const call = api(url);
  const { adminToken, tenantId, consumerTokens, connectedLocation } = await connectMerchant(url, square, {
    squareMerchantId: 'M-RESTART',
    businessName: 'Restart Cafe',
    domain: 'restart.test',
    consumers: 20,
  });
  t.regex(connectedLocation, /connected=square/);
  const walletsRead = () => timed(`${url}/api/v1/me/wallets`, { headers: { authorization: `Bearer ${consumerTokens[0]}` } });
  t.is((await walletsRead()).status, 200, 'the authenticated read works before the outage');

  // 1. Steady load: signed payment webhooks from concurrent senders, each answer recorded with its phase.
  let phase: Phase = 'steady';
  let sending = true;
  let sent = 0;
  const samples: WebhookSample[] = [];
  const senders = Array.from({ length: SENDERS }, async () => {
    while (sending) {
      const n = sent++;
      const paymentId = `pay-${n}`;
      const amount = 100 + (n % 50) * 100;
      const body = JSON.stringify(paymentWebhook({ eventId: `evt-${n}`, merchantId: 'M-RESTART', paymentId, amount, customerId: `cust-${n % 20}` }));
      const sentIn = phase;
      const answer = await timed(`${url}/api/v1/webhooks/square`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': squareSignature(KEY, WEBHOOK_URL, body) },
        body,
      });
      samples.push({ ...answer, phase: sentIn, answeredIn: phase, paymentId, amount });
      // Refused webhooks come back in milliseconds: pause a little so the senders do not just spin the CPU.
      if (answer.status !== 200) await sleep(20);
    }
  });
  const probes: Probe[] = [];
  let stopMs = 0;
  let startMs = 0;
  let readyAfterMs: number | undefined;
  try {
    await sleep(STEADY_MS);

    // 2. Stop PostgreSQL (fast shutdown: sessions are terminated) while the senders keep going, and keep it down.
    phase = 'stopping';
    let mark = performance.now();
    await postgres.stop();
    postgres = undefined;
    stopMs = performance.now() - mark;
    phase = 'down';
    const downSince = performance.now();
    while (performance.now() - downSince < OUTAGE_MS) {
      probes.push({ kind: 'readyz', ...(await timed(`${url}/readyz`)) });
      probes.push({ kind: 'healthz', ...(await timed(`${url}/healthz`)) });
      probes.push({ kind: 'wallets', ...(await walletsRead()) });
      await sleep(200);
    }

    // 3. Start it again, on the same data and port; the service process is left alone.
    phase = 'starting';
    mark = performance.now();
    postgres = await startPostgres();
    startMs = performance.now() - mark;
    phase = 'restarted';
    const restartedAt = performance.now();
    while (performance.now() - restartedAt < READY_WITHIN_MS) {
      if ((await timed(`${url}/readyz`)).status === 200) {
        readyAfterMs = performance.now() - restartedAt;
        break;
      }
      await sleep(100);
    }
    phase = 'ready';
    await sleep(RECOVERY_MS);
  } finally {
    sending = false;
    await Promise.all(senders);
  }

  // The figures.
  const phases: Phase[] = ['steady', 'stopping', 'down', 'starting', 'restarted', 'ready'];
  for (const p of phases) {
    const inPhase = samples.filter((s) => s.phase === p);
    const statuses = new Map<string, number>();
    for (const s of inPhase) statuses.set(String(s.status), (statuses.get(String(s.status)) ?? 0) + 1);
    t.log(
      `${p.padEnd(9)}: ${inPhase.length} webhooks sent, ${inPhase.filter((s) => s.status === 200).length} acknowledged; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `latency max ${ms(Math.max(0, ...inPhase.map((s) => s.latencyMs)))}, p99 ${ms(percentile(inPhase.map((s) => s.latencyMs), 99))}`,
    );
  }
  // Sent or answered while PostgreSQL was stopping, down or starting.
  const outage = samples.filter((s) => OUTAGE.includes(s.phase) || OUTAGE.includes(s.answeredIn));
  const outageLatencies = outage.map((s) => s.latencyMs);
  t.log(
    `outage (sent or answered while stopping, down or starting): ${outage.length} webhooks, ${outage.filter((s) => s.status === 200).length} acknowledged, ${outage.filter((s) => s.status === 503).length} answered 503, ` +
      `latency max ${ms(Math.max(0, ...outageLatencies))}, p99 ${ms(percentile(outageLatencies, 99))}`,
  );
  for (const kind of ['readyz', 'healthz', 'wallets'] as const) {
    const of = probes.filter((p) => p.kind === kind);
    t.log(`${kind} while down: ${of.length} probes, statuses ${JSON.stringify([...new Set(of.map((p) => p.status))])}, latency max ${ms(Math.max(0, ...of.map((p) => p.latencyMs)))}`);
  }
  t.log(`PostgreSQL stop took ${ms(stopMs)}, start ${ms(startMs)}; /readyz 200 again ${readyAfterMs === undefined ? 'never' : ms(readyAfterMs)} after PostgreSQL accepted connections`);

  // Nothing hung, nothing failed with a 500, and the process is the one that started.
  t.is(exited, undefined, `the service never exited; its last words: ${stderr}`);
  t.deepEqual(samples.filter((s) => typeof s.status !== 'number' || (s.status >= 500 && s.status !== 503)), [], 'no webhook hung, failed or got a 500');
  t.deepEqual(samples.filter((s) => s.answeredIn === 'steady' && s.status !== 200), [], 'every webhook is acknowledged before the outage');
  t.true(samples.filter((s) => s.phase === 'steady').length > SENDERS, 'the load ran before the outage');

  // While down: a 503 with Retry-After for everything that needs the database, fast; 200 only if it raced the stop.
  t.true(samples.filter((s) => s.phase === 'down').length > SENDERS, 'webhooks kept coming while the database was down');
  t.deepEqual(samples.filter((s) => s.phase === 'down' && !isRetryable503(s)), [], 'while down, every webhook is refused with 503 and Retry-After');
  t.deepEqual(outage.filter((s) => s.status !== 200 && !isRetryable503(s)), [], 'during the outage, a webhook is either acknowledged (it raced the stop) or refused with 503 and Retry-After');
  t.deepEqual(outage.filter((s) => s.latencyMs > FAST_MS), [], `during the outage every webhook is answered within ${FAST_MS} ms`);
  t.true(probes.length >= 3, 'the probes ran while the database was down');
  t.deepEqual(
    probes.filter((p) => p.kind === 'readyz' && !(isRetryable503(p) && p.body?.checks?.database?.ok === false)),
    [],
    '/readyz answers 503 with Retry-After and says the database is not ok',
  );
  t.deepEqual(probes.filter((p) => p.kind === 'healthz' && p.status !== 200), [], '/healthz stays 200: the process is alive');
  t.deepEqual(probes.filter((p) => p.kind === 'wallets' && !isRetryable503(p)), [], 'an authenticated read answers 503 with Retry-After');
  t.deepEqual(probes.filter((p) => p.latencyMs > FAST_MS), [], `every probe is answered within ${FAST_MS} ms`);

  // After the restart: ready again, without restarting the service.
  t.not(readyAfterMs, undefined, `/readyz is 200 again within ${READY_WITHIN_MS} ms of the restart`);
  t.deepEqual(samples.filter((s) => s.phase === 'restarted' && s.status !== 200 && !isRetryable503(s)), [], 'while recovering, webhooks get 200 or a retryable 503');
  t.deepEqual(samples.filter((s) => s.phase === 'ready' && s.status !== 200), [], 'once ready, every webhook is acknowledged');
  t.true(samples.filter((s) => s.phase === 'ready').length > SENDERS, 'the load ran after the restart');
  t.is((await walletsRead()).status, 200, 'the authenticated read works again');
  t.is(exited, undefined, 'the service never exited');
  t.is(service.pid, pid);
  t.is(service.exitCode, null);

  // 4. Nothing acknowledged is lost: every acknowledged webhook processed, every payment credited once.
  const acked = new Map(samples.filter((s) => s.status === 200).map((s) => [s.paymentId, s]));
  if (!postgres) throw new Error('PostgreSQL did not start again');
  const db = new pg.Pool({ connectionString: postgres.adminUrl, max: 2 });
  try {
    const settleStarted = performance.now();
    const unprocessed = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM pos_webhook_events_raw WHERE NOT processed')).rows[0]?.n);
    const backlog = await unprocessed();
    let pending = backlog;
    while (pending !== 0 && performance.now() - settleStarted < DRAINED_WITHIN_MS) {
      await sleep(100);
      pending = await unprocessed();
    }
    t.log(`inbox: ${backlog} webhooks unprocessed when the load stopped, ${pending} after ${ms(performance.now() - settleStarted)}`);
    t.is(pending, 0, `every stored webhook was processed within ${DRAINED_WITHIN_MS} ms of the load stopping`);
    const stored = await db.query<{ object_id: string; outcome: string | null; processed: boolean }>('SELECT object_id, outcome, processed FROM pos_webhook_events_raw');
    const inbox = new Map(stored.rows.map((r) => [r.object_id, r]));
    t.deepEqual([...acked.keys()].filter((id) => !inbox.has(id)), [], 'no acknowledged webhook is lost');
    t.deepEqual([...acked.keys()].filter((id) => !inbox.get(id)?.processed || inbox.get(id)?.outcome !== 'credited'), [], 'every acknowledged webhook is processed and credited');
    t.deepEqual([...new Set(stored.rows.map((r) => r.outcome))], ['credited'], 'every stored webhook was credited');
    const ackedAfter = [...acked.values()].filter((s) => s.phase === 'restarted' || s.phase === 'ready');
    t.true(ackedAfter.length > 0, 'webhooks were acknowledged after the restart');
    t.true(ackedAfter.every((s) => inbox.get(s.paymentId)?.outcome === 'credited'), 'the webhook worker processes what arrives after the restart');

    let credits: { payment_id: string; n: number }[] = [];
    for (let i = 0; i < 300; i++) {
      credits = (await db.query<{ payment_id: string; n: number }>(`SELECT payment_id, count(*)::int AS n FROM wallet_ledger WHERE kind = 'earn' GROUP BY payment_id`)).rows;
      const have = new Set(credits.map((r) => r.payment_id));
      if ([...acked.keys()].every((id) => have.has(id))) break;
      await sleep(100);
    }
    const credited = new Map(credits.map((r) => [r.payment_id, r.n]));
    t.deepEqual([...acked.keys()].filter((id) => credited.get(id) !== 1), [], 'each acknowledged payment credited exactly once');
    t.deepEqual(credits.filter((r) => r.n !== 1), [], 'no payment credited twice');
    const points = await db.query<{ p: string }>('SELECT coalesce(sum(points_balance), 0)::text AS p FROM wallets WHERE tenant_id = $1', [tenantId]);
    const expected = [...credited.keys()].reduce((sum, id) => sum + pointsFor(100 + (Number(id.slice(4)) % 50) * 100), 0);
    t.is(Number(points.rows[0]?.p), expected, 'balances are the rule applied to each credited payment once');
  } finally {
    await db.end();
  }

  // The projection runner recovered: every projection running (or owned elsewhere), none failed, none behind.
  let projections: { name: string; state: string; eventsBehind: number; lastError: string | null }[] = [];
  for (let i = 0; i < 100; i++) {
    const answer = await call('GET', '/api/v1/admin/projections', { token: adminToken });
    t.is(answer.status, 200);
    projections = answer.body;
    if (projections.every((p) => (p.state === 'running' || p.state === 'standby') && p.eventsBehind === 0 && p.lastError === null)) break;
    await sleep(100);
  }
  t.true(projections.length > 0);
  t.deepEqual(
    projections.filter((p) => !((p.state === 'running' || p.state === 'standby') && p.eventsBehind === 0 && p.lastError === null)),
    [],
    'every projection is running and caught up with the head',
  );
  const reconcile = await call('POST', '/api/v1/admin/reconcile', { token: adminToken, body: { tenantId } });
  t.is(reconcile.status, 200);
  t.deepEqual(reconcile.body.mismatches, [], 'the wallets equal the replay of their events');
  t.is(exited, undefined, 'the service never exited');
});
