/**
 * `npm run bench:ingest [-- --quick] [-- --tenants=<n> --consumers=<n> --payments=<n>] [-- --profile]`:
 * Square webhook ingestion end to end, and consumers reading their wallets, on the real service.
 *
 * Tally runs in this process through `startTally` (the composition root in main.ts) against a fresh bench
 * database; the Square stand-in (tests/support/square-server.ts) runs in a process of its own
 * (bench/ingest-square.ts) and so does the load generator (bench/ingest-load.ts), so neither takes CPU from
 * Tally's event loop. Setup, through the HTTP API as a merchant and an operator would: 100 tenants (client
 * registers, admin approves, a spend rule is created and activated, a distinct Square merchant is connected
 * through the OAuth flow) and 5,000 registered consumers who are Square customers (matching emails) of one
 * merchant each, spread over the merchants.
 *
 * 1. Webhooks: 10,000 signed `payment.updated` COMPLETED webhooks across the 100 merchants at concurrency
 *    32. One in twenty is a payment by a Square customer who is not a Tally consumer (held anonymously,
 *    credited to nobody). Reported: acknowledged webhooks/s and p50/p99 acknowledgement latency; projection
 *    lag per payment (its webhook's 200 → its credit visible in `wallet_ledger`, i.e. the first sample of
 *    the wallets checkpoint at or past the credit's position) p50/p99; and the drain time (first webhook sent
 *    → inbox processed, reactor and projection at the head of the log). Baseline: the store benchmark's
 *    plain single-row INSERT commits at concurrency 32 on the same server, measured right before and right
 *    after the webhooks and averaged. Correctness: every matched payment credited exactly once.
 * 2. Reads: `GET /api/v1/me/wallets` with consumers' bearer tokens (HS256, AUTH_JWT_SECRET) at concurrency
 *    64, against a bare Koa route that runs the same SQL (walletsOfConsumer) on the same pool in the same
 *    process, in alternating slices.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Koa from 'koa';
import pg from 'pg';
import { pino } from 'pino';
import { startTally, type Tally } from '../main.ts';
import { createLogger } from '../adapters/logger.ts';
import { decodePosition } from '../adapters/eventstore/postgres.ts';
import type { Position } from '../domain/ports/event-store.ts';
import { walletsOfConsumer } from '../projections/read/wallets.ts';
import { createTokenVerifier } from '../http/auth.ts';
import { api } from '../tests/support/http.ts';
import { TEST_APP_ID, TEST_APP_SECRET } from '../tests/support/square-server.ts';
import {
  BENCH_DIR,
  checkpoint,
  formatDuration,
  formatMs,
  formatRatio,
  log,
  machineInfo,
  machineSummary,
  mapLimit,
  benchApi,
  now,
  openPool,
  percentile,
  runClosedLoop,
  withBenchDatabase,
  withClient,
  type BenchDatabase,
  type LoadResult,
  reportCorrectness,
} from './support.ts';
import { cpuSnapshot, cpuSplit, postgresPids, withCpuProfile, type CpuSplit, type HotFunction } from './profile.ts';
import { notes, resultsTable, writeReport, type ResultRow } from './report.ts';
import type { ReadSpec, WebhookOutput, WebhookSpec } from './ingest-load.ts';

// ---------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------

const FULL = { tenants: 100, consumers: 5_000, payments: 10_000 };
const QUICK = { tenants: 10, consumers: 500, payments: 1_000 };

const argv = process.argv.slice(2);
const numberFlag = (name: string) => {
  const arg = argv.find((a) => a.startsWith(`--${name}=`));
  if (!arg) return undefined;
  const value = Number(arg.slice(name.length + 3));
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive whole number`);
  return value;
};
const unknown = argv.filter((a) => !['--quick', '--profile', '--diagnose'].includes(a) && !/^--(tenants|consumers|payments)=/.test(a));
if (unknown.length) throw new Error(`Unknown argument(s): ${unknown.join(' ')} (supported: --quick --profile --diagnose --tenants=<n> --consumers=<n> --payments=<n>)`);
const quick = argv.includes('--quick');
const base = quick ? QUICK : FULL;
const SIZE = { tenants: numberFlag('tenants') ?? base.tenants, consumers: numberFlag('consumers') ?? base.consumers, payments: numberFlag('payments') ?? base.payments };
if (SIZE.consumers % SIZE.tenants !== 0) throw new Error('consumers must be a multiple of tenants (the same number of customers per merchant)');
const SCALED = SIZE.tenants !== FULL.tenants || SIZE.consumers !== FULL.consumers || SIZE.payments !== FULL.payments;
const PROFILE = argv.includes('--profile');
/** Prototype runs after the measurements (see WEBHOOK_PROTOTYPES, READ_PROTOTYPES). */
const DIAGNOSE = argv.includes('--diagnose');
const DIAGNOSTIC_ROUNDS = 2;
const DIAGNOSTIC_PAYMENTS = quick ? 300 : 1_000;

const WEBHOOK_CONCURRENCY = 32;
const READ_CONCURRENCY = 64;
const READ_ROUNDS = quick ? 2 : 4;
const READ_SLICE_MS = quick ? 500 : 1_000;
const BASELINE_SLICE_MS = quick ? 1_000 : 2_000;
/** Setup requests in flight at once (registration, approval, rules, OAuth). */
const SETUP_CONCURRENCY = 16;
/** One payment in this many is by a Square customer unknown to Tally: held, credited to nobody. */
const ANONYMOUS_EVERY = 20;
const CHECKPOINT_SAMPLE_MS = 5;
const DRAIN_TIMEOUT_MS = 120_000;

const AIMS = { webhooksPerSecond: 1_500, webhookP99Ms: 50, lagP99Ms: 250, readsPerSecond: 3_000, readP99Ms: 25 };

const WEBHOOK_KEY = 'bench-webhook-signature-key-0123456789';
const JWT_SECRET = 'bench-jwt-secret-that-is-long-enough-for-hs256-0123456789';
const API_BASE_URL = 'https://api.tally.bench';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
const ADMIN_EMAIL = 'ops@tally.bench';

const count = (n: number) => Math.round(n).toLocaleString('en-US');

// ---------------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------------

const tsxNode = (script: string, args: string[], ipc: boolean) =>
  spawn(process.execPath, ['--import=tsx', path.join(BENCH_DIR, script), ...args], {
    cwd: path.dirname(BENCH_DIR),
    stdio: ['ignore', 'inherit', 'inherit', ...(ipc ? (['ipc'] as const) : [])],
  });

async function processCpuMs(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

interface SquareProcess {
  url: string;
  pid: number | undefined;
  call<T = unknown>(op: string, args?: unknown): Promise<T>;
  stop(): Promise<void>;
}

async function startSquareProcess(): Promise<SquareProcess> {
  const child = tsxNode('ingest-square.ts', [], true);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the Square stand-in exited (${code}) before it was ready`)));
    child.on('message', (message: { ready?: boolean; url?: string; id?: number; result?: unknown; error?: string }) => {
      if (message.ready) return resolve(message.url!);
      const waiter = message.id === undefined ? undefined : pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id!);
      if (message.error) waiter.reject(new Error(message.error));
      else waiter.resolve(message.result);
    });
  });
  child.removeAllListeners('exit');
  return {
    url,
    pid: child.pid,
    call: <T>(op: string, args?: unknown) =>
      new Promise<T>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, op, args });
      }),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function runLoad<T>(mode: 'webhooks' | 'reads', spec: unknown): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-load-'));
  try {
    const specFile = path.join(dir, 'spec.json');
    const outFile = path.join(dir, 'out.json');
    await writeFile(specFile, JSON.stringify(spec));
    const child: ChildProcess = tsxNode('ingest-load.ts', [mode, specFile, outFile], false);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`the load generator (${mode}) exited with ${code}`);
    return JSON.parse(await readFile(outFile, 'utf8')) as T;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Statement counting (bench-only instrumentation of the pg driver Tally uses in this process)
// ---------------------------------------------------------------------------------------------------------

const statementStats = new Map<string, { count: number; ms: number }>();
let countingStatements = false;

/** The kind of a stream: its name without the id (`payment-…` → `payment`, `square-merchant-…`, …). */
const streamKind = (stream: unknown) => (typeof stream === 'string' ? stream.replace(/-?[0-9a-f]{8}-[0-9a-f-]{27}$|-bench-pay-\d+$|-MBENCH\d+$/i, '') : '?');

/** A short label of a statement: its first words, whitespace collapsed (enough to tell them apart). */
function statementLabel(sql: string, params: unknown): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  const values = Array.isArray(params) ? params : [];
  if (s.startsWith('SELECT transaction_id::text AS tx_id') && s.includes('WHERE stream_name = $1')) return `readStream(${streamKind(values[0])})`;
  if (s.includes('FROM append_events(')) return `append_events(${streamKind(values[0])})`;
  if (/projection_checkpoints WHERE name = \$1 FOR UPDATE/.test(s)) return 'projection batch: lock checkpoint';
  if (s.startsWith('UPDATE projection_checkpoints')) return 'projection batch: move checkpoint';
  const fn = /FROM (append_events|pg_notify)\(/.exec(s) ?? /SELECT (pg_notify|pg_try_advisory_lock)\(/.exec(s);
  if (fn) return fn[1]!;
  const into = /^(INSERT INTO \S+|UPDATE \S+|DELETE FROM \S+)/.exec(s);
  if (into) return into[1]!;
  if (s.startsWith('WITH batch AS')) return 'projection write (WITH batch …)';
  if (s.startsWith('SELECT transaction_id::text AS tx_id')) return `events read: ${/WHERE (.{0,50})/.exec(s)?.[1] ?? 'feed (no filter)'}`;
  return s.slice(0, 80);
}

function instrumentDriver(): void {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    if (!countingStatements) return original.apply(this, args);
    const first = args[0];
    const sql = typeof first === 'string' ? first : typeof (first as { text?: unknown })?.text === 'string' ? (first as { text: string }).text : undefined;
    if (sql === undefined) return original.apply(this, args);
    const label = statementLabel(sql, typeof first === 'string' ? args[1] : (first as { values?: unknown }).values);
    const t0 = now();
    const record = () => {
      const entry = statementStats.get(label) ?? { count: 0, ms: 0 };
      entry.count++;
      entry.ms += now() - t0;
      statementStats.set(label, entry);
    };
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      args[args.length - 1] = function (this: unknown, ...cbArgs: unknown[]) {
        record();
        return (last as (...a: unknown[]) => unknown).apply(this, cbArgs);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(record, record);
    return result;
  };
}

// ---------------------------------------------------------------------------------------------------------
// Setup through the API
// ---------------------------------------------------------------------------------------------------------

interface Consumer {
  id: string;
  email: string;
  token: string;
  merchantId: string;
  customerId: string;
}

interface World {
  merchants: string[];
  consumers: Consumer[];
  admin: string;
}

async function setUp(tally: Tally, square: SquareProcess): Promise<World> {
  const { call, expectStatus, register } = benchApi(tally.url, JWT_SECRET);

  const admin = await register('consumer', ADMIN_EMAIL);
  const merchants = Array.from({ length: SIZE.tenants }, (_, i) => `MBENCH${String(i).padStart(4, '0')}`);
  await square.call(
    'addMerchants',
    merchants.map((merchantId, i) => ({ merchantId, businessName: `Bench Merchant ${i}`, locations: [{ id: `L${merchantId}`, name: 'Main' }] })),
  );

  const t0 = now();
  await mapLimit(merchants, SETUP_CONCURRENCY, async (merchantId, i) => {
    const client = await register('client', `owner${i}@merchant${i}.bench`, { businessName: `Bench Merchant ${i}` });
    expectStatus('approve', await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: admin.token }), 200);
    const rule = expectStatus(
      'create rule',
      await call('POST', '/api/v1/client/reward-rules', { token: client.token, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } }),
      201,
    );
    expectStatus('activate rule', await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: client.token }), 200);
    const started = expectStatus('connect', await call('GET', '/api/v1/client/pos/square/connect', { token: client.token }), 200);
    const state = new URL(started.body.url).searchParams.get('state')!;
    const code = await square.call<string>('issueCode', merchantId);
    const callback = await call('GET', `/api/v1/oauth/square/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`);
    if (callback.status !== 302 || !callback.headers.get('location')?.includes('connected=square')) {
      throw new Error(`connect ${merchantId} failed: ${callback.status} ${callback.headers.get('location')}`);
    }
  });
  log(`  ${SIZE.tenants} tenants registered, approved, with an active spend rule, connected to Square (${formatDuration(now() - t0)})`);

  const t1 = now();
  const consumers = await mapLimit(
    Array.from({ length: SIZE.consumers }, (_, j) => j),
    SETUP_CONCURRENCY,
    async (j): Promise<Consumer> => {
      const email = `consumer${j}@bench.test`;
      const { id, token } = await register('consumer', email);
      // Merchants type emails as they like: the Square copy differs in case, Tally normalises both.
      return { id, email, token, merchantId: merchants[j % SIZE.tenants]!, customerId: `SQC${String(j).padStart(6, '0')}` };
    },
  );
  const anonymous = merchants.map((merchantId, m) => ({ merchantId, customer: { id: `SQANON${m}`, email: `walk-in-${m}@elsewhere.test`, phone: null } }));
  await square.call('addCustomers', [
    ...consumers.map((c) => ({ merchantId: c.merchantId, customer: { id: c.customerId, email: c.email.toUpperCase(), phone: null } })),
    ...anonymous,
  ]);
  log(`  ${count(SIZE.consumers)} consumers registered, each a Square customer of one merchant (${formatDuration(now() - t1)})`);
  return { merchants, consumers, admin: admin.token };
}

/**
 * Payments [offset, offset + n): payment p is at merchant p % T, by its customers in turn; every
 * ANONYMOUS_EVERY-th is by a walk-in Tally does not know.
 */
function payments(world: World, offset: number, n: number) {
  const perMerchant = SIZE.consumers / SIZE.tenants;
  return Array.from({ length: n }, (_, q) => {
    const p = offset + q;
    const m = p % SIZE.tenants;
    const k = Math.floor(p / SIZE.tenants) % perMerchant;
    const consumer = world.consumers[m + SIZE.tenants * k]!;
    const anonymous = p % ANONYMOUS_EVERY === ANONYMOUS_EVERY - 1;
    return {
      eventId: `bench-evt-${p}`,
      merchantId: world.merchants[m]!,
      paymentId: `bench-pay-${p}`,
      amount: 500 + ((p * 37) % 4500),
      customerId: anonymous ? `SQANON${m}` : consumer.customerId,
      matched: !anonymous,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Baseline: plain single-row INSERT commits (as bench/store.ts measures them)
// ---------------------------------------------------------------------------------------------------------

const PLAIN_TABLE_SQL = `
  CREATE TABLE IF NOT EXISTS bench_plain_events (
    id              bigserial   PRIMARY KEY,
    event_id        uuid        NOT NULL,
    stream_name     text        NOT NULL,
    stream_revision bigint      NOT NULL,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
  )`;

async function plainInserts(url: string, concurrency: number, durationMs: number, basePids: number[] | undefined): Promise<LoadResult & { cpu: CpuSplit }> {
  const pool = await openPool(url, concurrency);
  try {
    const pids = basePids ? [...new Set([...basePids, ...(await postgresPids(pool))])] : undefined;
    await pool.query(PLAIN_TABLE_SQL);
    await checkpoint(pool);
    const sql = `INSERT INTO bench_plain_events (event_id, stream_name, stream_revision, event_type, data, metadata) VALUES ($1, $2, $3, $4, $5, $6)`;
    const workers = Array.from({ length: concurrency }, (_, w) => {
      let revision = 0;
      return async () => {
        const stream = `customer-plain-w${w}`;
        const data = { merchantId: 'MLQ8Z4N1X2Y3W', customerId: stream, orderId: randomUUID(), points: 42, reason: 'purchase', amount: { cents: 1299, currency: 'USD' } };
        const metadata = { schemaVersion: 1, correlationId: randomUUID(), actor: 'square:MLQ8Z4N1X2Y3W' };
        await pool.query(sql, [randomUUID(), stream, revision++, 'PointsEarned', JSON.stringify(data), JSON.stringify(metadata)]);
      };
    });
    const before = await cpuSnapshot(pids);
    const result = await runClosedLoop({ workers, durationMs });
    return { ...result, cpu: cpuSplit(before, await cpuSnapshot(pids)) };
  } finally {
    await pool.end();
  }
}

function combine(results: (LoadResult & { cpu: CpuSplit })[]): { rate: number; p50: number; p99: number; cpuMsPerOp: number } {
  const ops = results.reduce((s, r) => s + r.operations, 0);
  const ms = results.reduce((s, r) => s + r.elapsedMs, 0);
  const cpuMs = results.reduce((s, r) => s + r.cpu.nodeMs + (r.cpu.postgresMs ?? 0), 0);
  // Percentiles of the slices, weighted alike: the slices are the same length.
  return { cpuMsPerOp: cpuMs / ops, rate: (ops / ms) * 1000, p50: results.reduce((s, r) => s + r.latencyMs.p50, 0) / results.length, p99: results.reduce((s, r) => s + r.latencyMs.p99, 0) / results.length };
}

// ---------------------------------------------------------------------------------------------------------
// Prototypes: statements Tally's pool sends, diverted (bench-only; nothing outside bench/ is edited)
// ---------------------------------------------------------------------------------------------------------

/** Returns a result to use instead of sending the statement through Tally's pool, or undefined. */
type Divert = (sql: string, params: unknown[]) => Promise<unknown> | undefined;
let divert: Divert | undefined;
let divertedPool: pg.Pool | undefined;
let prepareAll = false;
const divertedCounts = new Map<string, number>();

function instrumentPools(): void {
  const proto = pg.Pool.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: pg.Pool, ...args: unknown[]) {
    // Statements come as (text, values[, callback]) or as a config ({ text, values[, name] }[, callback]).
    const [first] = args;
    const config = typeof first === 'object' && first !== null && typeof (first as { text?: unknown }).text === 'string' ? (first as { text: string; values?: unknown }) : undefined;
    const text = config ? config.text : first;
    const values = config ? config.values : args[1];
    const callback = args.find((a, i) => i > 0 && typeof a === 'function');
    if (prepareAll && this === divertedPool && typeof text === 'string' && !(config as { name?: unknown } | undefined)?.name) {
      // Prototype: every statement as a named prepared statement (parsed and planned once per connection).
      const named = { text, values, name: `bench_${createHash('sha1').update(text).digest('hex').slice(0, 16)}` };
      args.splice(0, config ? 1 : 2, named);
    }
    if (divert && this === divertedPool && typeof text === 'string') {
      const result = divert(text, Array.isArray(values) ? values : []);
      if (result) {
        const label = statementLabel(text, values);
        divertedCounts.set(label, (divertedCounts.get(label) ?? 0) + 1);
        if (typeof callback === 'function') {
          result.then((r) => callback(null, r), (e) => callback(e));
          return undefined;
        }
        return result;
      }
    }
    return original.apply(this, args);
  };
}

interface Variant {
  key: string;
  label: string;
  /** Every statement sent through Tally's pool as a named prepared statement. */
  prepare?: boolean;
  /** Builds the diverter for one run; `close` releases what it opened. */
  make?: (url: string) => Promise<{ divert: Divert; close(): Promise<void> }>;
}

const isInboxInsert = (sql: string) => sql.trimStart().startsWith('INSERT INTO pos_webhook_events_raw');

/** The webhook route's INSERT on a pool of its own: background processing can no longer queue it. */
const ownInboxPool: Variant['make'] = async (url) => {
  const pool = await openPool(url, 8);
  return { divert: (sql, params) => (isInboxInsert(sql) ? pool.query(sql, params) : undefined), close: () => pool.end() };
};

/**
 * Upper bound of caching what a webhook re-reads although it rarely changes: the merchant reservation,
 * connection and reward-rule streams, and the sealed token (the cache lives for one run, during which none
 * of them changes). A real cache would be invalidated by those streams' events.
 */
const cachedLookups: Variant['make'] = async () => {
  const cache = new Map<string, Promise<unknown>>();
  const cacheable = (sql: string, params: unknown[]) => {
    const s = sql.replace(/\s+/g, ' ').trim();
    if (s.startsWith('SELECT transaction_id::text AS tx_id') && s.includes('WHERE stream_name = $1')) {
      const kind = streamKind(params[0]);
      return kind === 'square-connection' || kind === 'square-merchant' || kind === 'reward-rules';
    }
    return s.startsWith('SELECT tenant_id, merchant_id, authorization_id, key_id, iv, ciphertext');
  };
  return {
    divert: (sql, params) => {
      if (!cacheable(sql, params)) return undefined;
      const key = `${sql}\u0000${JSON.stringify(params)}`;
      let hit = cache.get(key);
      if (!hit) {
        hit = divertedPool!.query(sql, params as unknown[]);
        // The first read goes through the pool (not diverted: `divert` is bypassed by calling the original).
        cache.set(key, hit);
      }
      return hit;
    },
    close: async () => cache.clear(),
  };
};

/** Both prototypes. */
const both: Variant['make'] = async (url) => {
  const a = await ownInboxPool(url);
  const b = await cachedLookups(url);
  return { divert: (sql, params) => a.divert(sql, params) ?? b.divert(sql, params), close: async () => (await a.close(), await b.close()) };
};

const AS_IS: Variant = { key: 'asIs', label: 'as is' };
const WEBHOOK_PROTOTYPES: Variant[] = [
  { key: 'ownInboxPool', label: 'prototype A: inbox INSERT on its own pool (8)', make: ownInboxPool },
  { key: 'cachedLookups', label: 'prototype B: reservation, connection, rules streams and sealed token cached', make: cachedLookups },
  { key: 'both', label: 'prototype C: A + B', make: both },
  { key: 'prepared', label: "prototype E: every statement of Tally's pool.query as a named prepared statement", prepare: true },
];

/** Reads: the caller's user stream cached (upper bound of caching the account loaded on every request). */
const cachedUsers: Variant['make'] = async () => {
  const cache = new Map<string, Promise<unknown>>();
  return {
    divert: (sql, params) => {
      if (!(sql.includes('WHERE stream_name = $1') && streamKind(params[0]) === 'user')) return undefined;
      const key = String(params[0]);
      let hit = cache.get(key);
      if (!hit) cache.set(key, (hit = divertedPool!.query(sql, params as unknown[])));
      return hit;
    },
    close: async () => cache.clear(),
  };
};
const READ_PROTOTYPES: Variant[] = [{ key: 'cachedUsers', label: "prototype D: the caller's user stream cached (reads)", make: cachedUsers }];

async function withVariant<T>(url: string, variant: Variant, body: () => Promise<T>): Promise<T> {
  if (variant.prepare) {
    prepareAll = true;
    try {
      return await withVariant(url, { ...variant, prepare: false }, body);
    } finally {
      prepareAll = false;
    }
  }
  if (!variant.make) return body();
  const made = await variant.make(url);
  // The cache's own first reads must reach PostgreSQL: they call the pool while `divert` is unset for them.
  const own = made.divert;
  let inside = false;
  divert = (sql, params) => {
    if (inside) return undefined;
    inside = true;
    try {
      return own(sql, params);
    } finally {
      inside = false;
    }
  };
  try {
    return await body();
  } finally {
    divert = undefined;
    await made.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------------------

const sorted = (values: number[]) => Float64Array.from(values).sort();
const isAtOrAfter = (a: Position, b: Position) => {
  const x = decodePosition(a);
  const y = decodePosition(b);
  return x.tx === y.tx ? x.seq >= y.seq : x.tx > y.tx;
};

interface Context {
  db: BenchDatabase;
  tally: Tally;
  world: World;
  square: SquareProcess;
  pids: number[] | undefined;
}

interface WebhookMetrics {
  payments: number;
  ok: number;
  statuses: Record<string, number>;
  errors: string[];
  ackMs: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  lagP50: number;
  lagP99: number;
  lagMax: number;
  lagMeasured: number;
  unseen: number;
  drainMs: number;
  expectedCredits: number;
  check: { credits: number; distinctPayments: number; outcomes: Record<string, number> };
  correct: boolean;
  cpu: CpuSplit;
  squareCpuMs: number;
  transactionsPerWebhook: number;
  /** CPU of the Tally process and of PostgreSQL per webhook, first sent → drained (ms). */
  cpuMsPerWebhook: { tally: number; postgres: number | null };
  statements: [string, { count: number; ms: number }][];
  diverted: Record<string, number>;
  samples: number;
  drainProbe: Record<string, unknown> | null;
}

async function webhookRun(ctx: Context, offset: number, n: number, profile: boolean): Promise<WebhookMetrics & { hot?: HotFunction[] }> {
  const { db, tally, world, square } = ctx;
  const plan = payments(world, offset, n);
  const expectedCredits = plan.filter((p) => p.matched).length;
  const xacts = async (c: pg.Client) =>
    Number((await c.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]!.n);
  const pids = ctx.pids ? [...new Set([...ctx.pids, ...(await withClient(db.url, (c) => postgresPids(c)))])] : undefined;
  const beforeXacts = await withClient(db.url, xacts);
  const beforeCpu = await cpuSnapshot(pids);
  const squareBefore = await processCpuMs(square.pid);
  statementStats.clear();
  divertedCounts.clear();
  countingStatements = true;
  const spec: WebhookSpec = {
    url: tally.url,
    key: WEBHOOK_KEY,
    notificationUrl: NOTIFICATION_URL,
    databaseUrl: db.url,
    concurrency: WEBHOOK_CONCURRENCY,
    sampleMs: CHECKPOINT_SAMPLE_MS,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    payments: plan.map(({ matched: _matched, ...p }) => p),
  };
  const load = () => runLoad<WebhookOutput>('webhooks', spec);
  const profiled = profile ? await withCpuProfile('ingest-webhooks', load) : undefined;
  const out = profiled ? profiled.value : await load();
  countingStatements = false;
  const cpu = cpuSplit(beforeCpu, await cpuSnapshot(pids));
  const squareCpuMs = (await processCpuMs(square.pid)) - squareBefore;
  const afterXacts = await withClient(db.url, xacts);

  const ok = out.status.filter((st) => st === 200).length;
  const ackMs = out.lastAckEpoch - out.startedEpoch;
  const latencies = sorted(out.ackedAt.map((a, i) => a - out.sentAt[i]!));

  // Lag: each credit's position against the sampled wallets checkpoint.
  const { rows: credits } = await tally.pool.query<{ payment_id: string; position: string }>(
    `SELECT payment_id, position FROM wallet_ledger WHERE entry_type = 'credit' AND payment_id = ANY($1)`,
    [plan.map((p) => p.paymentId)],
  );
  const lagValues: number[] = [];
  let unseen = 0;
  for (const credit of credits) {
    const q = Number(credit.payment_id.slice('bench-pay-'.length)) - offset;
    // First sample at or past the credit (samples are in time order, the checkpoint only moves forward).
    let lo = 0;
    let hi = out.checkpoints.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (isAtOrAfter(out.checkpoints[mid]![1] as Position, credit.position as Position)) hi = mid;
      else lo = mid + 1;
    }
    const seenAt = out.checkpoints[lo]?.[0];
    if (seenAt === undefined) unseen++;
    else lagValues.push(seenAt - out.ackedAt[q]!);
  }
  const lags = sorted(lagValues);

  const check = await withClient(db.url, async (c) => {
    const ledger = (
      await c.query<{ credits: string; distinct_payments: string }>(
        `SELECT count(*) AS credits, count(DISTINCT payment_id) AS distinct_payments FROM wallet_ledger WHERE entry_type = 'credit' AND payment_id = ANY($1)`,
        [plan.map((p) => p.paymentId)],
      )
    ).rows[0]!;
    const outcomes = Object.fromEntries(
      (
        await c.query<{ outcome: string | null; n: string }>(`SELECT outcome, count(*) AS n FROM pos_webhook_events_raw WHERE event_id = ANY($1) GROUP BY outcome`, [
          plan.map((p) => p.eventId),
        ])
      ).rows.map((r) => [r.outcome ?? 'pending', Number(r.n)]),
    );
    return { credits: Number(ledger.credits), distinctPayments: Number(ledger.distinct_payments), outcomes };
  });
  const correct =
    ok === n &&
    check.credits === expectedCredits &&
    check.distinctPayments === expectedCredits &&
    check.outcomes.credited === expectedCredits &&
    (check.outcomes.stored_anonymous ?? 0) === n - expectedCredits;

  return {
    payments: n,
    ok,
    statuses: countBy(out.status),
    errors: out.errors,
    ackMs,
    rate: (ok / ackMs) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    lagP50: percentile(lags, 50),
    lagP99: percentile(lags, 99),
    lagMax: lags[lags.length - 1] ?? Number.NaN,
    lagMeasured: lagValues.length,
    unseen,
    drainMs: out.drainedEpoch ? out.drainedEpoch - out.startedEpoch : Number.NaN,
    expectedCredits,
    check,
    correct,
    cpu,
    squareCpuMs,
    transactionsPerWebhook: (afterXacts - beforeXacts) / n,
    cpuMsPerWebhook: { tally: cpu.nodeMs / n, postgres: cpu.postgresMs === null ? null : cpu.postgresMs / n },
    statements: [...statementStats.entries()].sort((a, b) => b[1].count - a[1].count),
    diverted: Object.fromEntries(divertedCounts),
    samples: out.samples,
    drainProbe: out.lastDrainProbe,
    ...(profiled ? { hot: profiled.hot } : {}),
  };
}

/**
 * Splits a webhook's CPU between its ingestion (the inbox processor: stream reads, the Square look-up, the
 * purchase append) and what follows it (eight projections and the wallet-credits reactor): the projection
 * runner is stopped while the webhooks are sent and processed, then started again and timed to the head.
 * Catching up runs in bigger batches than live, so the second figure is a lower bound of the live cost.
 */
async function splitRun(ctx: Context, offset: number, n: number) {
  const { db, tally, world } = ctx;
  const plan = payments(world, offset, n);
  const pids = ctx.pids ? [...new Set([...ctx.pids, ...(await withClient(db.url, (c) => postgresPids(c)))])] : undefined;
  await tally.runner.stop();
  const a = await cpuSnapshot(pids);
  await runLoad<WebhookOutput>('webhooks', {
    url: tally.url,
    key: WEBHOOK_KEY,
    notificationUrl: NOTIFICATION_URL,
    databaseUrl: db.url,
    concurrency: WEBHOOK_CONCURRENCY,
    sampleMs: 50,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    inboxOnly: true,
    payments: plan.map(({ matched: _matched, ...p }) => p),
  } satisfies WebhookSpec);
  const b = await cpuSnapshot(pids);
  tally.runner.start();
  // The reactor appends credits while catching up: settled once the head stops moving and everything reached it.
  for (let previous: string | undefined; ; ) {
    const head = await tally.store.headPosition();
    if (head && !(await tally.runner.waitForPosition(head, DRAIN_TIMEOUT_MS))) throw new Error('projections did not catch up');
    if (head === previous) break;
    previous = head;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const c = await cpuSnapshot(pids);
  const credited = Number(
    (await tally.pool.query<{ n: string }>(`SELECT count(*) AS n FROM wallet_ledger WHERE entry_type = 'credit' AND payment_id = ANY($1)`, [plan.map((p) => p.paymentId)])).rows[0]!.n,
  );
  const ingestion = cpuSplit(a, b);
  const projections = cpuSplit(b, c);
  const per = (x: CpuSplit) => ({ tally: x.nodeMs / n, postgres: (x.postgresMs ?? Number.NaN) / n, wallMs: x.wallMs });
  return { ingestion: per(ingestion), projections: per(projections), correct: credited === plan.filter((p) => p.matched).length };
}

/**
 * HS256 bearer-token verification alone (http/auth.ts), one at a time: its CPU cost per request. The verifier
 * remembers the tokens it accepted, so the first sight of a token (a new verifier for every pass over the
 * tokens) and a token seen before (`repeatMicroseconds`) are timed apart.
 */
async function tokenVerification(tokens: string[], durationMs: number) {
  const options = { secret: JWT_SECRET };
  let verify = createTokenVerifier(options);
  await verify(tokens[0]!); // the key import, once per verifier, happens at startup in Tally
  const started = now();
  let k = 0;
  while (now() - started < durationMs) {
    if (k > 0 && k % tokens.length === 0) verify = createTokenVerifier(options);
    await verify(tokens[k++ % tokens.length]!);
  }
  const elapsed = now() - started;
  const repeatStarted = now();
  let r = 0;
  while (now() - repeatStarted < durationMs / 4) await verify(tokens[r++ % Math.min(k, tokens.length)]!);
  return { perSecond: (k / elapsed) * 1000, microseconds: (elapsed / k) * 1000, repeatMicroseconds: ((now() - repeatStarted) / r) * 1000 };
}

interface ReadMetrics {
  tally: LoadResult;
  bare: LoadResult;
  errors: string[];
  cpu: CpuSplit;
}

async function readRun(ctx: Context, bareUrl: string, rounds: number, sliceMs: number): Promise<ReadMetrics> {
  const readers = ctx.world.consumers;
  const spec: ReadSpec = {
    concurrency: READ_CONCURRENCY,
    rounds,
    sliceMs,
    tally: { url: `${ctx.tally.url}/api/v1/me/wallets`, headers: readers.map((c) => ({ authorization: `Bearer ${c.token}` })) },
    bare: { url: bareUrl, headers: readers.map((c) => ({ 'x-consumer-id': c.id })) },
  };
  const pids = ctx.pids ? [...new Set([...ctx.pids, ...(await withClient(ctx.db.url, (c) => postgresPids(c)))])] : undefined;
  const before = await cpuSnapshot(pids);
  const reads = await runLoad<{ result: Record<'tally' | 'bare', LoadResult>; statuses: Record<string, Record<number, number>> }>('reads', spec);
  const cpu = cpuSplit(before, await cpuSnapshot(pids));
  const errors = Object.entries(reads.statuses).flatMap(([side, st]) => Object.entries(st).filter(([status]) => status !== '200').map(([status, k]) => `${side} ${status}×${k}`));
  return { tally: reads.result.tally, bare: reads.result.bare, errors, cpu };
}

function countBy(values: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

// ---------------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date();
  const started = now();
  instrumentDriver();
  instrumentPools();
  await withBenchDatabase(async (db) => {
    const machine = await machineInfo(db);
    const pgPids = db.embedded ? await withClient(db.adminUrl, (c) => postgresPids(c)) : undefined;
    const square = await startSquareProcess();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-data-'));
    let tally: Tally | undefined;
    let bareServer: http.Server | undefined;
    try {
      const env: NodeJS.ProcessEnv = {
        NODE_ENV: 'production',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        AUTH_JWT_SECRET: JWT_SECRET,
        ADMIN_EMAILS: ADMIN_EMAIL,
        IDENTITY_HASH_KEY: 'bench-identity-hash-key-0123456789abcdef',
        ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
        CRON_SECRET: 'bench-cron-secret-0123456789',
        API_BASE_URL,
        FRONTEND_URL: 'https://app.tally.bench',
        SQUARE_BASE_URL: square.url,
        SQUARE_APP_ID: TEST_APP_ID,
        SQUARE_APP_SECRET: TEST_APP_SECRET,
        SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
      };
      // Tally's warnings go to stderr with the progress; stdout carries only the report.
      const tallyLog = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: false }) });
      tally = await startTally({ env, log: tallyLog });
      divertedPool = tally.pool;
      log(`Tally listening on ${tally.url}; Square stand-in on ${square.url}`);

      log(`Setting up ${SIZE.tenants} tenants and ${count(SIZE.consumers)} consumers through the API...`);
      const setupStarted = now();
      const world = await setUp(tally, square);
      const head = await tally.store.headPosition();
      if (head && !(await tally.runner.waitForPosition(head, 120_000))) throw new Error('projections did not catch up after the setup');
      const setupMs = now() - setupStarted;
      const ctx: Context = { db, tally, world, square, pids: pgPids };

      // ------------------------------------------------------------------ webhooks
      log(`Baseline: plain INSERT commits at concurrency ${WEBHOOK_CONCURRENCY} (${formatDuration(BASELINE_SLICE_MS)})...`);
      const baselineRuns = [await plainInserts(db.url, WEBHOOK_CONCURRENCY, BASELINE_SLICE_MS, pgPids)];
      log(`Sending ${count(SIZE.payments)} webhooks at concurrency ${WEBHOOK_CONCURRENCY} from a separate process...`);
      const w = await webhookRun(ctx, 0, SIZE.payments, PROFILE);
      log(`  last acknowledgement after ${formatDuration(w.ackMs)}; drained ${Number.isFinite(w.drainMs) ? `after ${formatDuration(w.drainMs)}` : 'NOT within the timeout'}`);
      log('Baseline again (after the webhooks)...');
      baselineRuns.push(await plainInserts(db.url, WEBHOOK_CONCURRENCY, BASELINE_SLICE_MS, pgPids));
      const baseline = combine(baselineRuns);
      const correctness =
        `${count(w.check.credits)} credit rows in wallet_ledger for ${count(w.check.distinctPayments)} distinct payments; ${count(w.expectedCredits)} payments had a matching customer ` +
        `(${count(SIZE.payments - w.expectedCredits)} walk-ins held anonymously); inbox outcomes ${JSON.stringify(w.check.outcomes)}; ` +
        `${w.correct ? 'every matched payment credited exactly once' : 'MISMATCH'}`;
      reportCorrectness(w.correct, correctness);

      // ------------------------------------------------------------------ reads
      const bare = new Koa();
      bare.use(async (koa) => {
        koa.body = await walletsOfConsumer(tally!.pool, koa.get('x-consumer-id'));
      });
      bareServer = http.createServer(bare.callback());
      bareServer.keepAliveTimeout = 5000;
      await new Promise<void>((resolve) => bareServer!.listen(0, '127.0.0.1', resolve));
      const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}/bare/wallets`;
      const sample = await api(tally.url)('GET', '/api/v1/me/wallets', { token: world.consumers[0]!.token });
      if (sample.status !== 200 || !Array.isArray(sample.body) || sample.body.length === 0) throw new Error(`GET /api/v1/me/wallets: ${sample.status} ${JSON.stringify(sample.body)}`);
      log(`Reads: GET /api/v1/me/wallets vs a bare Koa route, concurrency ${READ_CONCURRENCY}, ${READ_ROUNDS} × ${formatDuration(READ_SLICE_MS)} each...`);
      const reads = await readRun(ctx, bareUrl, READ_ROUNDS, READ_SLICE_MS);

      // ------------------------------------------------------------------ diagnosis (optional)
      const diagnosis: {
        webhooks: Record<string, WebhookMetrics[]>;
        reads: Record<string, ReadMetrics[]>;
        split: Awaited<ReturnType<typeof splitRun>>[];
        tokens?: { perSecond: number; microseconds: number; repeatMicroseconds: number };
      } = { webhooks: {}, reads: {}, split: [] };
      if (DIAGNOSE) {
        let offset = SIZE.payments;
        const variants = [AS_IS, ...WEBHOOK_PROTOTYPES];
        for (let round = 0; round < DIAGNOSTIC_ROUNDS; round++) {
          for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
            log(`[diagnosis round ${round + 1}] webhooks, ${variant.label} (${count(DIAGNOSTIC_PAYMENTS)} payments)...`);
            const run = await withVariant(db.url, variant, () => webhookRun(ctx, offset, DIAGNOSTIC_PAYMENTS, false));
            offset += DIAGNOSTIC_PAYMENTS;
            log(
              `  ${Math.round(run.rate)}/s, p99 ${formatMs(run.p99)}, lag p99 ${formatMs(run.lagP99)}, drain ${formatDuration(run.drainMs)}, ` +
                `CPU/webhook ${formatMs(run.cpuMsPerWebhook.tally)} + ${formatMs(run.cpuMsPerWebhook.postgres ?? Number.NaN)}, correct ${run.correct}, diverted ${JSON.stringify(run.diverted)}`,
            );
            (diagnosis.webhooks[variant.key] ??= []).push(run);
          }
        }
        for (let round = 0; round < DIAGNOSTIC_ROUNDS; round++) {
          log(`[diagnosis round ${round + 1}] webhooks with the projection runner stopped, then caught up (${count(DIAGNOSTIC_PAYMENTS)} payments)...`);
          const split = await splitRun(ctx, offset, DIAGNOSTIC_PAYMENTS);
          offset += DIAGNOSTIC_PAYMENTS;
          log(`  ingestion ${formatMs(split.ingestion.tally)} + ${formatMs(split.ingestion.postgres)}, projections ${formatMs(split.projections.tally)} + ${formatMs(split.projections.postgres)} CPU per webhook, correct ${split.correct}`);
          diagnosis.split.push(split);
        }
        diagnosis.tokens = await tokenVerification(world.consumers.map((c) => c.token), 2_000);
        log(`  HS256 verification alone: ${Math.round(diagnosis.tokens.microseconds)} µs per token first seen, ${diagnosis.tokens.repeatMicroseconds.toFixed(1)} µs seen before`);
        const readVariants = [AS_IS, ...READ_PROTOTYPES];
        for (let round = 0; round < DIAGNOSTIC_ROUNDS; round++) {
          for (const variant of round % 2 === 0 ? readVariants : [...readVariants].reverse()) {
            log(`[diagnosis round ${round + 1}] reads, ${variant.label}...`);
            const run = await withVariant(db.url, variant, () => readRun(ctx, bareUrl, 2, READ_SLICE_MS));
            log(`  Tally ${Math.round(run.tally.rate)}/s p99 ${formatMs(run.tally.latencyMs.p99)}; bare ${Math.round(run.bare.rate)}/s`);
            (diagnosis.reads[variant.key] ??= []).push(run);
          }
        }
      }

      // ------------------------------------------------------------------ report
      const scale = SCALED
        ? `SCALED DOWN${quick ? ' (--quick)' : ''}: ${SIZE.tenants} tenants, ${count(SIZE.consumers)} consumers, ${count(SIZE.payments)} payments instead of 100 / 5,000 / 10,000; `
        : '';
      const loadNote = `load average ${machine.loadAverage} on ${machine.cpus} cores`;
      const commitTime = (SIZE.payments / baseline.rate) * 1000;
      const results: ResultRow[] = [
        {
          measurement: `webhooks acknowledged, concurrency ${WEBHOOK_CONCURRENCY}`,
          unit: 'webhooks/s',
          tally: w.rate,
          baseline: baseline.rate,
          ratio: w.rate / baseline.rate,
          aim: AIMS.webhooksPerSecond,
          met: w.ok === SIZE.payments && w.rate >= AIMS.webhooksPerSecond,
          note:
            `${scale}${count(w.ok)}/${count(SIZE.payments)} answered 200; baseline: plain single-row INSERT commits/s at concurrency ${WEBHOOK_CONCURRENCY} (before and after, mean); ` +
            `the aim is absolute (${formatRatio(AIMS.webhooksPerSecond / baseline.rate)} of this run's baseline); ${loadNote}`,
          detail: { ...w, baselineRuns },
        },
        { measurement: 'webhook acknowledgement latency p50', unit: 'ms', tally: w.p50, baseline: baseline.p50, ratio: w.p50 / baseline.p50, aim: null, met: null, note: 'baseline: p50 of the plain INSERT commits' },
        {
          measurement: 'webhook acknowledgement latency p99',
          unit: 'ms',
          tally: w.p99,
          baseline: baseline.p99,
          ratio: w.p99 / baseline.p99,
          aim: AIMS.webhookP99Ms,
          met: w.p99 <= AIMS.webhookP99Ms,
          note: `baseline: p99 of the plain INSERT commits; max ${formatMs(w.max)}`,
        },
        {
          measurement: 'projection lag p50 (webhook 200 → credit in wallet_ledger)',
          unit: 'ms',
          tally: w.lagP50,
          baseline: baseline.p50,
          ratio: w.lagP50 / baseline.p50,
          aim: null,
          met: null,
          note: `baseline: p50 of one plain INSERT commit (the least a durable step costs here); wallets checkpoint sampled every ${CHECKPOINT_SAMPLE_MS} ms from the load process`,
        },
        {
          measurement: 'projection lag p99',
          unit: 'ms',
          tally: w.lagP99,
          baseline: baseline.p99,
          ratio: w.lagP99 / baseline.p99,
          aim: AIMS.lagP99Ms,
          met: w.unseen === 0 && w.lagP99 <= AIMS.lagP99Ms,
          note: `baseline: p99 of one plain INSERT commit; ${count(w.lagMeasured)} credits measured${w.unseen ? `, ${w.unseen} never seen` : ''}; max ${formatMs(w.lagMax)}`,
        },
        {
          measurement: `drain time (${count(SIZE.payments)} webhooks: first sent → all credited and projected)`,
          unit: 'ms',
          tally: w.drainMs,
          baseline: commitTime,
          ratio: w.drainMs / commitTime,
          aim: null,
          met: null,
          note: `baseline: the time to commit ${count(SIZE.payments)} plain INSERTs at the baseline rate; last acknowledgement after ${formatDuration(w.ackMs)}, drained ${formatDuration(w.drainMs - w.ackMs)} later (processing ≈ ${count((SIZE.payments / w.drainMs) * 1000)} webhooks/s)`,
        },
        {
          measurement: 'correctness: matched payments credited exactly once',
          unit: 'credits',
          tally: w.check.credits,
          baseline: w.expectedCredits,
          ratio: w.check.credits / w.expectedCredits,
          aim: null,
          met: w.correct,
          note: correctness,
        },
        {
          measurement: 'CPU per webhook (Tally process + PostgreSQL, first sent → drained)',
          unit: 'ms',
          tally: w.cpuMsPerWebhook.tally + (w.cpuMsPerWebhook.postgres ?? 0),
          baseline: baseline.cpuMsPerOp,
          ratio: (w.cpuMsPerWebhook.tally + (w.cpuMsPerWebhook.postgres ?? 0)) / baseline.cpuMsPerOp,
          aim: null,
          met: null,
          note:
            `baseline: CPU per plain INSERT commit (pg client in this process + PostgreSQL); Tally ${formatMs(w.cpuMsPerWebhook.tally)} + PostgreSQL ${formatMs(w.cpuMsPerWebhook.postgres ?? Number.NaN)} per webhook, ` +
            `${w.transactionsPerWebhook.toFixed(1)} transactions and ${(w.statements.reduce((a, [, st]) => a + st.count, 0) / SIZE.payments).toFixed(1)} statements per webhook; ` +
            `at 2 dedicated cores this CPU alone caps end-to-end processing near ${count(2000 / (w.cpuMsPerWebhook.tally + (w.cpuMsPerWebhook.postgres ?? 0)))} webhooks/s`,
        },
        {
          measurement: `GET /api/v1/me/wallets, concurrency ${READ_CONCURRENCY}`,
          unit: 'req/s',
          tally: reads.tally.rate,
          baseline: reads.bare.rate,
          ratio: reads.tally.rate / reads.bare.rate,
          aim: AIMS.readsPerSecond,
          met: reads.errors.length === 0 && reads.tally.rate >= AIMS.readsPerSecond,
          note:
            `baseline: bare Koa route running walletsOfConsumer (same SQL) on the same pool in the same process, ${READ_ROUNDS} alternating slices of ${formatDuration(READ_SLICE_MS)} per side; ` +
            `the aim is absolute (${formatRatio(AIMS.readsPerSecond / reads.bare.rate)} of this run's baseline)${reads.errors.length ? `; non-200: ${reads.errors.join(', ')}` : ''}; ${count(world.consumers.length)} consumers' tokens`,
          detail: reads,
        },
        {
          measurement: 'GET /api/v1/me/wallets latency p99',
          unit: 'ms',
          tally: reads.tally.latencyMs.p99,
          baseline: reads.bare.latencyMs.p99,
          ratio: reads.tally.latencyMs.p99 / reads.bare.latencyMs.p99,
          aim: AIMS.readP99Ms,
          met: reads.tally.latencyMs.p99 <= AIMS.readP99Ms,
          note: `p50 ${formatMs(reads.tally.latencyMs.p50)} vs ${formatMs(reads.bare.latencyMs.p50)}`,
        },
      ];
      const sumRate = (runs: WebhookMetrics[]) => (runs.reduce((s2, r) => s2 + r.ok, 0) / runs.reduce((s2, r) => s2 + r.ackMs, 0)) * 1000;
      const mean = (runs: WebhookMetrics[], f: (r: WebhookMetrics) => number) => runs.reduce((s2, r) => s2 + f(r), 0) / runs.length;
      const asIsRuns = diagnosis.webhooks[AS_IS.key];
      if (asIsRuns) {
        for (const variant of WEBHOOK_PROTOTYPES) {
          const runs = diagnosis.webhooks[variant.key]!;
          const metrics: [string, string, (r: WebhookMetrics[]) => number][] = [
            ['ack rate', 'webhooks/s', sumRate],
            ['ack p99', 'ms', (r) => mean(r, (x) => x.p99)],
            ['lag p99', 'ms', (r) => mean(r, (x) => x.lagP99)],
            ['drain', 'ms', (r) => mean(r, (x) => x.drainMs)],
            ['CPU per webhook', 'ms', (r) => mean(r, (x) => x.cpuMsPerWebhook.tally + (x.cpuMsPerWebhook.postgres ?? 0))],
          ];
          for (const [name, unit, f] of metrics) {
            const t = f(runs);
            const b = f(asIsRuns);
            results.push({
              measurement: `${variant.label}: ${name}`,
              unit,
              tally: t,
              baseline: b,
              ratio: t / b,
              aim: null,
              met: null,
              note:
                name === 'ack rate'
                  ? `diagnosis: ${DIAGNOSTIC_ROUNDS} runs of ${count(DIAGNOSTIC_PAYMENTS)} payments each, interleaved with as many runs as is (the baseline column); correct: ${runs.map((r) => r.correct).join('/')}; diverted per run: ${JSON.stringify(runs[0]!.diverted)}`
                  : null,
              detail: name === 'ack rate' ? runs : undefined,
            });
          }
        }
        const asIsCpu = mean(asIsRuns, (x) => x.cpuMsPerWebhook.tally + (x.cpuMsPerWebhook.postgres ?? 0));
        const splitMean = (f: (x: Awaited<ReturnType<typeof splitRun>>) => number) => diagnosis.split.reduce((a, x) => a + f(x), 0) / diagnosis.split.length;
        for (const [name, part] of [
          ['ingestion alone (inbox processor; projection runner stopped)', 'ingestion'],
          ['projections + wallet-credits reactor (catching up afterwards)', 'projections'],
        ] as const) {
          const tallyMs = splitMean((x) => x[part].tally);
          const pgMs = splitMean((x) => x[part].postgres);
          results.push({
            measurement: `CPU per webhook, ${name}`,
            unit: 'ms',
            tally: tallyMs + pgMs,
            baseline: asIsCpu,
            ratio: (tallyMs + pgMs) / asIsCpu,
            aim: null,
            met: null,
            note: `diagnosis, ${diagnosis.split.length} runs of ${count(DIAGNOSTIC_PAYMENTS)} payments; baseline: CPU per webhook of the runs as is (everything live); Tally ${formatMs(tallyMs)} + PostgreSQL ${formatMs(pgMs)}; correct: ${diagnosis.split.map((x) => x.correct).join('/')}`,
          });
        }
        const readAsIs = diagnosis.reads[AS_IS.key]!;
        for (const variant of READ_PROTOTYPES) {
          const runs = diagnosis.reads[variant.key]!;
          const rate = (r: ReadMetrics[]) => r.reduce((s2, x) => s2 + x.tally.operations, 0) / (r.reduce((s2, x) => s2 + x.tally.elapsedMs, 0) / 1000);
          const bareRate = (r: ReadMetrics[]) => r.reduce((s2, x) => s2 + x.bare.operations, 0) / (r.reduce((s2, x) => s2 + x.bare.elapsedMs, 0) / 1000);
          results.push({
            measurement: `${variant.label}: GET /api/v1/me/wallets`,
            unit: 'req/s',
            tally: rate(runs),
            baseline: rate(readAsIs),
            ratio: rate(runs) / rate(readAsIs),
            aim: null,
            met: null,
            note:
              `diagnosis: ${DIAGNOSTIC_ROUNDS} runs each, interleaved; vs the bare route in the same runs: ${formatRatio(rate(runs) / bareRate(runs))} (as is: ${formatRatio(rate(readAsIs) / bareRate(readAsIs))}); ` +
              `HS256 token verification alone costs ${Math.round(diagnosis.tokens?.microseconds ?? Number.NaN)} µs of CPU per token first seen (${count(diagnosis.tokens?.perSecond ?? Number.NaN)}/s on one core), ${(diagnosis.tokens?.repeatMicroseconds ?? Number.NaN).toFixed(1)} µs per token seen before`,
            detail: runs,
          });
        }
      }

      const perWebhook = (k: number) => (k / SIZE.payments).toFixed(2);
      const report = [
        `## Webhook ingestion and wallet reads${SCALED ? ' (scaled down)' : ''}`,
        '',
        machineSummary(machine),
        `- Setup through the API: ${formatDuration(setupMs)}; Tally pool size ${tally.config.DATABASE_POOL_SIZE} (default)`,
        '',
        resultsTable(results),
        '',
        'Notes:',
        ...notes(results),
        '',
        'Where the time goes (webhook phase, first webhook → drained):',
        `- CPU: Tally process ${w.cpu.nodeCores.toFixed(2)} cores, PostgreSQL ${w.cpu.postgresCores?.toFixed(2) ?? '?'} cores, Square stand-in ${(w.squareCpuMs / w.cpu.wallMs).toFixed(2)} cores, the load generator the rest (2 cores in all)`,
        `- ${w.transactionsPerWebhook.toFixed(2)} committed transactions per webhook; statements per webhook sent by Tally (count × statement, summed client-side time incl. waiting for a connection):`,
        ...w.statements.slice(0, 24).map(([label, st]) => `  - ${perWebhook(st.count)} × \`${label}\` (${formatDuration(st.ms)})`),
        `- Reads phase CPU: Tally process ${reads.cpu.nodeCores.toFixed(2)} cores, PostgreSQL ${reads.cpu.postgresCores?.toFixed(2) ?? '?'} cores`,
        ...(w.hot ? ['', 'CPU profile of the Tally process during the webhook phase (self time, top 20):', ...w.hot.slice(0, 20).map((h) => `- ${h.function}: ${h.selfMs} ms (${(h.share * 100).toFixed(1)}%)`)] : []),
      ].join('\n');
      process.stdout.write(`${report}\n`);
      const file = await writeReport(DIAGNOSE || PROFILE ? 'ingest-diagnosis' : 'ingest', {
        quick,
        startedAt,
        durationMs: now() - started,
        machine,
        results,
        diagnostics: {
          size: SIZE,
          setupMs: Math.round(setupMs),
          webhooks: { ...w, statements: Object.fromEntries(w.statements.map(([k, v]) => [k, { perWebhook: v.count / SIZE.payments, ms: Math.round(v.ms) }])) },
          reads,
          profile: w.hot ?? null,
        },
      });
      log(`Results written to ${file}`);
    } finally {
      await new Promise<void>((resolve) => (bareServer ? bareServer.close(() => resolve()) : resolve()));
      await tally?.stop().catch((error) => log(`Tally did not stop cleanly: ${String(error)}`));
      await square.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 'tally_bench_ingest');
}

// process.exit() without a code: a WRONG correctness line has set the exit code to 1.
main().then(
  () => process.exit(),
  (error) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
