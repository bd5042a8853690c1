/**
 * `GET /metrics` after real traffic: requests by route template and status with latencies, a processed and
 * a refused webhook and the ends of their acknowledgement bursts, appends and a conflict, a poll run, and every
 * projection's state, checkpoint and lag — without an id, email, token or secret anywhere in it.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { eventually } from '../support/eventually.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { paymentWebhook, webhookSender } from '../support/square-webhooks.ts';
import { ConcurrencyConflict } from '../../domain/ports/event-store.ts';

const WEBHOOK_KEY = 'metrics-webhook-signature-key';
const API_BASE_URL = 'https://api.tally.test';
const CRON_SECRET = 'cron-secret-for-metrics-0123456789';

let service: TestService;
let call: ReturnType<typeof api>;
const secrets: string[] = [TEST_JWT_SECRET, WEBHOOK_KEY, CRON_SECRET];
const identifiers: string[] = [];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The exposition's samples (comment lines left out). */
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
      if (!match) throw new Error(`not an exposition line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

/** The value of the one sample named `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

async function scrape() {
  const response = await fetch(`${service.url}/metrics`);
  const text = await response.text();
  return { response, text, samples: parse(text) };
}

async function register(role: 'client' | 'consumer', email: string, businessName?: string) {
  const id = uuid();
  const token = await tokenFor(id, email);
  identifiers.push(id, email, token);
  await call('POST', '/api/v1/me/register', { token, body: { role, ...(businessName ? { businessName } : {}) } });
  return { id, token };
}

test.before(async () => {
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@metrics.test',
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
    CRON_SECRET,
    // One webhook being acknowledged counts as a burst of them, so the webhooks below end bursts.
    WEBHOOK_ACK_PRIORITY_PENDING: '1',
  });
  call = api(service.url);
  const admin = await register('consumer', 'ops@metrics.test');
  const owner = await register('client', 'owner@metrics.test', 'Metrics Cafe');
  const approved = await call('PATCH', `/api/v1/admin/users/${owner.id}/approve`, { token: admin.token });
  identifiers.push(approved.body.user.tenantId);
  await call('GET', `/api/v1/no-such-route/${uuid()}`);

  const send = webhookSender(service.url, WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`);
  const webhook = paymentWebhook({ eventId: 'evt-metrics', merchantId: 'M-UNKNOWN', paymentId: 'pay-metrics', amount: 500 });
  await send(webhook, { signature: Buffer.alloc(32).toString('base64') });
  await send(webhook);
  const processed = await eventually(
    async () => (await call('GET', '/api/v1/admin/webhooks/evt-metrics', { token: admin.token })).body?.processed === true,
    Boolean,
    { timeoutMs: 5_000, intervalMs: 25 },
  );
  if (!processed) throw new Error('the webhook was not processed in time');

  const stream = `wallet-${uuid()}`;
  const event = () => ({ id: uuid(), type: 'MetricsProbed', data: { note: 'an event no projection acts on' } });
  await service.tally.store.append(stream, [event()], 'no_stream');
  await service.tally.store.append(stream, [event()], 'no_stream').catch((error: unknown) => {
    if (!(error instanceof ConcurrencyConflict)) throw error;
  });
  await call('POST', '/api/v1/internal/cron/square-poll-payments', { headers: { 'x-cron-secret': CRON_SECRET } });
  service.tally.metrics.rebuildProgress('audit', 0.25);
});
test.after.always(async () => {
  await service?.stop();
});

test('is public Prometheus text', async (t) => {
  const { response, samples } = await scrape();
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  t.true((value(samples, 'process_cpu_user_seconds_total') ?? 0) > 0, "Node's process metrics are included");
});

test('counts and times HTTP requests by route template and status', async (t) => {
  const { samples } = await scrape();
  t.is(value(samples, 'tally_http_requests_total', { method: 'POST', route: '/api/v1/me/register', status: '201' }), 2);
  const approve = { method: 'PATCH', route: '/api/v1/admin/users/:userId/approve', status: '200' };
  t.is(value(samples, 'tally_http_requests_total', approve), 1);
  t.is(value(samples, 'tally_http_request_duration_seconds_count', approve), 1);
  t.is(value(samples, 'tally_http_request_duration_seconds_bucket', { ...approve, le: '+Inf' }), 1);
  const seconds = value(samples, 'tally_http_request_duration_seconds_sum', approve) ?? 0;
  t.true(seconds > 0 && seconds < 10, `a plausible latency: ${seconds}s`);
  t.is(value(samples, 'tally_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1, 'unknown paths share one series');
  t.is(value(samples, 'tally_http_requests_total', { method: 'POST', route: '/api/v1/webhooks/square', status: '401' }), 1);
  t.is(value(samples, 'tally_http_requests_total', { method: 'POST', route: '/api/v1/webhooks/square', status: '200' }), 1);
});

test('counts webhooks by outcome and refused signatures', async (t) => {
  const { samples } = await scrape();
  t.is(value(samples, 'tally_webhooks_processed_total', { outcome: 'no_connection' }), 1);
  t.is(value(samples, 'tally_webhook_signature_failures_total'), 1);
  t.is(value(samples, 'tally_webhook_leases_taken_back_total'), 0, 'no worker died under this service');
});

test.serial('reports the webhook inbox: its backlog, how long the oldest due webhook has waited, and those given up on', async (t) => {
  const idle = await eventually(async () => (await scrape()).samples, (samples) => value(samples, 'tally_webhook_inbox_unprocessed') === 0, { timeoutMs: 5_000, intervalMs: 50 });
  t.is(value(idle, 'tally_webhook_inbox_oldest_due_age_seconds'), 0);
  const [givenUp, stuck] = [`evt-given-up-${uuid()}`, `evt-stuck-${uuid()}`];
  const pool = service.database.pool;
  const insert = `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, object_id, raw_body, headers) VALUES ($1, 'M-UNKNOWN', 'payment.updated', $1, '{}', '{}')`;
  await pool.query(insert, [givenUp]);
  await pool.query(insert, [stuck]);
  // One settled as failed after its last attempt; one due for 90 s and leased for an hour by no live worker.
  await pool.query(`UPDATE pos_webhook_events_raw SET processed = true, processed_at = now(), outcome = 'failed', attempts = 12 WHERE id = $1`, [givenUp]);
  await pool.query(`UPDATE pos_webhook_events_raw SET next_attempt_at = now() - interval '90 seconds', locked_until = now() + interval '1 hour', attempts = 1 WHERE id = $1`, [stuck]);
  try {
    const samples = await eventually(async () => (await scrape()).samples, (next) => value(next, 'tally_webhooks_failed') === 1, { timeoutMs: 5_000, intervalMs: 100 });
    t.is(value(samples, 'tally_webhook_inbox_unprocessed'), 1);
    t.true((value(samples, 'tally_webhook_inbox_oldest_due_age_seconds') ?? 0) >= 90);
  } finally {
    await pool.query('DELETE FROM pos_webhook_events_raw WHERE id = ANY($1)', [[givenUp, stuck]]);
  }
});

test('counts the ends of acknowledgement bursts', async (t) => {
  const ends = await eventually(async () => value((await scrape()).samples, 'tally_webhook_ack_bursts_ended_total') ?? 0, (n) => n >= 1, { timeoutMs: 5_000, intervalMs: 25 });
  // The two webhooks of the set-up: one burst each, or one for both when the second came within the first's quiet.
  t.true(ends === 1 || ends === 2, `ended ${ends} times`);
});

test('counts appends and concurrency conflicts by stream category', async (t) => {
  const { samples } = await scrape();
  t.true((value(samples, 'tally_eventstore_appends_total', { category: 'user' }) ?? 0) >= 3, 'two registrations and an approval');
  t.is(value(samples, 'tally_eventstore_appends_total', { category: 'workspace' }), 1);
  t.is(value(samples, 'tally_eventstore_events_appended_total', { category: 'wallet' }), 1);
  t.is(value(samples, 'tally_eventstore_concurrency_conflicts_total', { category: 'wallet' }), 1);
});

test('counts poll runs; refresh failures and rebuild progress have their series', async (t) => {
  const { text, samples } = await scrape();
  t.is(value(samples, 'tally_poll_runs_total'), 1);
  const lastRun = value(samples, 'tally_poll_last_run_timestamp_seconds') ?? 0;
  t.true(Math.abs(lastRun - Date.now() / 1000) < 300, 'the last run is recent');
  t.regex(text, /^# TYPE tally_square_token_refresh_failures_total counter$/m);
  t.is(value(samples, 'tally_projection_rebuild_progress_ratio', { projection: 'audit' }), 0.25);
});

test("reports every projection's state, checkpoint and lag", async (t) => {
  const head = await service.tally.store.headPosition();
  if (head) await service.tally.runner.waitForPosition(head, 10_000);
  const before = service.tally.runner.status();
  const names = before.map((s) => s.name);
  t.true(names.includes('audit'));
  // Reactors may append after the wait; the lag of a healthy runner then returns to zero.
  const samples = await eventually(
    async () => (await scrape()).samples,
    (s: Sample[]) => names.every((projection) => value(s, 'tally_projection_lag_events', { projection }) === 0),
    { timeoutMs: 5_000, intervalMs: 50 },
  );
  for (const projection of names) {
    t.is(value(samples, 'tally_projection_state', { projection, state: 'running' }), 1, projection);
    t.is(value(samples, 'tally_projection_state', { projection, state: 'failed' }), 0, projection);
    t.is(value(samples, 'tally_projection_lag_events', { projection }), 0, projection);
    t.is(value(samples, 'tally_projection_caught_up', { projection }), 1, projection);
    const checkpoint = value(samples, 'tally_projection_checkpoint_timestamp_seconds', { projection }) ?? 0;
    // A projection none of whose event types had been appended has no checkpoint, so no checkpoint time (which
    // projection that is depends on which of this file's tests ran first).
    if (before.find((s) => s.name === projection)?.position === undefined) continue;
    t.true(Math.abs(checkpoint - Date.now() / 1000) < 300, `${projection}'s checkpoint is a recent event`);
  }
});

test('carries no id, email, token or secret', async (t) => {
  const { text } = await scrape();
  for (const value of [...secrets, ...identifiers]) t.false(text.includes(value), `leaks ${value.slice(0, 12)}…`);
  t.false(text.includes('evt-metrics') || text.includes('M-UNKNOWN'), 'no webhook or merchant id');
});
