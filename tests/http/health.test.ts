import test from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { eventually } from '../support/eventually.ts';

let service: TestService;
test.before(async () => {
  service = await startTestService();
});
test.after.always(async () => {
  await service?.stop();
});

test('GET /healthz answers while the process is alive', async (t) => {
  const response = await fetch(`${service.url}/healthz`);
  t.is(response.status, 200);
  t.like(await response.json(), { status: 'ok' });
});

test('GET /readyz reports every dependency, and the request id comes back and is on the log lines', async (t) => {
  const response = await fetch(`${service.url}/readyz`, { headers: { 'x-request-id': 'trace-me-42' } });
  t.is(response.status, 200);
  t.is(response.headers.get('x-request-id'), 'trace-me-42');
  const body = (await response.json()) as { status: string; checks: Record<string, { ok: boolean }> };
  t.is(body.status, 'ready');
  t.deepEqual(Object.keys(body.checks).sort(), ['database', 'eventStore', 'migrations', 'projections', 'webhookAcknowledgements']);
  t.true(Object.values(body.checks).every((c) => c.ok));
  t.true(service.logs.some((line) => line.includes('"requestId":"trace-me-42"') && line.includes('"path":"/readyz"')));
});

test.serial('an append left open is named in /readyz (pid, database, age) and in the feed horizon age metric, without turning the service unready', async (t) => {
  const slow = await service.database.pool.connect();
  try {
    await slow.query('BEGIN');
    await slow.query(`SELECT * FROM append_events($1, 'no_stream', NULL, ARRAY[gen_random_uuid()], ARRAY['Held'], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])`, [
      `held-${Date.now()}`,
    ]);
    const { pid, database } = (await slow.query<{ pid: number; database: string }>('SELECT pg_backend_pid() AS pid, current_database() AS database')).rows[0]!;
    type Ready = { status: string; checks: { eventStore: { ok: boolean; detail?: { feedHeldBackBy?: { pid: number; database: string; ageSeconds: number } } } } };
    const ready = await eventually(
      async () => (await (await fetch(`${service.url}/readyz`)).json()) as Ready,
      (body) => body.checks.eventStore.detail?.feedHeldBackBy !== undefined,
      { timeoutMs: 5_000 },
    );
    // The event store stays ready (other checks, e.g. projections still starting, are not this test's concern).
    t.true(ready.checks.eventStore.ok);
    t.like(ready.checks.eventStore.detail?.feedHeldBackBy, { pid, database });
    t.true(ready.checks.eventStore.detail!.feedHeldBackBy!.ageSeconds >= 1);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const age = Number(/^tally_event_feed_horizon_age_seconds (\S+)$/m.exec(metrics)?.[1]);
    t.true(age >= 1, `tally_event_feed_horizon_age_seconds ${age}`);
  } finally {
    await slow.query('ROLLBACK').catch(() => undefined);
    slow.release();
  }
  // The next round of checks (an answer of the last READINESS_REUSE_MS may still be handed out) no longer names it.
  const after = await eventually(
    async () => (await (await fetch(`${service.url}/readyz`)).json()) as { checks: { eventStore: { detail?: unknown } } },
    (body) => body.checks.eventStore.detail === undefined,
    { timeoutMs: 5_000 },
  );
  t.is(after.checks.eventStore.detail, undefined);
});

test('an unknown route is a JSON 404 that names it; a malformed request id is replaced', async (t) => {
  const response = await fetch(`${service.url}/nowhere`, { headers: { 'x-request-id': 'bad id with spaces' } });
  t.is(response.status, 404);
  t.deepEqual(await response.json(), { error: { code: 'NOT_FOUND', message: 'No route for GET /nowhere' } });
  t.regex(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test.serial('readiness turns 503 with Retry-After while the database refuses connections, and recovers without a restart', async (t) => {
  const admin = service.database.pool;
  const name = (await admin.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
  const adminUrl = new URL(service.database.url);
  adminUrl.pathname = '/postgres';
  const { default: pg } = await import('pg');
  const server = new pg.Client({ connectionString: adminUrl.toString() });
  await server.connect();
  try {
    await server.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await server.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [name]);
    // An answer of the last READINESS_REUSE_MS may still be handed out: wait for the next round of checks.
    const down = await eventually(() => fetch(`${service.url}/readyz`), (r) => r.status === 503, { timeoutMs: 5_000 });
    t.is(down.status, 503);
    t.is(down.headers.get('retry-after'), '5');
    const body = (await down.json()) as { status: string; checks: { database: { ok: boolean } } };
    t.is(body.status, 'not_ready');
    t.false(body.checks.database.ok);
    t.is((await fetch(`${service.url}/healthz`)).status, 200, 'the process itself is alive');
  } finally {
    await server.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await server.end();
  }
  const status = await eventually(async () => (await fetch(`${service.url}/readyz`)).status, (s) => s === 200, { timeoutMs: 5_000 });
  t.is(status, 200);
});

test('GET /openapi.json lists every mounted operation with how it authenticates', async (t) => {
  const response = await fetch(`${service.url}/openapi.json`);
  t.is(response.status, 200);
  const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, { security: unknown[]; 'x-access': string }>> };
  t.is(document.openapi, '3.1.0');
  const operations = Object.values(document.paths).flatMap((p) => Object.keys(p));
  t.is(operations.length, service.tally.routes.length);
  t.deepEqual(document.paths['/api/v1/me/register']?.post?.security, [{ bearer: [] }]);
  t.is(document.paths['/api/v1/webhooks/square']?.post?.['x-access'], 'public');
  t.truthy(document.paths['/api/v1/client/reward-rules/{ruleId}/activate']?.post);
});
