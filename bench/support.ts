/**
 * Shared helpers for the benchmarks in `bench/`: a throwaway PostgreSQL database, closed-loop load
 * generation, timing and percentiles, and result reporting (Markdown to stdout, JSON to `bench/results/`).
 *
 * Every benchmark compares Tally against a baseline measured in the same run on the same server, so numbers
 * from different machines are never compared with each other: only the ratios are meant to travel.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../adapters/postgres/embedded.ts';
import { runMigrations } from '../adapters/postgres/migrate.ts';
import { v4 as uuid } from 'uuid';
import { api, tokenFor } from '../tests/support/http.ts';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

/** Progress goes to stderr so that stdout carries only the report (and can be piped into a file or PR). */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

export interface BenchFlags {
  /** Smaller sizes and shorter runs, for smoke-testing the benchmark itself; not for conclusions. */
  quick: boolean;
}

export function parseFlags(argv: readonly string[] = process.argv.slice(2)): BenchFlags {
  const known = new Set(['--quick']);
  const unknown = argv.filter((arg) => !known.has(arg));
  if (unknown.length) throw new Error(`Unknown argument(s): ${unknown.join(' ')} (supported: ${[...known].join(' ')})`);
  return { quick: argv.includes('--quick') };
}

// ---------------------------------------------------------------------------------------------------------
// Database provisioning
// ---------------------------------------------------------------------------------------------------------

export interface BenchDatabase {
  /** Connection string of the migrated benchmark database. */
  url: string;
  /** Connection string of the server's `postgres` database (for CREATE/DROP DATABASE). */
  adminUrl: string;
  name: string;
  /** True when the server is an embedded one started for this run (we own it: CHECKPOINT etc. are fine). */
  embedded: boolean;
  /** Drops the database, stops the embedded server and removes its directory. Idempotent. */
  dispose(): Promise<void>;
}

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * A fresh, migrated database: `<prefix>_<random>` on the server named by DATABASE_URL, or on an embedded
 * server in a temporary directory when DATABASE_URL is unset (as tests/run.ts does). A fresh database keeps
 * the runs independent of whatever data a shared server holds, and is dropped again by `dispose`.
 */
export async function provisionDatabase(prefix = 'tally_bench', serverSettings: readonly string[] = []): Promise<BenchDatabase> {
  let embedded: EmbeddedPostgresServer | undefined;
  let tmp: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-pg-'));
    // Run as root, the embedded server runs as `postgres` and must be able to enter the directory.
    await chmod(tmp, 0o755);
    log('Starting an embedded PostgreSQL server...');
    embedded = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'data'), settings: [...serverSettings] });
    adminUrl = embedded.adminUrl;
  }
  const name = `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
  const serverUrl = adminUrl;
  let disposed = false;
  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    await withClient(serverUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch((error) =>
      log(`Could not drop benchmark database ${name}: ${String(error)}`),
    );
    await embedded?.stop().catch((error) => log(`Could not stop the embedded server: ${String(error)}`));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  };
  try {
    await withClient(serverUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
    const url = databaseUrl(serverUrl, name);
    await runMigrations(url);
    return { url, adminUrl: serverUrl, name, embedded: embedded !== undefined, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * Runs `body` against a fresh database and always cleans up, also on Ctrl-C: a benchmark interrupted halfway
 * must not leave a database on a shared server or a PostgreSQL process behind.
 */
export async function withBenchDatabase<T>(body: (db: BenchDatabase) => Promise<T>, prefix?: string, serverSettings?: readonly string[]): Promise<T> {
  const db = await provisionDatabase(prefix, serverSettings);
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n${signal}: cleaning up...`);
    db.dispose().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await body(db);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await db.dispose();
  }
}

export async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/**
 * A pool whose connections are all open before the clock starts, so connection setup (TLS, auth, backend
 * start-up) is never part of a measurement.
 */
export async function openPool(url: string, size: number): Promise<pg.Pool> {
  // Idle connections stay open (pg closes them after 10 s by default): a slice must not pay for new ones, and the
  // server's CPU is read from the processes that were there at the start (bench/profile.ts).
  const pool = new pg.Pool({ connectionString: url, max: size, idleTimeoutMillis: 0 });
  pool.on('error', (error) => log(`idle connection error: ${String(error)}`));
  const clients = await Promise.all(Array.from({ length: size }, () => pool.connect()));
  for (const client of clients) client.release();
  return pool;
}

/** Resolves once no query is running or queued on the pool, e.g. fire-and-forget work a contender left. */
export async function waitForIdle(pool: pg.Pool): Promise<void> {
  while (pool.waitingCount > 0 || pool.idleCount < pool.totalCount) await new Promise((resolve) => setTimeout(resolve, 1));
}

/**
 * Flushes dirty buffers before a measurement, so a checkpoint triggered by the previous measurement's writes
 * does not land in this one. Needs superuser or pg_checkpoint; skipped quietly on a server where we lack it.
 */
export async function checkpoint(db: { query: (sql: string) => Promise<unknown> }): Promise<void> {
  await db.query('CHECKPOINT').catch(() => undefined);
}

/**
 * Wraps a pool to see and alter what the code under test sends, without touching that code: counts queries
 * (round trips) by a label, and can rewrite a statement or answer it locally (an empty result) instead of
 * sending it. This is how a benchmark prototypes a one-line change in an adapter and measures its effect.
 */
export interface QueryInterceptor {
  /** Groups queries for counting, e.g. `append` / `notify`. */
  label?: (sql: string) => string;
  /** The SQL to send instead, or undefined to send it unchanged. */
  rewrite?: (sql: string) => string | undefined;
  /**
   * A name to send the statement as a named prepared statement under (parsed and planned once per
   * connection instead of on every call), or undefined to send it unnamed as the caller did.
   */
  prepareAs?: (sql: string) => string | undefined;
  /**
   * Takes the statement away from the pool: return a promise of its result (e.g. an empty one to drop it, or
   * one from another connection), or undefined to send it through the pool as usual.
   */
  divert?: (sql: string, params: unknown[]) => Promise<unknown> | undefined;
}

/** An empty result, for diverting a statement whose result the caller ignores. */
export const EMPTY_RESULT = Object.freeze({ rows: [], rowCount: 0, command: 'SELECT', fields: [], oid: 0 });

export interface InstrumentedPool {
  /** Give this to the code under test. */
  pool: pg.Pool;
  /** Queries per label; diverted ones count as `<label> (diverted)`: they did not go through the pool. */
  counts: Map<string, number>;
  /** Statements each mechanism touched: all zero means a prototype matched nothing (the code changed). */
  rewritten: number;
  diverted: number;
  prepared: number;
  /** The last statement and parameters sent per label, e.g. to EXPLAIN what the adapter really runs. */
  last: Map<string, { sql: string; params: unknown[] }>;
}

export function instrumentPool(target: pg.Pool, interceptor: QueryInterceptor = {}): InstrumentedPool {
  const stats: InstrumentedPool = { pool: target, counts: new Map(), rewritten: 0, diverted: 0, prepared: 0, last: new Map() };
  const query = (sqlOrConfig: unknown, params?: unknown, callback?: unknown): unknown => {
    const send = target.query.bind(target) as (...args: unknown[]) => unknown;
    // The adapters send text, or a query config (`{ text, values, name? }`: named statements are prepared once per connection).
    const config = typeof sqlOrConfig === 'object' && sqlOrConfig !== null ? (sqlOrConfig as { text?: unknown; values?: unknown; name?: unknown }) : undefined;
    if (config && typeof config.text !== 'string') return send(sqlOrConfig, params, callback);
    if (config) callback = params;
    const text = config ? (config.text as string) : (sqlOrConfig as string);
    const values = config ? config.values : params;
    const label = interceptor.label?.(text) ?? 'query';
    const count = (key: string) => stats.counts.set(key, (stats.counts.get(key) ?? 0) + 1);
    const diverted = interceptor.divert?.(text, Array.isArray(values) ? values : []);
    if (diverted) {
      stats.diverted++;
      count(`${label} (diverted)`);
      return diverted;
    }
    count(label);
    const rewritten = interceptor.rewrite?.(text);
    const changed = rewritten !== undefined && rewritten !== text;
    if (changed) stats.rewritten++;
    const sql = changed ? rewritten : text;
    stats.last.set(label, { sql, params: Array.isArray(values) ? values : [] });
    // A named statement whose text changed gets another name, so the connection does not run the prepared original.
    const ownName = typeof config?.name === 'string' ? (changed ? `${config.name}_bench` : config.name) : undefined;
    const prepareAs = interceptor.prepareAs?.(sql);
    if (prepareAs !== undefined) stats.prepared++;
    // A name the interceptor gives wins: two variants rewriting one named statement must not share `<name>_bench`.
    const name = prepareAs ?? ownName;
    const out = name !== undefined ? { name, text: sql, values } : config ? { text: sql, values } : undefined;
    if (out) return callback === undefined ? send(out) : send(out, callback);
    return callback === undefined ? send(sql, values) : send(sql, values, callback);
  };
  stats.pool = new Proxy(target, { get: (t, prop) => (prop === 'query' ? query : Reflect.get(t, prop, t)) });
  return stats;
}

// ---------------------------------------------------------------------------------------------------------
// Machine information
// ---------------------------------------------------------------------------------------------------------

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  platform: string;
  node: string;
  postgres: string;
  postgresServer: 'embedded' | 'DATABASE_URL';
  /**
   * 1-minute load average when the run started. Above the core count, other work competed for the CPU:
   * absolute rates are then low and noisy, and only the interleaved ratios remain meaningful.
   */
  loadAverage: number;
  /** Settings that move these numbers the most; recorded so a surprising result can be explained later. */
  postgresSettings: Record<string, string>;
}

const INTERESTING_SETTINGS = ['shared_buffers', 'synchronous_commit', 'fsync', 'wal_sync_method', 'commit_delay', 'max_connections', 'jit'];

export async function machineInfo(db: BenchDatabase): Promise<MachineInfo> {
  return withClient(db.url, async (client) => {
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    const settings = await client.query<{ name: string; setting: string; unit: string | null }>(
      'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)',
      [INTERESTING_SETTINGS],
    );
    return {
      cpus: os.availableParallelism?.() ?? os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      node: process.version,
      postgres: version,
      postgresServer: db.embedded ? 'embedded' : 'DATABASE_URL',
      loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
      postgresSettings: Object.fromEntries(settings.rows.map((r) => [r.name, r.unit ? `${r.setting} (${r.unit})` : r.setting])),
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------------------

export const now = (): number => performance.now();

/** Nearest-rank percentile of an ascending array; `p` in [0, 100]. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface LoadResult {
  operations: number;
  elapsedMs: number;
  /** Operations per second over the whole run. */
  rate: number;
  latencyMs: { p50: number; p99: number; max: number };
}

/** One worker's operation; the worker issues it again as soon as the previous one finished. */
export type Operation = () => Promise<unknown>;

function summarise(latencies: number[], elapsedMs: number): LoadResult {
  const sorted = Float64Array.from(latencies).sort();
  return {
    operations: latencies.length,
    elapsedMs,
    rate: (latencies.length / elapsedMs) * 1000,
    latencyMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? Number.NaN },
  };
}

/**
 * Closed-loop load: each worker issues one operation, waits for it, and issues the next, until the duration
 * is over. Closed-loop is what an application with a connection pool does (a request holds one connection
 * while it appends), and it measures throughput at a given concurrency rather than at an offered rate.
 * Latencies are pushed onto `latencies`, so several slices of one contender can be summarised together.
 */
async function closedLoopSlice(workers: readonly Operation[], durationMs: number, latencies: number[]): Promise<number> {
  const started = now();
  const deadline = started + durationMs;
  await Promise.all(
    workers.map(async (operation) => {
      while (now() < deadline) {
        const t0 = now();
        await operation();
        latencies.push(now() - t0);
      }
    }),
  );
  // Elapsed to the end of the last operation: the tail past the deadline did real work, so it counts.
  return now() - started;
}

export async function runClosedLoop(options: { workers: readonly Operation[]; durationMs: number }): Promise<LoadResult> {
  const latencies: number[] = [];
  const elapsedMs = await closedLoopSlice(options.workers, options.durationMs, latencies);
  return summarise(latencies, elapsedMs);
}

export interface Contender {
  /** One operation per worker, built once: a worker's private state (its streams) lives across slices. */
  workers: readonly Operation[];
  /** Runs between slices, e.g. to let asynchronous work the contender left behind finish outside its time. */
  settle?: () => Promise<void>;
}

/**
 * Runs the contenders in alternating slices (A B, B A, A B, ...) and sums each one's slices. On a shared or
 * virtualised machine, fsync latency and CPU steal drift by a factor of two within a minute; running one
 * contender after the other would attribute that drift to whichever ran in the bad minute, interleaving
 * gives both the same share of it. `onSlice` sees each slice, e.g. to attribute WAL volume.
 */
export async function runInterleaved<Name extends string>(options: {
  contenders: Record<Name, Contender>;
  rounds: number;
  sliceMs: number;
  around?: (name: Name, slice: () => Promise<number>) => Promise<void>;
}): Promise<Record<Name, LoadResult>> {
  const names = Object.keys(options.contenders) as Name[];
  const totals = new Map<Name, { latencies: number[]; elapsedMs: number }>(names.map((n) => [n, { latencies: [], elapsedMs: 0 }]));
  for (let round = 0; round < options.rounds; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      const contender = options.contenders[name];
      const total = totals.get(name)!;
      const slice = async () => {
        const elapsed = await closedLoopSlice(contender.workers, options.sliceMs, total.latencies);
        total.elapsedMs += elapsed;
        await contender.settle?.();
        return elapsed;
      };
      if (options.around) await options.around(name, slice);
      else await slice();
    }
  }
  const summaries = names.map((n) => [n, summarise(totals.get(n)!.latencies, totals.get(n)!.elapsedMs)] as const);
  return Object.fromEntries(summaries) as Record<Name, LoadResult>;
}

/** Times one run of `body`, which returns how many items it processed; gives items per second. */
export async function timeThroughput(body: () => Promise<number>): Promise<{ items: number; elapsedMs: number; rate: number }> {
  const started = now();
  const items = await body();
  const elapsedMs = now() - started;
  return { items, elapsedMs, rate: (items / elapsedMs) * 1000 };
}

// ---------------------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------------------

export function formatRate(perSecond: number, unit = '/s'): string {
  return `${Math.round(perSecond).toLocaleString('en-US')}${unit}`;
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;
}

export function formatRatio(ratio: number): string {
  return `${ratio.toFixed(2)}×`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A GitHub-flavoured Markdown table; cells are escaped so a `|` in a label cannot break the layout. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const escape = (cell: string) => cell.replaceAll('|', '\\|');
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => escape(r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => escape(c).padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

export function machineSummary(machine: MachineInfo): string {
  return [
    `- CPU: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.platform}`,
    `- Node ${machine.node}; PostgreSQL ${machine.postgres} (${machine.postgresServer})`,
    `- Load average (1 min) at the start: ${machine.loadAverage}${
      machine.loadAverage > machine.cpus ? ` — above ${machine.cpus} cores: other work competed for the CPU, compare ratios only` : ''
    }`,
    `- PostgreSQL settings: ${Object.entries(machine.postgresSettings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  ].join('\n');
}

/** Where `--quick` runs write their results: not `bench/results/`, whose files are the measured runs the README's tables come from. */
export const QUICK_RESULTS_DIR = path.join(RESULTS_DIR, 'quick');

/**
 * Writes `bench/results/<name>.json`, creating the directory; returns the path. A quick run (`data.quick`)
 * writes to `bench/results/quick/` instead (ignored by git), so that CI's smoke runs never overwrite a
 * measured result.
 */
export async function writeResults(name: string, data: unknown): Promise<string> {
  const dir = (data as { quick?: unknown } | null)?.quick === true ? QUICK_RESULTS_DIR : RESULTS_DIR;
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/**
 * The line every benchmark prints once, saying whether what it measured also computed the right thing:
 * `correctness: OK: <what was checked>` or `correctness: WRONG: <what differs>`. A wrong result also sets the
 * exit code to 1. CI (`.ci/run`) fails on a WRONG line, a missing line or a non-zero exit, never on a ratio.
 */
export function reportCorrectness(ok: boolean, what: string): void {
  process.stderr.write(`correctness: ${ok ? 'OK' : 'WRONG'}: ${what}\n`);
  if (!ok) process.exitCode = 1;
}

/**
 * Runs a benchmark's `main` and exits: with 1 on a crash, else with the exit code a WRONG correctness line set
 * (0 otherwise). Exiting explicitly also ends a run whose server or pools left a handle open.
 */
export function runBenchmark(main: () => Promise<void>): void {
  main().then(
    () => process.exit(),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in the items' order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        results[i] = await fn(items[i]!, i);
      }
    }),
  );
  return results;
}

/**
 * Setting a benchmark up through the API, as merchants and operators would: `call`, `expectStatus` (throws on any
 * other status, with the body) and `register` (a new user with a token signed by `jwtSecret`).
 */
export function benchApi(baseUrl: string, jwtSecret: string) {
  const call = api(baseUrl);
  const expectStatus = <R extends { status: number; body: any }>(what: string, response: R, ...ok: number[]): R => {
    if (!ok.includes(response.status)) throw new Error(`${what}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
    return response;
  };
  const register = async (role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) => {
    const id = uuid();
    const token = await tokenFor(id, email, { secret: jwtSecret });
    expectStatus(`register ${email}`, await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } }), 200, 201);
    return { id, token };
  };
  return { call, expectStatus, register };
}
