/**
 * Rebuilding the wallets projection while events keep arriving and readers keep reading: readers never see a
 * half-built read model, and afterwards every event is applied exactly once (reconciliation finds nothing).
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { eventually } from '../support/eventually.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';

let service: TestService;
let call: ReturnType<typeof api>;
let admin: string;
const tenantId = 'tenant-rebuild';
const wallets = Array.from({ length: 40 }, () => uuid());
let appendedPoints = 0;

async function credit(walletId: string, points: number) {
  const result = await service.tally.store.append(
    walletStream(walletId),
    [
      {
        id: uuid(),
        type: 'PointsCredited',
        data: { walletId, tenantId, consumerId: `consumer-${walletId}`, paymentId: uuid(), points, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' },
      },
    ],
    'any',
  );
  appendedPoints += points;
  return result.position;
}

/** The table's storage parameters (pg_class.reloptions), e.g. `fillfactor=50`. */
async function storageOptions(table: string): Promise<string[]> {
  const { rows } = await service.database.pool.query<{ reloptions: string[] | null }>('SELECT reloptions FROM pg_class WHERE oid = $1::regclass', [table]);
  return rows[0]?.reloptions ?? [];
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const value = await eventually(probe, (v) => v !== undefined, { timeoutMs: ms, intervalMs: 25 });
  if (value === undefined) throw new Error(`timed out waiting for ${what}`);
  return value;
}

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: 'ops@rebuild.test' });
  call = api(service.url);
  admin = await tokenFor(uuid(), 'ops@rebuild.test');
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  let last;
  for (let i = 0; i < 600; i++) last = await credit(wallets[i % wallets.length]!, 1 + (i % 7));
  await service.tally.runner.waitForPosition(last!, 30_000);
});
test.after.always(async () => {
  await service?.stop();
});

test.serial('a rebuild under live appends and reads takes over atomically, losing and doubling nothing', async (t) => {
  t.deepEqual(await storageOptions('wallets'), ['fillfactor=50'], 'migrations/0008 leaves room for HOT balance updates');
  let appending = true;
  let appends = 0;
  const appender = (async () => {
    while (appending) {
      await credit(wallets[appends % wallets.length]!, 2);
      appends++;
      // Steady live traffic rather than a flood that only measures how fast two loops can race.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  // Only credits arrive, so what readers see may only grow; a half-built table would shrink it.
  let reading = true;
  let reads = 0;
  let shrank = 0;
  const reader = (async () => {
    let previous = { wallets: 0, points: 0 };
    while (reading) {
      const { rows } = await service.database.pool.query<{ wallets: number; points: string }>(
        'SELECT count(*)::int AS wallets, coalesce(sum(points_balance), 0)::text AS points FROM wallets WHERE tenant_id = $1',
        [tenantId],
      );
      const seen = { wallets: rows[0]!.wallets, points: Number(rows[0]!.points) };
      if (seen.wallets < previous.wallets || seen.points < previous.points) shrank++;
      previous = seen;
      reads++;
    }
  })();

  // Asked twice at once: one after the other, the first (a small read model) could already be done by the second.
  const answers = await Promise.all([0, 1].map(() => call('POST', '/api/v1/admin/projections/wallets/rebuild', { token: admin })));
  t.deepEqual(answers.map((a) => a.status).sort(), [202, 409], 'two rebuilds of one projection cannot run at once');
  const started = answers.find((a) => a.status === 202)!;
  t.like(started.body, { projection: 'wallets', state: 'running' });

  const listed = await call('GET', '/api/v1/admin/projections', { token: admin });
  t.true(listed.body.some((p: { name: string; rebuildable: boolean }) => p.name === 'wallets' && p.rebuildable));

  const done = await until(async () => {
    const job = await call('GET', `/api/v1/admin/jobs/${started.body.jobId}`, { token: admin });
    return job.body.state === 'completed' ? job.body : undefined;
  }, 'the rebuild to complete');
  t.is(done.progress, 1);
  t.true(done.eventsApplied >= 600);
  // Its progress series goes with the job (a rebuild that failed at 40 % read 0.4 for the life of the process).
  const progressShown = async () => /^tally_projection_rebuild_progress_ratio\{projection="wallets"\}/m.test(await (await fetch(`${service.url}/metrics`)).text());
  t.truthy(await until(async () => ((await progressShown()) ? undefined : true), 'the progress series to go once the rebuild ended'));

  appending = false;
  await appender;
  const head = await service.tally.store.headPosition();
  t.true(await service.tally.runner.waitForPosition(head!, 30_000));
  reading = false;
  await reader;
  t.log(`${appends} events appended and ${reads} reads made during the rebuild`);
  t.true(appends > 0 && reads > 0);
  t.is(shrank, 0, 'no reader saw a half-built read model');

  const { rows } = await service.database.pool.query<{ points: string }>('SELECT sum(points_balance)::text AS points FROM wallets WHERE tenant_id = $1', [tenantId]);
  t.is(Number(rows[0]!.points), appendedPoints, 'every event applied exactly once');
  const reconcile = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.deepEqual(reconcile.body.mismatches, []);
  const leftovers = await service.database.pool.query(`SELECT tablename FROM pg_tables WHERE tablename LIKE 'wallet%\\_\\_%'`);
  t.deepEqual(leftovers.rows, [], 'the old tables are dropped');
  t.deepEqual(await storageOptions('wallets'), ['fillfactor=50'], 'the rebuilt table keeps the live table\'s storage options');
});

test.serial('a job left running by a process that died can be cancelled; one that another process runs cannot', async (t) => {
  // What a rebuild's process leaves when it is killed: its job row still running, its lock gone with its connection.
  const jobId = uuid();
  await service.database.pool.query(`INSERT INTO projection_rebuilds (id, projection, state, suffix, events_total) VALUES ($1, 'audit', 'running', $2, NULL)`, [
    jobId,
    jobId.replace(/-/g, '').slice(0, 12),
  ]);
  const cancelled = await call('POST', `/api/v1/admin/jobs/${jobId}/cancel`, { token: admin });
  t.is(cancelled.status, 200, JSON.stringify(cancelled.body));
  t.is(cancelled.body.state, 'cancelled');

  // Running in another process: that process holds the projection's rebuild lock.
  const other = await service.database.pool.connect();
  try {
    await service.database.pool.query(`UPDATE projection_rebuilds SET state = 'running' WHERE id = $1`, [jobId]);
    await other.query(`SELECT pg_advisory_lock(hashtextextended('tally.rebuild:' || $1, 0))`, ['audit']);
    const refused = await call('POST', `/api/v1/admin/jobs/${jobId}/cancel`, { token: admin });
    t.is(refused.status, 409);
    t.regex(refused.body.error.message, /another process/);
  } finally {
    await other.query(`SELECT pg_advisory_unlock_all()`);
    other.release();
  }
  await service.database.pool.query(`DELETE FROM projection_rebuilds WHERE id = $1`, [jobId]);
});

test.serial('a rebuild can be cancelled and resumed; unknown projections and jobs are 404', async (t) => {
  const started = await call('POST', '/api/v1/admin/projections/wallets/rebuild', { token: admin });
  const cancelled = await call('POST', `/api/v1/admin/jobs/${started.body.jobId}/cancel`, { token: admin });
  t.is(cancelled.status, 200);
  t.true(['cancelled', 'completed'].includes(cancelled.body.state));
  if (cancelled.body.state === 'cancelled') {
    // As if migrations/0008 had run while the job was cancelled: the resumed job takes the live table's options again.
    const fresh = await service.database.pool.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE tablename LIKE 'wallets\\_\\_rb\\_%'`);
    for (const { tablename } of fresh.rows) await service.database.pool.query(`ALTER TABLE "${tablename}" RESET (fillfactor)`);
    const resumed = await call('POST', '/api/v1/admin/projections/wallets/rebuild', { token: admin });
    t.is(resumed.body.jobId, started.body.jobId, 'the cancelled job is resumed');
    await until(async () => {
      const job = await call('GET', `/api/v1/admin/jobs/${started.body.jobId}`, { token: admin });
      return job.body.state === 'completed' ? job.body : undefined;
    }, 'the resumed rebuild to complete');
  }
  t.deepEqual(await storageOptions('wallets'), ['fillfactor=50'], 'a resumed rebuild keeps the storage options too');
  t.is((await call('POST', '/api/v1/admin/projections/nope/rebuild', { token: admin })).status, 404);
  t.is((await call('GET', `/api/v1/admin/jobs/${uuid()}`, { token: admin })).status, 404);
  t.is((await call('POST', '/api/v1/admin/projections/wallet_credits/rebuild', { token: admin })).status, 400);
});
