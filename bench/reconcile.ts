/**
 * `npm run bench:reconcile [-- --quick] [-- --events=<n>] [-- --diagnose] [-- --profile]`: reconciliation by
 * replay (`reconciler(...).all()`, projections/ops/reconcile.ts) over 1,000,000 wallet events of 50,000
 * wallets, against the read model built from them.
 *
 * Setup (not measured): the history of bench/wallet-history.ts bulk-written into the event store, and the
 * wallets read model computed from those events with SQL at the head position (the reconciler finding no
 * mismatch then also checks that SQL against the domain's fold).
 *
 * Correctness: the timed run finds 0 mismatches over all wallets and events; then (untimed) one wallet's balance is
 * made one point off in the read model, and a second reconciliation must report exactly that wallet (the row is put
 * back after), so a reconciler that compared nothing could not pass.
 *
 * Baseline, same run, same server: a plain keyset-paged SELECT of the same wallet events (the `data` column,
 * same filter, pages of the reconciler's size) — what merely fetching the events costs. Run before and after
 * the reconciliation and averaged.
 *
 * Where the time goes: statements are traced (count and round-trip time), CPU of this process and of the
 * server is metered, and with `--diagnose` the reconciler runs as it read before issue 16 item 4 (see `PROTOTYPES`,
 * each interleaved with the reconciler as is); `--profile` writes a CPU profile (bench/results/reconcile.cpuprofile).
 */
import pg from 'pg';
import { PostgresEventStore } from '../adapters/eventstore/postgres.ts';
import type { EventStore } from '../domain/ports/event-store.ts';
import { pointsDelta, WALLET_EVENT_TYPES } from '../domain/wallets/wallet.ts';
import { walletBalanceEvents } from '../domain/wallets/events.ts';
import { pino } from 'pino';
import { reconciler, settleWallets, type ReconcileReport } from '../projections/ops/reconcile.ts';
import { ProjectionRunner } from '../projections/runner.ts';
import { walletsProjection } from '../projections/wallets.ts';
import { log, machineInfo, machineSummary, now, openPool, checkpoint, withBenchDatabase, withClient, formatDuration, formatRatio, reportCorrectness, runBenchmark } from './support.ts';
import { cpuSnapshot, cpuSplit, postgresPids, statsObject, tracePool, withCpuProfile, type CpuSplit, type HotFunction } from './profile.ts';
import { buildReadModelFromEvents, fillWalletHistory, FULL_HISTORY, QUICK_HISTORY, type HistoryShape } from './wallet-history.ts';
import { notes, resultsTable, writeReport, type ResultRow } from './report.ts';

const argv = process.argv.slice(2);
const eventsArg = argv.find((a) => a.startsWith('--events='));
const unknown = argv.filter((a) => !['--quick', '--profile', '--diagnose'].includes(a) && a !== eventsArg);
if (unknown.length) throw new Error(`Unknown argument(s): ${unknown.join(' ')} (supported: --quick --events=<n> --diagnose --profile)`);
const flags = {
  quick: argv.includes('--quick'),
  profile: argv.includes('--profile'),
  diagnose: argv.includes('--diagnose'),
  events: eventsArg ? Number(eventsArg.slice('--events='.length)) : undefined,
};
if (flags.events !== undefined && (!Number.isInteger(flags.events) || flags.events < 20_000 || flags.events % 20 !== 0)) {
  throw new Error('--events must be a multiple of 20, at least 20,000');
}
const SHAPE: HistoryShape = flags.events
  ? { ...FULL_HISTORY, events: flags.events, wallets: flags.events / 20, transactions: Math.max(2, Math.round(flags.events / 100_000)) }
  : flags.quick
    ? QUICK_HISTORY
    : FULL_HISTORY;
const SCALED = SHAPE.events !== FULL_HISTORY.events;
/** Issue 16: reconciliation ≥ 0.6× a plain keyset SELECT of the same events, peak heap ≤ 256 MiB. */
const AIM_RATIO = 0.6;
const AIM_HEAP_MIB = 256;
/** projections/ops/reconcile.ts PAGE. */
const PAGE = 5000;
const POOL_SIZE = 10;
const DIAGNOSTIC_ROUNDS = 2;
const count = (n: number) => Math.round(n).toLocaleString('en-US');

function labelSql(sql: string): string {
  const s = sql.trimStart();
  if (s.startsWith('SELECT transaction_id::text AS tx_id')) return 'readAll page';
  if (s.startsWith('SELECT w.id AS wallet_id, w.tenant_id, w.points_balance')) return 'projected wallets';
  if (s.startsWith('SELECT name, position FROM projection_checkpoints')) return 'settle';
  if (s.startsWith('SELECT id, CASE entry_type')) return 'first difference';
  return 'other';
}

// ---------------------------------------------------------------------------------------------------------
// Baseline: fetching the same events, nothing else
// ---------------------------------------------------------------------------------------------------------

const PLAIN_SQL = `SELECT transaction_id::text AS tx, global_position, data FROM events
  WHERE event_type = ANY($1::text[]) AND stream_name LIKE 'wallet-%' AND (transaction_id, global_position) > ($2::xid8, $3::bigint)
  ORDER BY transaction_id, global_position LIMIT $4`;

async function plainRead(pool: pg.Pool): Promise<{ events: number; ms: number }> {
  const started = now();
  let tx = '0';
  let seq = '0';
  let events = 0;
  for (;;) {
    const { rows } = await pool.query<{ tx: string; global_position: string }>(PLAIN_SQL, [WALLET_EVENT_TYPES, tx, seq, PAGE]);
    events += rows.length;
    if (rows.length < PAGE) break;
    tx = rows.at(-1)!.tx;
    seq = rows.at(-1)!.global_position;
  }
  return { events, ms: now() - started };
}

// ---------------------------------------------------------------------------------------------------------
// Diagnosis (--diagnose): the reconciler as it was before issue 16 item 4, to show what that change gives
// ---------------------------------------------------------------------------------------------------------

/** The store's page query with the `metadata` column again (what readAll read before `omit`). */
const withMetadata = (sql: string) =>
  sql.trimStart().startsWith('SELECT transaction_id::text AS tx_id') ? sql.replace('NULL::jsonb AS metadata', 'metadata') : undefined;

interface Variant {
  key: string;
  label: string;
  rewrite?: (sql: string) => string | undefined;
}

const AS_IS: Variant = { key: 'asIs', label: 'reconciler().all() as is' };
const PROTOTYPES: Variant[] = [{ key: 'withMetadata', label: 'reading the metadata column too (readAll without omit)', rewrite: withMetadata }];

interface Run {
  variant: string;
  report: Omit<ReconcileReport, 'mismatches'> & { mismatches: number };
  elapsedMs: number;
  rate: number;
  statements: ReturnType<typeof statsObject>;
  cpu: CpuSplit;
  hot?: HotFunction[];
  heapUsedMiB: number;
}

async function runReconcile(url: string, pids: number[] | undefined, variant: Variant, profile: boolean): Promise<Run> {
  const base = await openPool(url, POOL_SIZE);
  try {
    const traced = tracePool(base, labelSql, variant.rewrite);
    const store = new PostgresEventStore(traced.pool, { connectionString: url });
    // As `npm run reconcile` does: wait (bounded) until the wallets projection has reached the head (a runner that
    // feeds nothing reads the checkpoint the setup wrote).
    const settle = settleWallets(new ProjectionRunner(traced.pool, { connectionString: url }, store, [walletsProjection], pino({ level: 'silent' })));
    const deps = { pool: traced.pool, store, settle };
    const target = reconciler(deps);
    (globalThis as { gc?: () => void }).gc?.();
    await withClient(url, (c) => checkpoint(c));
    const before = await cpuSnapshot(pids);
    let peakHeap = process.memoryUsage().heapUsed;
    const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 100);
    const reconcile = async () => {
      const t0 = now();
      const report = await target.all();
      return { report, elapsedMs: now() - t0 };
    };
    const profiled = profile ? await withCpuProfile('reconcile', reconcile) : undefined;
    const { report, elapsedMs } = profiled ? profiled.value : await reconcile();
    clearInterval(sampler);
    const after = await cpuSnapshot(pids);
    await store.close();
    return {
      variant: variant.key,
      report: { ...report, mismatches: report.mismatches.length },
      elapsedMs,
      rate: (report.eventsReplayed / elapsedMs) * 1000,
      statements: statsObject(traced.stats),
      cpu: cpuSplit(before, after),
      heapUsedMiB: Math.round(peakHeap / 2 ** 20),
      ...(profiled ? { hot: profiled.hot } : {}),
    };
  } finally {
    await base.end();
  }
}

/**
 * After the timed runs (untimed): one wallet of the read model is made wrong (its balance one point more), the
 * reconciler runs again and must report exactly that wallet, its projected balance one more than its replayed one;
 * then the row is put back. A reconciler that compared nothing would find the planted mismatch no more than the
 * zero mismatches of the timed run, which is what this tells apart.
 */
async function plantedMismatch(url: string): Promise<{ ok: boolean; what: string }> {
  const pool = await openPool(url, 2);
  try {
    const { rows } = await pool.query<{ id: string; points_balance: string }>('SELECT id, points_balance FROM wallets ORDER BY id LIMIT 1');
    const planted = rows[0];
    if (!planted) return { ok: false, what: 'no wallet in the read model to plant a mismatch in' };
    await pool.query('UPDATE wallets SET points_balance = points_balance + 1 WHERE id = $1', [planted.id]);
    try {
      const store = new PostgresEventStore(pool, { connectionString: url });
      try {
        const settle = settleWallets(new ProjectionRunner(pool, { connectionString: url }, store, [walletsProjection], pino({ level: 'silent' })));
        const report = await reconciler({ pool, store, settle }).all();
        const [m] = report.mismatches;
        const found = report.mismatches.length === 1 && m!.walletId === planted.id && m!.projected !== null && m!.replayed !== null && m!.projected.balance === m!.replayed.balance + 1;
        return {
          ok: found,
          what: found
            ? `the balance planted one point off in wallet ${planted.id} was reported, as the only mismatch`
            : `the balance planted one point off in wallet ${planted.id} was not reported as the only mismatch: ${report.mismatches.length} mismatches` +
              `${report.mismatches.length ? ` (${report.mismatches.slice(0, 3).map((x) => `${x.walletId} projected ${x.projected?.balance} replayed ${x.replayed?.balance}`).join(', ')})` : ''}`,
        };
      } finally {
        await store.close();
      }
    } finally {
      await pool.query('UPDATE wallets SET points_balance = $2 WHERE id = $1', [planted.id, planted.points_balance]);
    }
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const started = now();
  await withBenchDatabase(async (db) => {
    const machine = await machineInfo(db);
    const pids = db.embedded ? await withClient(db.adminUrl, (c) => postgresPids(c)) : undefined;
    log(`Writing ${count(SHAPE.events)} wallet events over ${count(SHAPE.wallets)} wallets...`);
    const fill = await fillWalletHistory(db.url, SHAPE);
    log(`  done in ${formatDuration(fill.ms)}; building the wallets read model from them (SQL)...`);
    const built = await buildReadModelFromEvents(db.url, fill.head);
    log(`  done in ${formatDuration(built.ms)}`);

    const plainPool = await openPool(db.url, 1);
    const baselines: { events: number; ms: number }[] = [];
    const baseline = async (n: number) => {
      await withClient(db.url, (c) => checkpoint(c));
      log(`Baseline ${n}: plain keyset SELECT of the wallet events (data), pages of ${count(PAGE)}...`);
      const b = await plainRead(plainPool);
      log(`  ${count(b.events)} events in ${formatDuration(b.ms)}`);
      baselines.push(b);
    };
    let asIs: Run;
    try {
      await baseline(1);
      log('reconciler().all()...');
      asIs = await runReconcile(db.url, pids, AS_IS, false);
      log(`  ${count(asIs.report.eventsReplayed)} events, ${asIs.report.walletsChecked} wallets, ${asIs.report.mismatches} mismatches in ${formatDuration(asIs.elapsedMs)}`);
      await baseline(2);
    } finally {
      await plainPool.end();
    }

    const diagnosis = new Map<string, Run[]>();
    if (flags.diagnose) {
      const variants = [AS_IS, ...PROTOTYPES];
      for (const v of variants) diagnosis.set(v.key, []);
      for (let round = 0; round < DIAGNOSTIC_ROUNDS; round++) {
        for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
          log(`[diagnosis round ${round + 1}] ${variant.label}...`);
          const run = await runReconcile(db.url, pids, variant, false);
          log(`  ${formatDuration(run.elapsedMs)}, ${run.report.mismatches} mismatches, peak heap ${run.heapUsedMiB} MiB`);
          diagnosis.get(variant.key)!.push(run);
        }
      }
    }
    let profiled: Run | undefined;
    if (flags.profile) {
      log('Profiled reconciliation (not part of the figures)...');
      profiled = await runReconcile(db.url, pids, AS_IS, true);
    }

    log('Planting a mismatch (one wallet\'s balance one point off) and reconciling again, untimed...');
    const planted = await plantedMismatch(db.url);
    log(`  ${planted.what}`);

    const baselineRate = (baselines.reduce((s, b) => s + b.events, 0) / baselines.reduce((s, b) => s + b.ms, 0)) * 1000;
    const scale = SCALED ? ` (SCALED DOWN${flags.quick ? ' --quick' : ''}: ${count(SHAPE.events)} of ${count(FULL_HISTORY.events)} events, ${count(SHAPE.wallets)} wallets)` : '';
    const correct = asIs.report.mismatches === 0 && asIs.report.eventsReplayed === SHAPE.events && asIs.report.walletsChecked === SHAPE.wallets;
    const reads = asIs.statements['readAll page'];
    const results: ResultRow[] = [
      {
        measurement: `reconcile all wallets, ${count(SHAPE.events)} events${scale}`,
        unit: 'events/s',
        tally: asIs.rate,
        baseline: baselineRate,
        ratio: asIs.rate / baselineRate,
        aim: AIM_RATIO,
        aimIsRatio: true,
        aimText: `≥ ${AIM_RATIO.toFixed(2)}, heap ≤ ${AIM_HEAP_MIB} MiB`,
        met: correct && asIs.rate / baselineRate >= AIM_RATIO && asIs.heapUsedMiB <= AIM_HEAP_MIB,
        note:
          `baseline: plain keyset SELECT of the same events' data, pages of ${count(PAGE)} (mean of ${baselines.length}); peak heap ${asIs.heapUsedMiB} MiB; ` +
          `${asIs.report.mismatches} mismatches over ${count(asIs.report.walletsChecked)} wallets` +
          `${correct ? ' (as expected)' : ' — UNEXPECTED'}; load average ${machine.loadAverage} on ${machine.cpus} cores`,
        detail: { run: asIs, baselines },
      },
    ];
    // Prototypes are compared on CPU time (this process + the server) per 1,000 events: on a shared machine
    // the wall time of two runs a minute apart can differ by 2× for reasons of its own, their CPU time much less.
    const asIsDiag = diagnosis.get(AS_IS.key);
    const wallRate = (runs: Run[]) => (runs.reduce((s, r) => s + r.report.eventsReplayed, 0) / runs.reduce((s, r) => s + r.elapsedMs, 0)) * 1000;
    const cpuPerK = (runs: Run[]) => (runs.reduce((s, r) => s + r.cpu.nodeMs + (r.cpu.postgresMs ?? 0), 0) / runs.reduce((s, r) => s + r.report.eventsReplayed, 0)) * 1000;
    const heap = (runs: Run[]) => Math.max(...runs.map((r) => r.heapUsedMiB));
    if (asIsDiag?.length) {
      for (const variant of PROTOTYPES) {
        const runs = diagnosis.get(variant.key)!;
        results.push({
          measurement: `${variant.label}${scale}`,
          unit: 'ms CPU/1k events',
          tally: cpuPerK(runs),
          baseline: cpuPerK(asIsDiag),
          ratio: cpuPerK(runs) / cpuPerK(asIsDiag),
          aim: null,
          met: null,
          note:
            `diagnosis, ${runs.length} runs each interleaved with the reconciler as is (the baseline column); lower is better. ` +
            `Wall: ${count(wallRate(runs))} vs ${count(wallRate(asIsDiag))} events/s (${formatRatio(wallRate(runs) / wallRate(asIsDiag))}); ` +
            `peak heap ${heap(runs)} vs ${heap(asIsDiag)} MiB; mismatches ${runs.map((r) => r.report.mismatches).join('/')}`,
          detail: runs,
        });
      }
    }

    const split = (c: CpuSplit) =>
      `wall ${formatDuration(c.wallMs)}, Node ${c.nodeCores.toFixed(2)} cores${c.postgresCores === null ? '' : `, PostgreSQL ${c.postgresCores.toFixed(2)} cores`}`;
    const out = [
      `## Reconciliation by replay${SCALED ? ' (scaled down)' : ''}`,
      '',
      machineSummary(machine),
      '',
      resultsTable(results),
      '',
      'Notes:',
      ...notes(results),
      '',
      'Where the time goes (as is):',
      `- ${split(asIs.cpu)}; ${((asIs.cpu.nodeMs / asIs.report.eventsReplayed) * 1000).toFixed(1)} ms of Node CPU per 1,000 events; peak heap ${asIs.heapUsedMiB} MiB`,
      `- statements: ${Object.entries(asIs.statements).map(([k, v]) => `${k} ×${count(v.count)} ${formatDuration(v.ms)}`).join(', ')}`,
      reads ? `- reading pages is ${Math.round((reads.ms / asIs.elapsedMs) * 100)}% of the run; the rest is in this process (fold, comparison) and the read model query` : '',
      ...(profiled?.hot ? ['', 'CPU profile of a reconciliation (self time, top 15):', ...profiled.hot.slice(0, 15).map((h) => `- ${h.function}: ${h.selfMs} ms (${(h.share * 100).toFixed(1)}%)`)] : []),
    ].join('\n');
    process.stdout.write(`${out}\n`);
    const file = await writeReport(flags.diagnose || flags.profile ? 'reconcile-diagnosis' : 'reconcile', {
      quick: flags.quick,
      startedAt,
      durationMs: now() - started,
      machine,
      results,
      diagnostics: { fillMs: Math.round(fill.ms), buildMs: Math.round(built.ms), shape: SHAPE, profile: profiled ? { hot: profiled.hot, cpu: profiled.cpu, elapsedMs: profiled.elapsedMs } : null },
    });
    log(`Results written to ${file}`);
    reportCorrectness(
      correct && planted.ok,
      `${asIs.report.mismatches} mismatches over ${count(asIs.report.walletsChecked)} of ${count(SHAPE.wallets)} wallets, ${count(asIs.report.eventsReplayed)} of ${count(SHAPE.events)} events replayed (expected: 0 mismatches, all of both); ` +
        `then ${planted.what}`,
    );
  }, 'tally_bench_reconcile');
}

runBenchmark(main);
