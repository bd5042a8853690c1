/**
 * The report shared by bench/ingest.ts, bench/rebuild.ts and bench/reconcile.ts: one row per measurement
 * (Tally, the baseline measured in the same run, their ratio, the aim and whether it was met), printed as a
 * Markdown table with its notes, and written as `bench/results/<name>.json` in the shape of store.json.
 */
import { formatMs, formatRatio, markdownTable, writeResults, type MachineInfo } from './support.ts';

export interface ResultRow {
  measurement: string;
  /** `events/s`, `req/s`, `ms`, … — a rate is better higher, `ms` lower. */
  unit: string;
  tally: number;
  baseline: number;
  /** tally / baseline. */
  ratio: number;
  /** In the row's unit, or a ratio when `aimIsRatio`. */
  aim: number | null;
  met: boolean | null;
  note: string | null;
  aimIsRatio?: boolean;
  /** Shown in the aim column instead of `aim` (an aim of two parts, e.g. a rate and a ratio). */
  aimText?: string;
  detail?: unknown;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '—';
  if (unit === 'ms') return formatMs(value);
  if (unit.startsWith('ms ')) return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ${unit}`;
  if (unit.startsWith('per ')) return `${value.toFixed(value < 1 ? 3 : 2)} ${unit}`;
  if (unit.endsWith('/s')) return `${count(value)} ${unit}`;
  return `${count(value)} ${unit}`;
}

function formatAim(row: ResultRow): string {
  if (row.aimText !== undefined) return row.aimText;
  if (row.aim === null) return '—';
  if (row.aimIsRatio) return `≥ ${formatRatio(row.aim)}`;
  return row.unit === 'ms' ? `≤ ${formatMs(row.aim)}` : row.unit.startsWith('ms ') ? `≤ ${row.aim} ${row.unit}` : `≥ ${count(row.aim)} ${row.unit}`;
}

export function resultsTable(rows: readonly ResultRow[]): string {
  return markdownTable(
    ['measurement', 'Tally', 'baseline', 'ratio', 'aim', 'met'],
    rows.map((r) => [
      r.measurement,
      formatValue(r.tally, r.unit),
      formatValue(r.baseline, r.unit),
      Number.isFinite(r.ratio) ? formatRatio(r.ratio) : '—',
      formatAim(r),
      r.met === null ? '—' : r.met ? 'yes' : 'NO',
    ]),
  );
}

export function notes(rows: readonly ResultRow[]): string[] {
  return rows.filter((r) => r.note).map((r) => `- ${r.measurement}: ${r.note}`);
}

export async function writeReport(
  name: string,
  report: { quick: boolean; startedAt: Date; durationMs: number; machine: MachineInfo; results: readonly ResultRow[]; diagnostics?: unknown },
): Promise<string> {
  return writeResults(name, {
    benchmark: name,
    quick: report.quick,
    startedAt: report.startedAt.toISOString(),
    durationMs: Math.round(report.durationMs),
    machine: report.machine,
    results: report.results.map(({ aimIsRatio: _aimIsRatio, ...row }) => row),
    ...(report.diagnostics === undefined ? {} : { diagnostics: report.diagnostics }),
  });
}
