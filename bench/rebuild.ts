/**
 * `npm run bench:rebuild [-- --quick] [-- --profile]`: rebuilding the wallets projection from 1,000,000 wallet
 * events (50,000 wallets), through the real zero-downtime path: `ProjectionRebuilds.start('wallets')` and
 * `wait(jobId)` — fresh tables, the shared feed, batch transactions with their checkpoint, the takeover.
 *
 * Baseline, same run, same server: bulk-inserting the same number of read-model rows (one `wallet_ledger`
 * row per event plus one `wallets` row per wallet, same values) with INSERT … SELECT into tables with the
 * same indexes, no event processing. Measured before and after the rebuild, and averaged, so a drift of the
 * machine during the run affects both sides alike.
 *
 * Where the time goes: the rebuild runs with a statement tracer (count and round-trip time per statement
 * kind), the CPU of this process and of the PostgreSQL server is metered, the feed's reading alone is timed
 * (`store.readAll`, pages of the feed's size, against a plain keyset SELECT of the same rows), and
 * `--diagnose` runs the same rebuild without the parts issue 16 applied (see `PROTOTYPES`), to show what each
 * gives. `--profile` adds a CPU profile of the rebuild (bench/results/rebuild.cpuprofile).
 */
import { walletIdFor } from '../wiring/ids.ts';
import { provideCommandPath } from '../adapters/commands/path.ts';
import { pino } from 'pino';
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
import { PostgresEventStore } from '../adapters/eventstore/postgres.ts';
import type { EventStore, Position } from '../domain/ports/event-store.ts';
import { allProjections } from '../projections/index.ts';
import { ProjectionRebuilds } from '../projections/rebuild.ts';
import type { Projection } from '../projections/projection.ts';
import { walletsProjection } from '../projections/wallets.ts';
import {
  checkpoint,
  formatDuration,
  formatRate,
  formatRatio,
  log,
  machineInfo,
  machineSummary,
  now,
  openPool,
  withBenchDatabase,
  withClient,
  type BenchDatabase,
  reportCorrectness,
  runBenchmark,
} from './support.ts';
import { notes, resultsTable, writeReport, type ResultRow } from './report.ts';
import { cpuSnapshot, cpuSplit, postgresPids, statsObject, tracePool, withCpuProfile, type CpuSplit } from './profile.ts';
import { bulkInsertReadModel, expectedTotals, fillWalletHistory, FULL_HISTORY, projectedTotals, QUICK_HISTORY, type HistoryShape } from './wallet-history.ts';

const argv = process.argv.slice(2);
const known = ['--quick', '--profile', '--diagnose', '--events=<n>'];
const eventsArg = argv.find((a) => a.startsWith('--events='));
const unknown = argv.filter((a) => !['--quick', '--profile', '--diagnose'].includes(a) && a !== eventsArg);
if (unknown.length) throw new Error(`Unknown argument(s): ${unknown.join(' ')} (supported: ${known.join(' ')})`);
const flags = {
  quick: argv.includes('--quick'),
  /** CPU profile of one more rebuild, after the measurements. */
  profile: argv.includes('--profile'),
  /** Prototype runs (see PROTOTYPES) after the measurements. */
  diagnose: argv.includes('--diagnose'),
  /** Scale-down: this many events (20 per wallet); reported in every row's label. */
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
/** The shape the aims are set for; anything smaller is a documented scale-down. */
const SCALED = SHAPE.events !== FULL_HISTORY.events;
const REBUILD_AIM_RATE = 50_000;
/** Issue 16: rebuild ≥ 0.5× INSERT … SELECT of the same rows. */
const REBUILD_AIM_RATIO = 0.5;
/** The page size a rebuild's subscription reads (projections/rebuild.ts REBUILD_BATCH). */
const FEED_PAGE = 20_000;
/** Pool size of the operations commands (main.ts openOperations). */
const POOL_SIZE = 10;
const DIAGNOSTIC_ROUNDS = 2;

const count = (n: number) => n.toLocaleString('en-US');
const silent = pino({ level: 'silent' });

function labelSql(sql: string): string {
  const s = sql.trimStart();
  if (s.startsWith('WITH ledger AS')) return 'apply: wallets write';
  if (s.startsWith('WITH batch AS')) return 'apply: wallets write (no replay)';
  if (s.startsWith('SELECT w.id, w.tenant_id, w.consumer_id')) return 'replay: load';
  if (s.startsWith('UPDATE') && s.includes('FROM unnest')) return 'replay: settle';
  if (s.startsWith('SELECT transaction_id::text AS tx_id')) return 'feed: read page';
  if (s.startsWith('BEGIN; SELECT position') && s.includes('FOR UPDATE')) return 'batch: BEGIN and lock checkpoint';
  if (s.startsWith('SELECT position FROM projection_checkpoints') && s.includes('FOR UPDATE')) return 'batch: lock checkpoint';
  if (s.startsWith('UPDATE projection_checkpoints') && s.endsWith('; COMMIT')) return 'batch: move checkpoint and COMMIT';
  if (s.startsWith('UPDATE projection_checkpoints')) return 'batch: move checkpoint';
  if (s.startsWith('UPDATE projection_rebuilds SET events_applied')) return 'batch: job progress';
  if (s === 'BEGIN' || s === 'COMMIT' || s.startsWith('SET LOCAL')) return `batch: ${s.split(' ').slice(0, 2).join(' ')}`;
  if (s.includes('pg_notify')) return 'notify';
  return 'other';
}

// ---------------------------------------------------------------------------------------------------------
// Diagnosis (--diagnose): the same rebuild without what issue 16 applied, to show what each part gives
// ---------------------------------------------------------------------------------------------------------

interface Variant {
  key: string;
  label: string;
  /** ProjectionRebuilds' maxBatch (undefined: its default, REBUILD_BATCH in projections/rebuild.ts). */
  maxBatch?: number;
  /** Projections to give ProjectionRebuilds instead of allProjections(). */
  projections?: (store: EventStore) => Projection[];
}

/** The wallets projection without its replay: every batch goes through `apply` (running balances in SQL). */
const withoutReplay = (): Projection[] => {
  const { replay: _replay, ...rest } = walletsProjection;
  return [rest];
};

const AS_IS: Variant = { key: 'asIs', label: 'ProjectionRebuilds as is (replay with balances in memory, column arrays, batches and pages of 20,000 read ahead)' };
const PROTOTYPES: Variant[] = [
  { key: 'noReplay', label: 'without the replay: apply per batch (balances run in SQL), batches of 20,000', projections: withoutReplay },
  { key: 'noReplay1000', label: 'without the replay, batches and pages of 1,000 (the rebuild before issue 16 item 3, but column arrays)', maxBatch: 1000, projections: withoutReplay },
];

interface RebuildRun {
  variant: string;
  events: number;
  elapsedMs: number;
  rate: number;
  state: string;
  batches: number;
  statements: ReturnType<typeof statsObject>;
  cpu: CpuSplit;
  correct: boolean;
  totals: Awaited<ReturnType<typeof projectedTotals>>;
  hot?: Awaited<ReturnType<typeof withCpuProfile>>['hot'];
}

async function resetReadModel(db: BenchDatabase, head: string, events: number): Promise<void> {
  await withClient(db.url, async (client) => {
    await client.query('TRUNCATE wallet_ledger, wallets');
    await client.query(`DELETE FROM projection_rebuilds`);
    await client.query(`DELETE FROM projection_checkpoints WHERE name LIKE 'wallets#%'`);
    // The live projection is at the head, as in a running service: the rebuild's total and takeover use it.
    await client.query(
      `INSERT INTO projection_checkpoints (name, position, events_applied, status) VALUES ('wallets', $1, $2, 'running')
       ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, events_applied = EXCLUDED.events_applied, status = 'running'`,
      [head, events],
    );
    // Tables a previous run's fresh copies left behind (none normally).
    const { rows } = await client.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE tablename LIKE 'wallet%\\_\\_%'`);
    for (const r of rows) await client.query(`DROP TABLE IF EXISTS "${r.tablename}"`);
  });
}

async function runRebuild(db: BenchDatabase, pids: number[] | undefined, head: string, variant: Variant, expected: Awaited<ReturnType<typeof expectedTotals>>, profile: boolean): Promise<RebuildRun> {
  await resetReadModel(db, head, SHAPE.events);
  const base = await openPool(db.url, POOL_SIZE);
  try {
    const traced = tracePool(base, labelSql);
    const realStore = new PostgresEventStore(traced.pool, { connectionString: db.url });
    const store = realStore;
    const projections = variant.projections ? variant.projections(store) : allProjections({ store, newId: uuidv4, walletIdFor, commands: provideCommandPath(traced.pool) });
    const rebuilds = new ProjectionRebuilds(traced.pool, { connectionString: db.url }, store, projections, silent, uuidv4, variant.maxBatch ? { maxBatch: variant.maxBatch } : {});
    await withClient(db.url, (c) => checkpoint(c));
    const before = await cpuSnapshot(pids);
    const rebuild = async () => {
      const started = now();
      const job = await rebuilds.start('wallets');
      const done = await rebuilds.wait(job.jobId);
      return { elapsedMs: now() - started, done };
    };
    const profiled = profile ? await withCpuProfile('rebuild', rebuild) : undefined;
    const { elapsedMs, done } = profiled ? profiled.value : await rebuild();
    const after = await cpuSnapshot(pids);
    await realStore.close();
    const totals = await projectedTotals(db.url);
    const correct =
      done?.state === 'completed' && totals.ledgerRows === expected.events && totals.wallets === expected.wallets && totals.balance === expected.balance && totals.ledgerBalance === expected.balance;
    const batches = (traced.stats.get('apply: wallets write')?.count ?? 0) + (traced.stats.get('apply: wallets write (no replay)')?.count ?? 0);
    return {
      variant: variant.key,
      events: done?.eventsApplied ?? 0,
      elapsedMs,
      rate: ((done?.eventsApplied ?? 0) / elapsedMs) * 1000,
      state: done?.state ?? 'missing',
      batches,
      statements: statsObject(traced.stats),
      cpu: cpuSplit(before, after),
      correct,
      totals,
      ...(profiled ? { hot: profiled.hot } : {}),
    };
  } finally {
    await base.end();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading alone
// ---------------------------------------------------------------------------------------------------------

const PLAIN_READ_SQL = `SELECT transaction_id::text AS tx_id, global_position, event_id, stream_name, stream_revision, event_type, data, metadata, recorded_at
  FROM events WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint) ORDER BY transaction_id, global_position LIMIT $3`;

async function readThroughStore(pool: pg.Pool, url: string, pageSize: number): Promise<{ events: number; ms: number }> {
  const store = new PostgresEventStore(pool, { connectionString: url });
  const started = now();
  let from: Position | undefined;
  let events = 0;
  for (;;) {
    const page = await store.readAll({ ...(from ? { from } : {}), limit: pageSize + (from ? 1 : 0) });
    const fresh = from ? page.slice(1) : page;
    events += fresh.length;
    if (fresh.length < pageSize) break;
    from = fresh.at(-1)!.position;
  }
  return { events, ms: now() - started };
}

async function readPlain(pool: pg.Pool, pageSize: number): Promise<{ events: number; ms: number }> {
  const started = now();
  let tx = '0';
  let seq = '0';
  let events = 0;
  for (;;) {
    const { rows } = await pool.query<{ tx_id: string; global_position: string }>(PLAIN_READ_SQL, [tx, seq, pageSize]);
    events += rows.length;
    if (rows.length < pageSize) break;
    tx = rows.at(-1)!.tx_id;
    seq = rows.at(-1)!.global_position;
  }
  return { events, ms: now() - started };
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date();
  const started = now();
  await withBenchDatabase(async (db) => {
    const machine = await machineInfo(db);
    const pids = db.embedded ? await withClient(db.adminUrl, (c) => postgresPids(c)) : undefined;
    log(`Writing ${count(SHAPE.events)} wallet events over ${count(SHAPE.wallets)} wallets...`);
    const fill = await fillWalletHistory(db.url, SHAPE);
    const expected = await expectedTotals(db.url);
    log(`  done in ${formatDuration(fill.ms)}; head ${fill.head}; expected balance ${count(expected.balance)}`);

    const baselines: { ms: number; ledgerRows: number; walletRows: number }[] = [];
    const baseline = async (n: number) => {
      await withClient(db.url, (c) => checkpoint(c));
      log(`Baseline ${n}: bulk INSERT … SELECT of the read-model rows...`);
      const b = await bulkInsertReadModel(db.url, SHAPE, String(n));
      log(`  ${count(b.ledgerRows)} + ${count(b.walletRows)} rows in ${formatDuration(b.ms)}`);
      baselines.push(b);
    };

    await baseline(1);
    log('Rebuild (ProjectionRebuilds.start + wait)...');
    const asIs = await runRebuild(db, pids, fill.head, AS_IS, expected, false);
    log(`  ${count(asIs.events)} events in ${formatDuration(asIs.elapsedMs)} (${formatRate(asIs.rate, ' events/s')}), ${asIs.batches} batches, correct: ${asIs.correct}`);
    await baseline(2);

    // Reading alone, interleaved with its plain baseline.
    const readPool = await openPool(db.url, 2);
    const reads = { store: [] as { events: number; ms: number }[], plain: [] as { events: number; ms: number }[] };
    try {
      log(`Reading the feed alone: store.readAll pages of ${count(FEED_PAGE)} vs a plain keyset SELECT...`);
      reads.store.push(await readThroughStore(readPool, db.url, FEED_PAGE));
      reads.plain.push(await readPlain(readPool, FEED_PAGE));
      log(`  readAll ${formatDuration(reads.store[0]!.ms)}, plain ${formatDuration(reads.plain[0]!.ms)}`);
    } finally {
      await readPool.end();
    }

    // Prototypes: each variant and the rebuild as is, twice, in alternating order (A B C …, … C B A), summed,
    // so that the machine's drift during the diagnosis affects every variant alike.
    const prototypeRuns: (RebuildRun & { label: string; runs: RebuildRun[] })[] = [];
    let asIsDiagnostic: RebuildRun[] = [];
    if (flags.diagnose) {
      const variants = [AS_IS, ...PROTOTYPES];
      const runs = new Map<string, RebuildRun[]>(variants.map((v) => [v.key, []]));
      for (let round = 0; round < DIAGNOSTIC_ROUNDS; round++) {
        for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
          log(`[diagnosis round ${round + 1}] ${variant.label}...`);
          const run = await runRebuild(db, pids, fill.head, variant, expected, false);
          log(`  ${formatDuration(run.elapsedMs)} (${formatRate(run.rate, ' events/s')}), ${run.batches} batches, correct: ${run.correct}`);
          runs.get(variant.key)!.push(run);
        }
      }
      const combine = (list: RebuildRun[]): RebuildRun => {
        const events = list.reduce((s, r) => s + r.events, 0);
        const elapsedMs = list.reduce((s, r) => s + r.elapsedMs, 0);
        return { ...list[0]!, events, elapsedMs, rate: (events / elapsedMs) * 1000, correct: list.every((r) => r.correct) };
      };
      asIsDiagnostic = runs.get(AS_IS.key)!;
      for (const variant of PROTOTYPES) {
        const list = runs.get(variant.key)!;
        prototypeRuns.push({ ...combine(list), label: variant.label, runs: list });
      }
      prototypeRuns.unshift({ ...combine(asIsDiagnostic), label: `${AS_IS.label} (diagnosis rounds)`, runs: asIsDiagnostic });
    }
    let profiled: RebuildRun | undefined;
    if (flags.profile) {
      log('Profiled rebuild (not part of the figures)...');
      profiled = await runRebuild(db, pids, fill.head, AS_IS, expected, true);
    }

    const baselineMs = baselines.reduce((s, b) => s + b.ms, 0) / baselines.length;
    const baselineRate = (SHAPE.events / baselineMs) * 1000;
    const readRate = (r: { events: number; ms: number }[]) => (r.reduce((s, x) => s + x.events, 0) / r.reduce((s, x) => s + x.ms, 0)) * 1000;
    const storeReadRate = readRate(reads.store);
    const plainReadRate = readRate(reads.plain);
    const scale = SCALED ? ` (SCALED DOWN${flags.quick ? ' --quick' : ''}: ${count(SHAPE.events)} of ${count(FULL_HISTORY.events)} events, ${count(SHAPE.wallets)} wallets)` : '';
    const apply = asIs.statements['apply: wallets write'];
    const page = asIs.statements['feed: read page'];

    const results: ResultRow[] = [
      {
        measurement: `rebuild wallets, ${count(SHAPE.events)} events${scale}`,
        unit: 'events/s',
        tally: asIs.rate,
        baseline: baselineRate,
        ratio: asIs.rate / baselineRate,
        aim: REBUILD_AIM_RATIO,
        aimIsRatio: true,
        met: asIs.correct && asIs.rate / baselineRate >= REBUILD_AIM_RATIO,
        note: `baseline: INSERT … SELECT of ${count(SHAPE.events)} ledger + ${count(SHAPE.wallets)} wallet rows (mean of ${baselines.length}); result ${asIs.correct ? 'verified' : 'WRONG'}`,
        detail: { rebuild: asIs, baselines },
      },
      {
        measurement: `rebuild wallets, absolute rate${scale}`,
        unit: 'events/s',
        tally: asIs.rate,
        baseline: baselineRate,
        ratio: asIs.rate / baselineRate,
        aim: REBUILD_AIM_RATE,
        met: asIs.correct && asIs.rate >= REBUILD_AIM_RATE,
        note: `aim is ≥ ${count(REBUILD_AIM_RATE)} events/s absolute (${formatRatio(REBUILD_AIM_RATE / baselineRate)} of this run's baseline); load average ${machine.loadAverage} on ${machine.cpus} cores`,
      },
      {
        measurement: `readAll paging alone, pages of ${count(FEED_PAGE)}${scale}`,
        unit: 'events/s',
        tally: storeReadRate,
        baseline: plainReadRate,
        ratio: storeReadRate / plainReadRate,
        aim: null,
        met: null,
        note: `baseline: plain keyset SELECT, same columns and pages; reading alone takes ${Math.round((asIs.rate / storeReadRate) * 100)}% of the rebuild's time`,
        detail: reads,
      },
    ];
    // Prototypes are compared on CPU time (this process + the server) per 1,000 events, lower is better: on
    // a shared machine the wall time of runs a minute apart differs for reasons of its own, CPU time much less.
    const asIsInDiagnosis = prototypeRuns[0];
    const cpuPerK = (r: RebuildRun & { runs: RebuildRun[] }) =>
      (r.runs.reduce((a, x) => a + x.cpu.nodeMs + (x.cpu.postgresMs ?? 0), 0) / r.runs.reduce((a, x) => a + x.events, 0)) * 1000;
    for (const run of prototypeRuns.slice(1)) {
      results.push({
        measurement: `${run.label}${scale}`,
        unit: 'ms CPU/1k events',
        tally: cpuPerK(run),
        baseline: cpuPerK(asIsInDiagnosis!),
        ratio: cpuPerK(run) / cpuPerK(asIsInDiagnosis!),
        aim: null,
        met: null,
        note:
          `diagnosis, ${DIAGNOSTIC_ROUNDS} runs each interleaved with the rebuild as is (the baseline column); lower is better. ` +
          `Wall: ${formatRate(run.rate, ' events/s')} vs ${formatRate(asIsInDiagnosis!.rate, ' events/s')} (${formatRatio(run.rate / asIsInDiagnosis!.rate)}; vs the bulk baseline ${formatRatio(run.rate / baselineRate)}); ` +
          `${run.batches} batches; ${run.correct ? 'result verified' : 'WRONG RESULT'}`,
        detail: run,
      });
    }

    const table = resultsTable(results);
    const split = (c: CpuSplit) =>
      `wall ${formatDuration(c.wallMs)}, Node ${c.nodeCores.toFixed(2)} cores${c.postgresCores === null ? '' : `, PostgreSQL ${c.postgresCores.toFixed(2)} cores`}`;
    const out = [
      `## Rebuild of the wallets projection${flags.quick ? ' (--quick)' : ''}`,
      '',
      machineSummary(machine),
      '',
      table,
      '',
      'Notes:',
      ...notes(results),
      '',
      'Where the rebuild\'s time goes (as is):',
      `- ${split(asIs.cpu)}; per 1,000 events: ${((asIs.cpu.nodeMs / asIs.events) * 1000).toFixed(0)} ms Node CPU, ${asIs.cpu.postgresMs === null ? '?' : ((asIs.cpu.postgresMs / asIs.events) * 1000).toFixed(0)} ms PostgreSQL CPU`,
      `- ${asIs.batches} batches (${Math.round(asIs.events / Math.max(asIs.batches, 1))} events each); statements: ${Object.entries(asIs.statements)
        .map(([k, v]) => `${k} ×${count(v.count)} ${formatDuration(v.ms)}`)
        .join(', ')}`,
      apply && page ? `- per batch: apply ${apply.meanMs} ms, page read ${page.meanMs} ms (reads overlap with applies by at most one page)` : '',
      ...prototypeRuns.map((r) => `- ${r.label}: ${split(r.cpu)}`),
      ...(profiled?.hot ? ['', 'CPU profile of a rebuild (self time, top 15):', ...profiled.hot.slice(0, 15).map((h) => `- ${h.function}: ${h.selfMs} ms (${(h.share * 100).toFixed(1)}%)`)] : []),
    ].join('\n');
    process.stdout.write(`${out}\n`);
    const file = await writeReport(flags.diagnose || flags.profile ? 'rebuild-diagnosis' : 'rebuild', {
      quick: flags.quick,
      startedAt,
      durationMs: now() - started,
      machine,
      results,
      diagnostics: {
        fillMs: Math.round(fill.ms),
        shape: SHAPE,
        profile: profiled ? { hot: profiled.hot, cpu: profiled.cpu, elapsedMs: profiled.elapsedMs, statements: profiled.statements } : null,
      },
    });
    log(`Results written to ${file}`);
    reportCorrectness(
      asIs.correct,
      asIs.correct
        ? `the rebuilt wallets (${count(asIs.totals.wallets)} wallets, ${count(asIs.totals.ledgerRows)} ledger rows, balance ${count(asIs.totals.balance)}) equal the totals summed from the ${count(expected.events)} events`
        : `rebuild ${asIs.state}; rebuilt ${JSON.stringify(asIs.totals)}, summed from the events ${JSON.stringify(expected)}`,
    );
  }, 'tally_bench_rebuild');
}

runBenchmark(main);
