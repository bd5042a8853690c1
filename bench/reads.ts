/**
 * `node --import=tsx bench/reads.ts [--quick] [--consumers=<n>] [--runs=<n>] [--rounds=<n>] [--slice=<ms>] [--tenants=<n>] [--cpu] [--profile] [--perf] [--log-level=<level>] > /dev/null`:
 * where the time of `GET /api/v1/me/wallets` goes, against a bare Koa route running the same SQL.
 *
 * The focused version of bench/ingest.ts's read phase, without the webhook phase: Tally runs in this process
 * through `startTally` against a fresh database; consumers register through the API (their `user-<id>`
 * streams are real), merchants register and are approved (workspaces with business names), and each consumer
 * is given one wallet at one merchant by inserting the wallets read-model row directly (bench-only seeding:
 * the row is what the wallets projection would have written; both sides read it with the same SQL).
 * Correctness: every request of the load answered 200, and for a sample of consumers the route's answer is exactly
 * the one wallet the setup seeded for them (balance, tenant, business name, lifetime figures, times), known from the
 * seeding itself rather than from the route's own query.
 *
 * The load comes from bench/ingest-load.ts (`reads` mode) in a separate process: closed-loop GETs at
 * concurrency 64 in alternating slices, Tally vs the bare route, `--runs` times; each run reports its ratio.
 * `--cpu`: also CPU per request (this process and PostgreSQL) of each side alone (both slices on one side).
 * `--profile`: also a CPU profile of this process while only Tally's route is loaded, then while only the bare route
 *   is (self time, top 25 each; the files /tmp/reads-tally.cpuprofile and /tmp/reads-bare.cpuprofile).
 * `--perf`: also `perf record -e cpu-clock -g` of this process (CPU, not wall time: syscalls included) while
 *   only Tally's route is loaded, to /tmp/reads-tally.perf.data (run `node --perf-basic-prof` for JS names).
 * `--via-koa`: the baseline is Tally's own route through Koa instead of the bare route (the path with a trailing slash,
 *   which the direct path leaves to Koa: http/direct-route.ts), in the same alternating slices, so the ratio is what
 *   serving the route ahead of Koa gives, everything else equal; results to bench/results/reads-via-koa.json.
 * `--quick`: 200 consumers, 5 merchants, one run of 2 slices of 500 ms per side (a smoke test of the benchmark).
 * `--log-level`: Tally's log level (default `info`, as in production: one line per request, to stdout, which is
 *   Tally's own log here: run with `> /dev/null`; the report goes to stderr and bench/results/reads.json).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import Koa from 'koa';
import { startTally, type Tally } from '../main.ts';
import { createLogger } from '../adapters/logger.ts';
import { walletsOfConsumer } from '../projections/read/wallets.ts';
import {
  BENCH_DIR,
  benchApi,
  formatRatio,
  log,
  machineInfo,
  machineSummary,
  mapLimit,
  now,
  reportCorrectness,
  runBenchmark,
  withBenchDatabase,
  withClient,
  writeResults,
  type LoadResult,
} from './support.ts';
import { cpuSnapshot, cpuSplit, postgresPids, withCpuProfile, type HotFunction } from './profile.ts';
import type { ReadSpec } from './ingest-load.ts';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const numberFlag = (name: string, fallback: number) => {
  const raw = flag(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive whole number`);
  return value;
};
const unknown = argv.filter((a) => !['--quick', '--cpu', '--profile', '--perf', '--via-koa'].includes(a) && !/^--(consumers|tenants|runs|rounds|slice|log-level)=/.test(a));
if (unknown.length) throw new Error(`Unknown argument(s): ${unknown.join(' ')}`);

const QUICK = argv.includes('--quick');
const CONSUMERS = numberFlag('consumers', QUICK ? 200 : 1000);
const TENANTS = numberFlag('tenants', QUICK ? 5 : 20);
const RUNS = numberFlag('runs', QUICK ? 1 : 3);
const ROUNDS = numberFlag('rounds', QUICK ? 2 : 4);
const SLICE_MS = numberFlag('slice', QUICK ? 500 : 1000);
const CPU = argv.includes('--cpu');
const PROFILE = argv.includes('--profile');
/** `perf record` (cpu-clock, with kernel stacks) of this process while only Tally's route is loaded; run node with --perf-basic-prof. */
const PERF = argv.includes('--perf');
const VIA_KOA = argv.includes('--via-koa');
const LOG_LEVEL = flag('log-level') ?? 'info';
const CONCURRENCY = 64;
const SETUP_CONCURRENCY = 16;

const JWT_SECRET = 'bench-jwt-secret-that-is-long-enough-for-hs256-0123456789';
const ADMIN_EMAIL = 'ops@tally.bench';

/** What the load generator's `reads` mode writes: `warmupRequests`, the requests of its warm-up, not in `result`. */
type ReadOutput = { result: Record<'tally' | 'bare', LoadResult>; statuses: Record<string, Record<number, number>>; warmupRequests: number };

async function runLoad(spec: ReadSpec): Promise<ReadOutput> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-reads-'));
  try {
    const specFile = path.join(dir, 'spec.json');
    const outFile = path.join(dir, 'out.json');
    await writeFile(specFile, JSON.stringify(spec));
    const child = spawn(process.execPath, ['--import=tsx', path.join(BENCH_DIR, 'ingest-load.ts'), 'reads', specFile, outFile], {
      cwd: path.dirname(BENCH_DIR),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`the load generator exited with ${code}`);
    return JSON.parse(await readFile(outFile, 'utf8')) as ReadOutput;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const fmt = (r: LoadResult) => `${Math.round(r.rate)}/s p50 ${r.latencyMs.p50.toFixed(1)} ms p99 ${r.latencyMs.p99.toFixed(1)} ms`;

async function main(): Promise<void> {
  await withBenchDatabase(async (db) => {
    const machine = await machineInfo(db);
    const pgPids = db.embedded ? await withClient(db.adminUrl, (c) => postgresPids(c)) : undefined;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-data-'));
    let tally: Tally | undefined;
    let bareServer: http.Server | undefined;
    try {
      const env: NodeJS.ProcessEnv = {
        NODE_ENV: 'production',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL,
        DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        AUTH_JWT_SECRET: JWT_SECRET,
        ADMIN_EMAILS: ADMIN_EMAIL,
        IDENTITY_HASH_KEY: 'bench-identity-hash-key-0123456789abcdef',
        ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
        CRON_SECRET: 'bench-cron-secret-0123456789',
        API_BASE_URL: 'https://api.tally.bench',
        FRONTEND_URL: 'https://app.tally.bench',
      };
      // As in production: the request lines are written to stdout by createLogger's own destination, with the
      // secrets masked (run with stdout to /dev/null; the report goes to stderr and bench/results/reads.json).
      const tallyLog = createLogger({ level: LOG_LEVEL, secrets: [JWT_SECRET] });
      tally = await startTally({ env, log: tallyLog });
      log(`Tally listening on ${tally.url} (log level ${LOG_LEVEL})`);

      // ------------------------------------------------------------------ setup
      const { call, expectStatus: expect, register } = benchApi(tally.url, JWT_SECRET);
      const t0 = now();
      const admin = await register('consumer', ADMIN_EMAIL);
      const tenants = await mapLimit(Array.from({ length: TENANTS }, (_, i) => i), SETUP_CONCURRENCY, async (i) => {
        const client = await register('client', `owner${i}@merchant${i}.bench`, { businessName: `Bench Merchant ${i}` });
        expect('approve', await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: admin.token }), 200);
        return client;
      });
      const consumers = await mapLimit(Array.from({ length: CONSUMERS }, (_, j) => j), SETUP_CONCURRENCY, (j) => register('consumer', `consumer${j}@bench.test`));
      const head = await tally.store.headPosition();
      if (head && !(await tally.runner.waitForPosition(head, 120_000))) throw new Error('projections did not catch up after the setup');
      const { rows: workspaces } = await tally.pool.query<{ tenant_id: string }>('SELECT tenant_id FROM workspaces ORDER BY tenant_id');
      if (workspaces.length !== TENANTS) throw new Error(`expected ${TENANTS} workspaces, found ${workspaces.length} (${tenants.length} clients approved)`);
      const at = new Date();
      await tally.pool.query(
        `INSERT INTO wallets (id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, created_at, updated_at)
         SELECT gen_random_uuid()::text, t, c, 100 + i, 100 + i, 0, $3, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(t, c, i)`,
        [consumers.map((_, j) => workspaces[j % TENANTS]!.tenant_id), consumers.map((c) => c.id), at],
      );
      await tally.pool.query('ANALYZE wallets; ANALYZE workspaces; ANALYZE events');
      log(`Setup: ${TENANTS} approved merchants, ${CONSUMERS} consumers with one wallet each (${((now() - t0) / 1000).toFixed(1)} s)`);

      // ------------------------------------------------------------------ the bare route
      const bare = new Koa();
      bare.use(async (koa) => {
        koa.body = (await walletsOfConsumer(tally!.pool, koa.get('x-consumer-id'))).wallets;
      });
      bareServer = http.createServer(bare.callback());
      bareServer.keepAliveTimeout = 5000;
      await new Promise<void>((resolve) => bareServer!.listen(0, '127.0.0.1', resolve));
      const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}/bare/wallets`;
      const sample = await call('GET', '/api/v1/me/wallets', { token: consumers[0]!.token });
      if (sample.status !== 200 || !Array.isArray(sample.body) || sample.body.length !== 1) throw new Error(`GET /api/v1/me/wallets: ${sample.status} ${JSON.stringify(sample.body)}`);

      const tallySide = { url: `${tally.url}/api/v1/me/wallets`, headers: consumers.map((c) => ({ authorization: `Bearer ${c.token}` })) };
      const bareSide = VIA_KOA
        ? { url: `${tally.url}/api/v1/me/wallets/`, headers: tallySide.headers }
        : { url: bareUrl, headers: consumers.map((c) => ({ 'x-consumer-id': c.id })) };
      const runs: { tally: LoadResult; bare: LoadResult; ratio: number; errors: string[] }[] = [];
      log(`Reads: ${RUNS} runs of ${ROUNDS} alternating slices of ${SLICE_MS} ms per side, concurrency ${CONCURRENCY}`);
      for (let r = 0; r < RUNS; r++) {
        const out = await runLoad({ concurrency: CONCURRENCY, rounds: ROUNDS, sliceMs: SLICE_MS, tally: tallySide, bare: bareSide });
        const errors = Object.entries(out.statuses).flatMap(([side, st]) => Object.entries(st).filter(([s]) => s !== '200').map(([s, k]) => `${side} ${s}×${k}`));
        const ratio = out.result.tally.rate / out.result.bare.rate;
        runs.push({ tally: out.result.tally, bare: out.result.bare, ratio, errors });
        log(`  run ${r + 1}: Tally ${fmt(out.result.tally)} | bare ${fmt(out.result.bare)} | ratio ${formatRatio(ratio)}${errors.length ? ` | non-200: ${errors.join(', ')}` : ''}`);
      }
      const sum = (f: (x: (typeof runs)[number]) => number) => runs.reduce((s, x) => s + f(x), 0);
      const tallyRate = sum((x) => x.tally.operations) / (sum((x) => x.tally.elapsedMs) / 1000);
      const bareRate = sum((x) => x.bare.operations) / (sum((x) => x.bare.elapsedMs) / 1000);
      const meanP99 = (side: 'tally' | 'bare') => sum((x) => x[side].latencyMs.p99) / runs.length;

      // ------------------------------------------------------------------ CPU per request, each side alone
      const cpu: Record<
        string,
        { requests: number; nodeUsPerRequest: number; nodeSystemUsPerRequest: number; postgresUsPerRequest: number | null; rate: number; scavengesPer1000: number; gcMsPer1000: number }
      > = {};
      if (CPU) {
        // This process's garbage collections while each side is loaded alone: a side that allocates more per request
        // meets more scavenges, each of which pauses every request in flight (the tail).
        const collections: { kind: number; ms: number }[] = [];
        const gcObserver = new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) collections.push({ kind: (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0, ms: entry.duration });
        });
        gcObserver.observe({ entryTypes: ['gc'] });
        for (const [name, side] of [['tally', tallySide], ['bare', bareSide], ['tally (again)', tallySide], ['bare (again)', bareSide]] as const) {
          const before = await cpuSnapshot(pgPids);
          const collectedBefore = collections.length;
          const out = await runLoad({ concurrency: CONCURRENCY, rounds: 2, sliceMs: SLICE_MS, tally: side, bare: side });
          const after = await cpuSnapshot(pgPids);
          const collected = collections.slice(collectedBefore);
          const split = cpuSplit(before, after);
          // The load generator's warm-up is in the CPU window but not in the counts: its requests are added.
          const requests = out.result.tally.operations + out.result.bare.operations;
          const rate = (requests / (out.result.tally.elapsedMs + out.result.bare.elapsedMs)) * 1000;
          const withWarmup = requests + out.warmupRequests;
          cpu[name] = {
            requests,
            rate,
            nodeUsPerRequest: (split.nodeMs / withWarmup) * 1000,
            nodeSystemUsPerRequest: ((after.nodeSystem - before.nodeSystem) / withWarmup) * 1000,
            postgresUsPerRequest: split.postgresMs === null ? null : (split.postgresMs / withWarmup) * 1000,
            scavengesPer1000: (collected.filter((c) => c.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR).length / withWarmup) * 1000,
            gcMsPer1000: (collected.reduce((sum, c) => sum + c.ms, 0) / withWarmup) * 1000,
          };
          log(`  CPU, ${name} alone: ${Math.round(rate)}/s; this process ${cpu[name]!.nodeUsPerRequest.toFixed(0)} µs (system ${cpu[name]!.nodeSystemUsPerRequest.toFixed(0)}) + PostgreSQL ${cpu[name]!.postgresUsPerRequest?.toFixed(0) ?? '?'} µs per request; ` +
              `${cpu[name]!.scavengesPer1000.toFixed(2)} scavenges and ${cpu[name]!.gcMsPer1000.toFixed(1)} ms of GC pauses per 1,000 requests`);
        }
        gcObserver.disconnect();
      }

      // ------------------------------------------------------------------ profile of Tally's route alone
      let hot: HotFunction[] | undefined;
      let hotBare: HotFunction[] | undefined;
      if (PROFILE) {
        // Each side alone, Tally's then the bare route's, so that the two profiles can be compared per request.
        const pool = tally.pool;
        const query = pool.query;
        for (const [name, side] of [['tally', tallySide], ['bare', bareSide]] as const) {
          // The statements the process sent meanwhile, by their first words (the route's and the background's).
          const sent = new Map<string, number>();
          pool.query = function (this: typeof pool, ...args: unknown[]) {
            const text = typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: unknown } | undefined)?.text ?? '');
            const label = text.replace(/\s+/g, ' ').trim().slice(0, 40);
            sent.set(label, (sent.get(label) ?? 0) + 1);
            return (query as (...a: unknown[]) => unknown).apply(this, args);
          } as typeof pool.query;
          const profiled = await withCpuProfile(`reads-${name}`, () => runLoad({ concurrency: CONCURRENCY, rounds: 2, sliceMs: SLICE_MS, tally: side, bare: side })).finally(() => {
            pool.query = query;
          });
          const requests = profiled.value.result.tally.operations + profiled.value.result.bare.operations;
          if (name === 'tally') hot = profiled.hot;
          else hotBare = profiled.hot;
          log(`Statements through the pool while the ${name} route was loaded (${requests} requests): ${[...sent].map(([l, n]) => `${(n / requests).toFixed(3)} × ${l}`).join('; ')}`);
          log(`CPU profile of the ${name} route alone (${profiled.file}, ${requests} requests), self time, top 25:`);
          for (const h of profiled.hot) log(`  ${(h.share * 100).toFixed(1).padStart(5)}%  ${String(h.selfMs).padStart(5)} ms  ${h.function}`);
        }
      }

      if (PERF) {
        const file = path.join(os.tmpdir(), 'reads-tally.perf.data');
        const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '2999', '-g', '--no-inherit', '-p', String(process.pid), '-o', file], { stdio: ['ignore', 'ignore', 'inherit'] });
        await new Promise((resolve) => setTimeout(resolve, 500));
        await runLoad({ concurrency: CONCURRENCY, rounds: 2, sliceMs: SLICE_MS, tally: tallySide, bare: tallySide });
        const exited = new Promise((resolve) => perf.once('exit', resolve));
        perf.kill('SIGINT');
        await exited;
        log(`perf data: ${file}`);
      }

      // What the route answers must be what the setup seeded, known without the route's query: consumer j holds exactly
      // one wallet, at workspaces[j % TENANTS] (the merchant whose owner registered it, so its business name is the one
      // that owner registered with), with 100 + (j + 1) points (WITH ORDINALITY counts from 1), all of them earned,
      // none redeemed, locked or expired, created and updated at the seeding's time.
      const nameOfOwner = new Map(tenants.map((client, i) => [client.id, `Bench Merchant ${i}`]));
      const { rows: owners } = await tally.pool.query<{ tenant_id: string; owner_user_id: string }>('SELECT tenant_id, owner_user_id FROM workspaces');
      const businessNameOf = new Map(owners.map((w) => [w.tenant_id, nameOfOwner.get(w.owner_user_id)]));
      const step = Math.max(1, Math.floor(CONSUMERS / 50));
      const checked = consumers.map((consumer, j) => ({ consumer, j })).filter(({ j }) => j % step === 0);
      const differing: string[] = [];
      for (const { consumer, j } of checked) {
        const tenantId = workspaces[j % TENANTS]!.tenant_id;
        const points = 100 + (j + 1);
        const expected = {
          consumerId: consumer.id,
          tenantId,
          businessName: businessNameOf.get(tenantId) ?? `(no owner registered ${tenantId})`,
          balance: points,
          available: points,
          locked: 0,
          lifetimeEarned: points,
          lifetimeRedeemed: 0,
          lifetimeExpired: 0,
          createdAt: at.toISOString(),
          updatedAt: at.toISOString(),
        };
        const viaTally = await call('GET', '/api/v1/me/wallets', { token: consumer.token });
        const wallets = Array.isArray(viaTally.body) ? (viaTally.body as Record<string, unknown>[]) : [];
        const got = wallets.length === 1 ? Object.fromEntries(Object.keys(expected).map((k) => [k, wallets[0]![k]])) : undefined;
        if (viaTally.status !== 200 || wallets.length !== 1 || JSON.stringify(got) !== JSON.stringify(expected)) {
          differing.push(`consumer ${j}: HTTP ${viaTally.status}, ${wallets.length} wallet(s)${got ? ` ${JSON.stringify(got)}, seeded ${JSON.stringify(expected)}` : ''}`);
        }
      }
      const failedRequests = runs.flatMap((x) => x.errors);

      const summary = {
        quick: QUICK,
        baseline: VIA_KOA ? 'the same route through Koa' : 'the bare route',
        machine: machineSummary(machine),
        size: { consumers: CONSUMERS, tenants: TENANTS, runs: RUNS, rounds: ROUNDS, sliceMs: SLICE_MS, logLevel: LOG_LEVEL },
        tally: { rate: tallyRate, p99: meanP99('tally') },
        bare: { rate: bareRate, p99: meanP99('bare') },
        ratio: tallyRate / bareRate,
        ratios: runs.map((x) => x.ratio),
        cpu,
        hot,
        hotBare,
      };
      log(`Results written to ${await writeResults(VIA_KOA ? 'reads-via-koa' : 'reads', summary)}`);
      log(`Overall: Tally ${Math.round(tallyRate)}/s (p99 ${meanP99('tally').toFixed(1)} ms) vs bare ${Math.round(bareRate)}/s (p99 ${meanP99('bare').toFixed(1)} ms): ${formatRatio(tallyRate / bareRate)}`);
      reportCorrectness(
        differing.length === 0 && failedRequests.length === 0,
        `${checked.length - differing.length} of ${checked.length} sampled consumers got from GET /api/v1/me/wallets exactly the one wallet the setup seeded ` +
          `(balance, tenant, business name, lifetime figures, times)${differing.length ? ` (differ: ${differing.slice(0, 3).join('; ')})` : ''}; non-200 answers under load: ${failedRequests.length ? failedRequests.join(', ') : 'none'}`,
      );
    } finally {
      await new Promise<void>((resolve) => (bareServer ? bareServer.close(() => resolve()) : resolve()));
      await tally?.stop().catch((error) => log(`Tally did not stop cleanly: ${String(error)}`));
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 'tally_bench_reads');
}

runBenchmark(main);
