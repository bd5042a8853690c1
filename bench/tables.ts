/**
 * `npm run bench:tables`: rewrites every benchmark table in README.md from `bench/results/<name>.json`, so the
 * tables and the result files cannot disagree. A table lives between `<!-- bench:<name> -->` and
 * `<!-- /bench:<name> -->`; everything between the markers is generated (a line naming the run, then the
 * table), everything around them is prose. `npm run bench:tables -- --check` only compares (exit 1 when
 * README differs); tests/unit/bench-tables.test.ts does the same in `npm test`.
 *
 * Result files in the shape bench/report.ts writes (`results`: one row per measurement) need no code here:
 * a new benchmark that writes one gets its table by adding the markers. audit.json and reads.json have
 * shapes of their own, rendered below; ingest.json's rows carry the aims in words (`aimText`).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatMs, markdownTable, RESULTS_DIR } from './support.ts';

export const README = path.join(path.dirname(RESULTS_DIR), '..', 'README.md');

const MARKER = /<!-- bench:([a-z0-9-]+) -->\n[\s\S]*?<!-- \/bench:\1 -->/g;

interface ReportRow {
  measurement: string;
  unit: string;
  tally: number;
  baseline: number;
  ratio: number;
  aim: number | null;
  met: boolean | null;
  aimIsRatio?: boolean;
}

interface Report {
  benchmark?: string;
  quick?: boolean;
  startedAt?: string;
  durationMs?: number;
  machine?: { cpus: number; cpuModel: string; loadAverage?: number; postgres: string; postgresServer: string } | string;
  results: ReportRow[];
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const HEADERS = ['measurement', 'Tally', 'baseline (same run)', 'ratio', 'aim', 'met'];

function value(n: number, unit: string): string {
  if (!Number.isFinite(n)) return '—';
  if (unit === 'ms') return n >= 1000 ? `${count(n)} ms` : formatMs(n);
  return `${count(n)} ${unit}`;
}

/** Files written before `aimIsRatio` was kept: an aim below 10 on a rate is a ratio (no rate aim is that low). */
const isRatioAim = (row: ReportRow) => row.aimIsRatio ?? (row.aim !== null && row.unit !== 'ms' && !row.unit.startsWith('ms ') && row.aim < 10);

/** Two decimals; fewer for large ratios (a lag of 6,468× its baseline); three where two would hide which side of a ratio aim it fell on. */
function formatRatio(r: number, aimRatio?: number): string {
  if (!Number.isFinite(r)) return '—';
  if (r >= 100) return count(r);
  if (r >= 10) return r.toFixed(1);
  return r.toFixed(aimRatio !== undefined && Math.abs(r - aimRatio) < 0.01 ? 3 : 2);
}

const ratio = (row: ReportRow) => formatRatio(row.ratio, isRatioAim(row) ? row.aim! : undefined);

function aim(row: ReportRow): string {
  if (row.aim === null) return '—';
  if (isRatioAim(row)) return `≥ ${row.aim.toFixed(2)}`;
  return row.unit === 'ms' || row.unit.startsWith('ms ') ? `≤ ${value(row.aim, row.unit)}` : `≥ ${value(row.aim, row.unit)}`;
}

const met = (m: boolean | null) => (m === null ? '—' : m ? 'yes' : '**no**');

function runLine(file: string, report: Pick<Report, 'quick' | 'startedAt' | 'durationMs' | 'machine'>): string {
  const parts = [`\`bench/results/${file}\``];
  if (report.startedAt) parts.push(`${report.startedAt.slice(0, 16).replace('T', ' ')} UTC`);
  if (report.durationMs !== undefined) parts.push(`${Math.round(report.durationMs / 1000)} s`);
  const machine = report.machine;
  if (machine && typeof machine === 'object') {
    parts.push(`${machine.cpus} × ${machine.cpuModel}`);
    if (machine.loadAverage !== undefined) parts.push(`load average ${machine.loadAverage} at the start`);
    parts.push(`PostgreSQL ${machine.postgres.split(' ')[0]} (${machine.postgresServer})`);
  }
  return `Run: ${parts.join(', ')}${report.quick ? ' (a **--quick** run: scaled down, not for conclusions)' : ''}.`;
}

function reportTable(file: string, report: Report): string {
  const rows = report.results.map((r) => [r.measurement, value(r.tally, r.unit), value(r.baseline, r.unit), ratio(r), aim(r), met(r.met)]);
  return `${runLine(file, report)}\n\n${markdownTable(HEADERS, rows)}`;
}

interface IngestRow extends ReportRow {
  /** The aim in its own words (`≥ 1,500/s and ≥ 0.30×`), where one number does not say it. */
  aimText?: string;
  note?: string;
}

/** Per-webhook figures below 10 keep their decimals (0.87 transactions, 0.248 look-ups); aims as the issue words them. */
function ingestTable(file: string, report: Omit<Report, 'results'> & { results: IngestRow[] }): string {
  const figure = (n: number, unit: string) => (Number.isFinite(n) && unit === 'per webhook' ? `${n.toFixed(n < 1 ? 3 : 2)} ${unit}` : value(n, unit));
  const rows = report.results.map((r) => [
    r.measurement,
    figure(r.tally, r.unit),
    figure(r.baseline, r.unit),
    ratio(r),
    r.aimText ?? (r.aim !== null && r.unit === 'per webhook' ? `≤ ${r.aim}` : aim(r)),
    met(r.met),
  ]);
  return `${runLine(file, report)}\n\n${markdownTable(HEADERS, rows)}`;
}

interface AuditFile {
  quick: boolean;
  rows: number;
  runs: number;
  machine: Report['machine'];
  cases: { name: string; firstPage: { p50: number }; deepPage: { p50: number }; baseline: { p50: number } }[];
}

/** Tally: the slower p50 of the first page and a page 90 % deep; baseline: the newest rows by key, timed in turns with them. */
function auditTable(file: string, audit: AuditFile): string {
  const rows = audit.cases.map((c) => {
    const tally = Math.max(c.firstPage.p50, c.deepPage.p50);
    return [c.name, formatMs(tally), formatMs(c.baseline.p50), formatRatio(tally / c.baseline.p50), '—', '—'];
  });
  const line = `${runLine(file, audit)} ${count(audit.rows)} rows, ${audit.runs} runs per case; ratio is Tally ÷ baseline time (lower is better).`;
  return `${line}\n\n${markdownTable(['measurement (filter)', 'Tally p50', 'baseline p50 (same run)', 'ratio', 'aim', 'met'], rows)}`;
}

interface ReadsFile {
  quick?: boolean;
  size: { consumers: number; tenants: number; runs: number; rounds: number; sliceMs: number };
  tally: { rate: number; p99: number };
  bare: { rate: number; p99: number };
  ratio: number;
  ratios: number[];
  cpu: Record<string, { nodeUsPerRequest: number; postgresUsPerRequest: number | null }>;
}

/** Against the bare route: a Koa app running the same SQL for a consumer id in a header. */
function readsTable(file: string, reads: ReadsFile): string {
  const rows = [
    ['GET /api/v1/me/wallets, concurrency 64', `${count(reads.tally.rate)} req/s`, `${count(reads.bare.rate)} req/s`, formatRatio(reads.ratio), '≥ 0.90', met(reads.ratio >= 0.9)],
    ['latency p99 (mean of the runs)', formatMs(reads.tally.p99), formatMs(reads.bare.p99), formatRatio(reads.tally.p99 / reads.bare.p99), '≤ 1.20', met(reads.tally.p99 / reads.bare.p99 <= 1.2)],
  ];
  const tallyCpu = reads.cpu.tally;
  const bareCpu = reads.cpu.bare;
  if (tallyCpu && bareCpu) {
    rows.push(['CPU per request, this process', `${count(tallyCpu.nodeUsPerRequest)} µs`, `${count(bareCpu.nodeUsPerRequest)} µs`, formatRatio(tallyCpu.nodeUsPerRequest / bareCpu.nodeUsPerRequest), '—', '—']);
    if (tallyCpu.postgresUsPerRequest !== null && bareCpu.postgresUsPerRequest !== null) {
      rows.push(['CPU per request, PostgreSQL', `${count(tallyCpu.postgresUsPerRequest)} µs`, `${count(bareCpu.postgresUsPerRequest)} µs`, formatRatio(tallyCpu.postgresUsPerRequest / bareCpu.postgresUsPerRequest), '—', '—']);
    }
  }
  const { size } = reads;
  const line =
    `${runLine(file, reads)} ${count(size.consumers)} consumers at ${size.tenants} merchants; ${size.runs} runs of ${size.rounds} alternating slices of ` +
    `${count(size.sliceMs)} ms per side; ratios per run ${reads.ratios.map((r) => formatRatio(r)).join(', ')}.`;
  return `${line}\n\n${markdownTable(HEADERS, rows)}`;
}

/** The generated text between the markers of `name`, from `bench/results/<name>.json` in `resultsDir`. */
export async function renderTable(name: string, resultsDir = RESULTS_DIR): Promise<string> {
  const file = `${name}.json`;
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path.join(resultsDir, file), 'utf8'));
  } catch (error) {
    throw new Error(`README has a table for ${name}, but bench/results/${file} cannot be read (run \`npm run bench:${name}\`): ${String(error)}`);
  }
  if (name === 'audit') return auditTable(file, data as AuditFile);
  if (name === 'reads') return readsTable(file, data as ReadsFile);
  if (name === 'ingest') return ingestTable(file, data as Omit<Report, 'results'> & { results: IngestRow[] });
  if (Array.isArray((data as Report).results)) return reportTable(file, data as Report);
  throw new Error(`bench/results/${file} has no \`results\` rows and no renderer of its own in bench/tables.ts`);
}

/** README with every marked table regenerated; the names found, in order. */
export async function regenerate(readme: string, resultsDir = RESULTS_DIR): Promise<{ text: string; names: string[] }> {
  const names = [...readme.matchAll(MARKER)].map((m) => m[1]!);
  const tables = new Map<string, string>();
  for (const name of names) tables.set(name, await renderTable(name, resultsDir));
  const text = readme.replace(MARKER, (_, name: string) => `<!-- bench:${name} -->\n${tables.get(name)}\n<!-- /bench:${name} -->`);
  return { text, names };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length) throw new Error(`Unknown argument(s): ${unknown.join(' ')} (supported: --check)`);
  const readme = await readFile(README, 'utf8');
  const { text, names } = await regenerate(readme);
  if (argv.includes('--check')) {
    process.stdout.write(text === readme ? `README's ${names.length} benchmark tables match bench/results/\n` : 'README differs from bench/results/: run npm run bench:tables\n');
    return text === readme ? 0 : 1;
  }
  if (text !== readme) await writeFile(README, text);
  process.stdout.write(`${names.length} tables (${names.join(', ')}) ${text === readme ? 'already up to date' : 'rewritten'} in README.md\n`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
