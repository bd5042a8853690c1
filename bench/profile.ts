/**
 * Where-does-the-time-go helpers for the benchmarks (bench only): CPU time of this process and of the
 * PostgreSQL server's processes over a phase, a statement tracer that also sees the statements sent on
 * checked-out clients (transactions), and an in-process CPU profile of one phase, summarised by self time.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { now } from './support.ts';

/** Linux clock ticks per second (`getconf CLK_TCK`), 100 on every mainstream kernel. */
const CLK_TCK = 100;

export interface CpuSnapshot {
  at: number;
  nodeUser: number;
  nodeSystem: number;
  /** Summed user+system CPU of the server's processes (ms), or undefined when it is not local. */
  postgres: number | undefined;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces): state is [0], ppid [1]. */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

const ticksMs = (ticks: number) => (ticks * 1000) / CLK_TCK;

/**
 * CPU of the whole PostgreSQL server (ms): the postmaster's own time, the time of its children that have
 * exited (cutime/cstime, reaped by the postmaster) and that of every live child (backends, WAL writer,
 * checkpointer, …). Backends opened or closed between two snapshots are counted either way, which a list of
 * pids taken once is not (a pool that opens its connections during the phase read as 0.01 cores).
 */
async function postgresServerCpuMs(anyPid: number): Promise<number | undefined> {
  const backend = await statFields(anyPid);
  if (!backend) return undefined;
  const postmaster = Number(backend[1]);
  const own = await statFields(postmaster);
  if (!own) return undefined;
  let ms = ticksMs(Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]));
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await statFields(Number(entry));
    if (fields && Number(fields[1]) === postmaster) ms += ticksMs(Number(fields[11]) + Number(fields[12]));
  }
  return ms;
}

async function processCpuMs(pid: number): Promise<number> {
  const fields = await statFields(pid);
  return fields ? ticksMs(Number(fields[11]) + Number(fields[12])) : 0;
}

/**
 * The server's processes, as pids of pg_stat_activity, taken once: `cpuSnapshot` reads their postmaster and all
 * of its children from any one of them, so connections opened later count without listing them again. Only for a
 * server the benchmark owns (embedded): on a shared one, other databases' work would count too.
 */
export async function postgresPids(db: { query: (sql: string) => Promise<{ rows: { pid: number }[] }> }): Promise<number[]> {
  const { rows } = await db.query('SELECT pid FROM pg_stat_activity');
  return rows.map((r) => r.pid);
}

export async function cpuSnapshot(pids: readonly number[] | undefined): Promise<CpuSnapshot> {
  const usage = process.cpuUsage();
  let postgres: number | undefined;
  for (const pid of pids ?? []) {
    postgres = await postgresServerCpuMs(pid);
    if (postgres !== undefined) break;
  }
  if (pids && postgres === undefined) {
    postgres = 0;
    for (const pid of pids) postgres += await processCpuMs(pid);
  }
  return { at: now(), nodeUser: usage.user / 1000, nodeSystem: usage.system / 1000, postgres };
}

export interface CpuSplit {
  wallMs: number;
  /** CPU of this Node process (ms) and as a share of the wall time (1 = one core busy throughout). */
  nodeMs: number;
  /** Of `nodeMs`, the kernel's (system time: socket writes and reads, mostly). */
  nodeSystemMs: number;
  nodeCores: number;
  postgresMs: number | null;
  postgresCores: number | null;
}

export function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuSplit {
  const wallMs = b.at - a.at;
  const nodeMs = b.nodeUser - a.nodeUser + (b.nodeSystem - a.nodeSystem);
  const postgresMs = a.postgres === undefined || b.postgres === undefined ? null : b.postgres - a.postgres;
  return {
    wallMs,
    nodeMs,
    nodeSystemMs: b.nodeSystem - a.nodeSystem,
    nodeCores: nodeMs / wallMs,
    postgresMs,
    postgresCores: postgresMs === null ? null : postgresMs / wallMs,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Statement tracing
// ---------------------------------------------------------------------------------------------------------

export interface StatementStats {
  count: number;
  /** Summed client-side round trips (ms), queueing for a connection excluded. */
  ms: number;
}

export interface TracedPool {
  pool: pg.Pool;
  stats: Map<string, StatementStats>;
  /** The last statement and parameters per label, e.g. to EXPLAIN what the code under test really sends. */
  last: Map<string, { sql: string; params: unknown[] }>;
  reset(): void;
}

type Query = (...args: unknown[]) => unknown;

/**
 * Wraps a pool so that every statement, on the pool or on a client checked out of it (transactions), is
 * counted and timed under `label(sql)`. The code under test is unchanged: it is handed the wrapper.
 * `rewrite` may return another statement to send instead (a prototype of a one-line change).
 */
export function tracePool(target: pg.Pool, label: (sql: string) => string, rewrite?: (sql: string) => string | undefined): TracedPool {
  const stats = new Map<string, StatementStats>();
  const last = new Map<string, { sql: string; params: unknown[] }>();
  const record = (sql: string, ms: number) => {
    const key = label(sql);
    const entry = stats.get(key) ?? { count: 0, ms: 0 };
    entry.count++;
    entry.ms += ms;
    stats.set(key, entry);
  };
  const wrapQuery = (send: Query): Query => (original: unknown, ...rest: unknown[]) => {
    const sqlOrConfig = applyRewrite(original, rewrite);
    const sql = typeof sqlOrConfig === 'string' ? sqlOrConfig : String((sqlOrConfig as { text?: string })?.text ?? '');
    const params = typeof sqlOrConfig === 'string' ? rest[0] : (sqlOrConfig as { values?: unknown })?.values;
    last.set(label(sql), { sql, params: Array.isArray(params) ? params : [] });
    const t0 = now();
    const result = send(sqlOrConfig, ...rest);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      return (result as Promise<unknown>).then(
        (value) => (record(sql, now() - t0), value),
        (error) => {
          record(sql, now() - t0);
          throw error;
        },
      );
    }
    return result;
  };
  const wrapClient = (client: pg.PoolClient): pg.PoolClient => {
    const marked = client as pg.PoolClient & { __traced?: boolean };
    if (!marked.__traced) {
      const original = client.query.bind(client) as Query;
      (client as unknown as { query: Query }).query = wrapQuery(original);
      marked.__traced = true;
    }
    return client;
  };
  const pool = new Proxy(target, {
    get(t, prop) {
      if (prop === 'query') return wrapQuery(t.query.bind(t) as Query);
      if (prop === 'connect') {
        // Both ways pg hands out a connection: the promise, and the callback (which runs synchronously at
        // hand-out; adapters/postgres/transaction.ts relies on that, so it is passed through, not emulated).
        return (callback?: unknown) => {
          if (typeof callback !== 'function') return t.connect().then(wrapClient);
          const done = callback as (error: Error | undefined, client: pg.PoolClient | undefined, release: (error?: Error | boolean) => void) => void;
          return t.connect((error, client, release) => done(error, client ? wrapClient(client) : client, release));
        };
      }
      return Reflect.get(t, prop, t);
    },
  });
  return { pool, stats, last, reset: () => stats.clear() };
}

/**
 * `rewrite` applied to a statement given as text or as a query config (`{ text, values, name? }`, as the
 * event store sends them). A named (prepared) statement whose text changes gets another name, so the
 * connection does not mistake it for the prepared original.
 */
export function applyRewrite(sqlOrConfig: unknown, rewrite: ((sql: string) => string | undefined) | undefined): unknown {
  if (!rewrite) return sqlOrConfig;
  if (typeof sqlOrConfig === 'string') return rewrite(sqlOrConfig) ?? sqlOrConfig;
  const config = sqlOrConfig as { text?: unknown; name?: unknown } | null;
  if (!config || typeof config.text !== 'string') return sqlOrConfig;
  const text = rewrite(config.text);
  if (text === undefined || text === config.text) return sqlOrConfig;
  return { ...config, text, ...(typeof config.name === 'string' ? { name: `${config.name}_bench` } : {}) };
}

export function statsObject(stats: Map<string, StatementStats>): Record<string, { count: number; ms: number; meanMs: number }> {
  return Object.fromEntries(
    [...stats.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([k, v]) => [k, { count: v.count, ms: Math.round(v.ms), meanMs: Math.round((v.ms / v.count) * 100) / 100 }]),
  );
}

// ---------------------------------------------------------------------------------------------------------
// CPU profile of one phase
// ---------------------------------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  function: string;
  selfMs: number;
  share: number;
}

/** Self time by function (and file:line), heaviest first; `(garbage collector)` etc. kept as V8 names them. */
export function summariseProfile(profile: Profile, top = 25): HotFunction[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url ? url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|main)\//, '$1/') : '';
    const key = `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, ms]) => ({ function: fn, selfMs: Math.round(ms), share: Math.round((ms / total) * 1000) / 1000 }));
}

/** Profiles this process while `body` runs; writes `<tmpdir>/<name>.cpuprofile` (for Chrome DevTools) and returns the hot list. */
export async function withCpuProfile<T>(name: string, body: () => Promise<T>): Promise<{ value: T; hot: HotFunction[]; file: string }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  let profile: Profile | undefined;
  let value: T;
  try {
    value = await body();
  } finally {
    profile = ((await session.post('Profiler.stop')) as unknown as { profile: Profile }).profile;
    session.disconnect();
  }
  const file = path.join(os.tmpdir(), `${name}.cpuprofile`);
  await writeFile(file, JSON.stringify(profile));
  return { value, hot: summariseProfile(profile), file };
}

// ---------------------------------------------------------------------------------------------------------
// Allocation profile of one phase
// ---------------------------------------------------------------------------------------------------------

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

export interface AllocatingFunction {
  function: string;
  /** Bytes allocated (sampled) by the function itself, and with what it calls. */
  selfBytes: number;
  totalBytes: number;
}

function frameKey({ functionName, url, lineNumber }: HeapNode['callFrame']): string {
  const file = url ? url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|main)\//, '$1/') : '';
  return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
}

/** Bytes allocated by function (self, and total with callees; recursion counted once), heaviest self first. */
export function summariseHeapProfile(head: HeapNode, top = 30): { allocatedBytes: number; functions: AllocatingFunction[] } {
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  const walk = (node: HeapNode, onStack: Set<string>): number => {
    const key = frameKey(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + node.selfSize);
    all += node.selfSize;
    const fresh = !onStack.has(key);
    if (fresh) onStack.add(key);
    let sum = node.selfSize;
    for (const child of node.children) sum += walk(child, onStack);
    if (fresh) {
      onStack.delete(key);
      total.set(key, (total.get(key) ?? 0) + sum);
    }
    return sum;
  };
  walk(head, new Set());
  const functions = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, bytes]) => ({ function: fn, selfBytes: bytes, totalBytes: total.get(fn) ?? bytes }));
  return { allocatedBytes: all, functions };
}

/**
 * Samples this process's allocations while `body` runs (V8's sampling heap profiler, every 32 KiB on average,
 * objects collected since included); writes `<tmpdir>/<name>.heapprofile` (for Chrome DevTools).
 */
export async function withHeapProfile<T>(name: string, body: () => Promise<T>): Promise<{ value: T; allocation: ReturnType<typeof summariseHeapProfile>; file: string }> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 32768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  let head: HeapNode | undefined;
  let value: T;
  try {
    value = await body();
  } finally {
    head = ((await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } }).profile.head;
    session.disconnect();
  }
  const file = path.join(os.tmpdir(), `${name}.heapprofile`);
  await writeFile(file, JSON.stringify({ head }));
  return { value, allocation: summariseHeapProfile(head), file };
}
