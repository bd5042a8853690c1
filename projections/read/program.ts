/**
 * Queries over the loyalty program read models: issued rewards, settings, the program summary, the workspace's
 * ledger as CSV, and what the expiry run works through. Rows are parsed with zod on the way out.
 */
import type pg from 'pg';
import { z } from 'zod';
import { timestamp, timestampColumn } from './views.ts';

const points = z.union([z.string(), z.number()]).transform(Number).pipe(z.number().int().refine(Number.isSafeInteger, 'not a safe integer'));

/** The states of an issued reward. */
export const issuedRewardStatus = z.enum(['issued', 'redeemed', 'voided', 'expired']);

/** An issued reward as writes about it answer. */
export const issuedRewardView = z.object({ issuedRewardId: z.string(), rewardId: z.string(), name: z.string(), points: z.number().int(), expiresAt: timestamp, status: issuedRewardStatus });

/** An issued reward as a wallet's list shows it: when it was issued and settled too. */
export const issuedRewardLine = issuedRewardView.extend({ issuedAt: timestamp, settledAt: timestamp.nullable() });
export type IssuedRewardRow = z.infer<typeof issuedRewardLine>;

/** An issued reward as the wallet's list statement returns it (columns named as the fields, points as bigint text). */
const issuedRow = issuedRewardLine.extend({ points, expiresAt: timestampColumn, issuedAt: timestampColumn, settledAt: timestampColumn.nullable() });

/** Most settled (redeemed, voided, expired) rewards a wallet's list shows. */
export const SETTLED_REWARDS_LISTED = 100;

/**
 * A wallet's issued rewards, newest first: every one still issued (its points locked, to be redeemed: however old),
 * and the newest `SETTLED_REWARDS_LISTED` settled ones. (A plain newest 100 left out old rewards still issued.)
 */
export async function issuedRewardsOf(pool: pg.Pool, walletId: string): Promise<IssuedRewardRow[]> {
  const columns = `issued_reward_id AS "issuedRewardId", reward_id AS "rewardId", reward_name AS name, points, status,
            issued_at AS "issuedAt", expires_at AS "expiresAt", settled_at AS "settledAt"`;
  const { rows } = await pool.query(
    `(SELECT ${columns} FROM issued_rewards WHERE wallet_id = $1 AND status = 'issued')
     UNION ALL
     (SELECT ${columns} FROM issued_rewards WHERE wallet_id = $1 AND status <> 'issued' ORDER BY issued_at DESC, issued_reward_id LIMIT $2)
     ORDER BY "issuedAt" DESC, "issuedRewardId"`,
    [walletId, SETTLED_REWARDS_LISTED],
  );
  return rows.map((raw) => issuedRow.parse(raw));
}

/** Workspaces whose policy expires points. */
export async function tenantsWithExpiryPolicy(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT tenant_id FROM program_settings WHERE earned_months IS NOT NULL OR inactivity_months IS NOT NULL ORDER BY tenant_id`,
  );
  return rows.map((r) => z.string().parse(r.tenant_id));
}

/** A page of a workspace's wallets holding points, by id. */
export async function walletsWithPoints(pool: pg.Pool, tenantId: string, after: string | null, limit: number): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT id FROM wallets WHERE tenant_id = $1 AND points_balance > 0 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3`,
    [tenantId, after, limit],
  );
  return rows.map((r) => z.string().parse(r.id));
}

/** Rewards still issued whose time ran out by `asOf`, by id. */
export async function issuedRewardsDue(pool: pg.Pool, asOf: Date, after: string | null, limit: number): Promise<{ walletId: string; issuedRewardId: string }[]> {
  const { rows } = await pool.query(
    `SELECT wallet_id, issued_reward_id FROM issued_rewards
      WHERE status = 'issued' AND expires_at <= $1 AND ($2::text IS NULL OR issued_reward_id > $2)
      ORDER BY issued_reward_id LIMIT $3`,
    [asOf, after, limit],
  );
  return rows.map((r) => ({ walletId: z.string().parse(r.wallet_id), issuedRewardId: z.string().parse(r.issued_reward_id) }));
}

/** How the summary groups days. */
export const summaryInterval = z.enum(['day', 'week', 'month']);
export type SummaryInterval = z.infer<typeof summaryInterval>;

const figures = {
  earned: z.number().int(),
  redeemed: z.number().int(),
  expired: z.number().int(),
  adjusted: z.number().int(),
  rewardsIssued: z.number().int(),
  rewardsRedeemed: z.number().int(),
  activeCustomers: z.number().int(),
};

/** One interval of the summary: first and last UTC day; `outstanding` is all balances at its end (what the workspace owes its customers). */
export const summaryBucket = z.object({ from: z.string(), to: z.string(), ...figures, outstanding: z.number().int() });
export type SummaryBucket = z.infer<typeof summaryBucket>;

/** The program summary of a workspace over a range of days. */
export const programSummaryView = z.object({
  tenantId: z.string(),
  from: z.string(),
  to: z.string(),
  interval: summaryInterval,
  totals: z.object({ ...figures, outstandingAtEnd: z.number().int() }),
  intervals: z.array(summaryBucket),
  /** `walletId`: the customer's wallet at the workspace (null if its read model does not hold it yet). */
  topCustomers: z.array(z.object({ consumerId: z.string(), walletId: z.string().nullable(), earned: z.number().int() })),
});
export type ProgramSummary = z.infer<typeof programSummaryView>;

const dayText = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The first of a month (UTC), `month` past 11 rolling into later years. `Date.UTC` reads years 0–99 as 1900–1999, and
 * the summary takes dates from year 1.
 */
function firstOfMonth(year: number, month: number): Date {
  const date = new Date(0);
  date.setUTCFullYear(year, month, 1);
  return date;
}

/** The first day of the interval holding `day` (weeks start on Monday, as in ISO 8601). */
export function intervalStart(day: Date, interval: SummaryInterval): Date {
  if (interval === 'day') return day;
  if (interval === 'month') return firstOfMonth(day.getUTCFullYear(), day.getUTCMonth());
  const weekday = (day.getUTCDay() + 6) % 7;
  return new Date(day.getTime() - weekday * 86_400_000);
}

function nextStart(start: Date, interval: SummaryInterval): Date {
  if (interval === 'day') return new Date(start.getTime() + 86_400_000);
  if (interval === 'week') return new Date(start.getTime() + 7 * 86_400_000);
  return firstOfMonth(start.getUTCFullYear(), start.getUTCMonth() + 1);
}

/** The last day of the interval holding `day`. */
export function intervalEnd(day: Date, interval: SummaryInterval): Date {
  return new Date(nextStart(intervalStart(day, interval), interval).getTime() - 86_400_000);
}

/** The interval starts from `from` to `to` (UTC days, both included); at most `most` of them, the first ones. */
export function intervalStarts(from: Date, to: Date, interval: SummaryInterval, most = Number.POSITIVE_INFINITY): Date[] {
  const starts: Date[] = [];
  for (let s = intervalStart(from, interval); s.getTime() <= to.getTime() && starts.length < most; s = nextStart(s, interval)) starts.push(s);
  return starts;
}

/**
 * Days are read as text (`YYYY-MM-DD`): node-postgres reads a `date` as the process's local midnight, which east of
 * UTC is the previous day in UTC, and no bucket matched its interval (every figure 0).
 */
const dayRow = z.object({
  bucket: z.string(),
  earned: points,
  redeemed: points,
  expired: points,
  adjusted: points,
  rewards_issued: points,
  rewards_redeemed: points,
  net: points,
});
const customersRow = z.object({
  active: points,
  top: z.array(z.object({ consumer_id: z.string(), earned: points })).nullable(),
});
const activeRow = z.object({ period: z.string(), active: points });

/** The granularities of `program_customer_periods`: the summary's intervals, and whole years. */
type CoverLevel = SummaryInterval | 'year';

function levelStart(day: Date, level: CoverLevel): Date {
  return level === 'year' ? firstOfMonth(day.getUTCFullYear(), 0) : intervalStart(day, level);
}

function levelNext(start: Date, level: CoverLevel): Date {
  return level === 'year' ? firstOfMonth(start.getUTCFullYear() + 1, 0) : nextStart(start, level);
}

/**
 * The days `from` to `to` (both included) as the fewest rows per customer: whole years, then whole months, weeks
 * and days at the edges. Disjoint intervals that tile the range, so a customer's sums over them are the range's.
 */
export function rangeCover(from: Date, to: Date, levels: readonly CoverLevel[] = ['year', 'month', 'week', 'day']): { level: CoverLevel; start: string }[] {
  const [level, ...finer] = levels;
  if (!level || from.getTime() > to.getTime()) return [];
  let first = levelStart(from, level);
  if (first.getTime() < from.getTime()) first = levelNext(first, level);
  const whole: { level: CoverLevel; start: string }[] = [];
  let after = first;
  while (levelNext(after, level).getTime() - 86_400_000 <= to.getTime()) {
    whole.push({ level, start: dayText(after) });
    after = levelNext(after, level);
  }
  if (whole.length === 0) return rangeCover(from, to, finer);
  return [...rangeCover(from, new Date(first.getTime() - 86_400_000), finer), ...whole, ...rangeCover(after, to, finer)];
}

/**
 * The distinct active customers of the range and its top ten by points earned: one grouped pass over the cover's
 * rows (index only: the primary key includes `earned` and `active`). Sums are taken as float8, exact for safe
 * integers and several times faster to aggregate than the numeric that `sum(bigint)` accumulates.
 */
const CUSTOMERS_SQL = `
WITH per_customer AS (
  SELECT consumer_id, sum(earned::float8) AS earned, bool_or(active) AS active
    FROM program_customer_periods
   WHERE tenant_id = $1 AND (granularity, period) IN (SELECT * FROM unnest($2::text[], $3::date[]))
   GROUP BY consumer_id
)
SELECT (SELECT count(*) FROM per_customer WHERE active) AS active,
       (SELECT json_agg(json_build_object('consumer_id', consumer_id, 'earned', earned) ORDER BY earned DESC, consumer_id)
          FROM (SELECT consumer_id, earned FROM per_customer WHERE earned > 0 ORDER BY earned DESC, consumer_id LIMIT 10) t) AS top`;

/** Version 1 of the projection (before its rebuild to 2 takes over) has neither years nor counts per interval. */
const ACTIVE_FROM_ROWS_SQL = `
SELECT to_char(period, 'YYYY-MM-DD') AS period, count(*) AS active FROM program_customer_periods
 WHERE tenant_id = $1 AND granularity = $2 AND period BETWEEN $3::date AND $4::date AND active GROUP BY period`;
const ACTIVE_SQL = `
SELECT to_char(period, 'YYYY-MM-DD') AS period, active_customers AS active FROM program_period_customers
 WHERE tenant_id = $1 AND granularity = $2 AND period BETWEEN $3::date AND $4::date`;

/** A range that is one whole interval (a calendar year, a month): its count is kept, its top ten need no grouping. */
const ONE_INTERVAL_SQL = `
SELECT coalesce((SELECT active_customers FROM program_period_customers WHERE tenant_id = $1 AND granularity = $2 AND period = $3::date), 0) AS active,
       (SELECT json_agg(json_build_object('consumer_id', consumer_id, 'earned', earned) ORDER BY earned DESC, consumer_id)
          FROM (SELECT consumer_id, earned FROM program_customer_periods
                 WHERE tenant_id = $1 AND granularity = $2 AND period = $3::date AND earned > 0
                 ORDER BY earned DESC, consumer_id LIMIT 10) t) AS top`;

async function customerFigures(pool: pg.Pool, tenantId: string, from: Date, to: Date, levels?: readonly CoverLevel[]) {
  const cover = rangeCover(from, to, levels);
  const [only] = cover;
  const { rows } =
    only && cover.length === 1 && !levels
      ? await pool.query(ONE_INTERVAL_SQL, [tenantId, only.level, only.start])
      : await pool.query(CUSTOMERS_SQL, [tenantId, cover.map((c) => c.level), cover.map((c) => c.start)]);
  return customersRow.parse(rows[0]);
}

/**
 * The workspace's program figures by interval from the `program_summary` read model only, never the log: the
 * range is widened to whole intervals (a week starts on Monday); each interval's active customers is one row, and
 * the range's distinct active and top customers one pass over the rows of the intervals that tile it.
 */
export async function programSummary(pool: pg.Pool, tenantId: string, range: { from: Date; to: Date; interval: SummaryInterval }): Promise<ProgramSummary> {
  const { interval } = range;
  const starts = intervalStarts(range.from, range.to, interval);
  const from = starts[0] ?? range.from;
  const to = new Date(nextStart(starts.at(-1) ?? range.to, interval).getTime() - 86_400_000);
  const periods = [tenantId, interval, dayText(from), dayText(starts.at(-1) ?? to)];
  const [days, opening, active, customers] = await Promise.all([
    pool.query(
      `SELECT to_char(date_trunc($2, day)::date, 'YYYY-MM-DD') AS bucket, sum(earned) AS earned, sum(redeemed) AS redeemed, sum(expired) AS expired,
              sum(adjusted) AS adjusted, sum(rewards_issued) AS rewards_issued, sum(rewards_redeemed) AS rewards_redeemed, sum(net) AS net
         FROM program_days WHERE tenant_id = $1 AND day BETWEEN $3::date AND $4::date GROUP BY 1`,
      [tenantId, interval, dayText(from), dayText(to)],
    ),
    pool.query(
      `SELECT coalesce(sum(net), 0) AS net, (SELECT version FROM projection_checkpoints WHERE name = 'program_summary') AS version
         FROM program_days WHERE tenant_id = $1 AND day < $2::date`,
      [tenantId, dayText(from)],
    ),
    pool.query(ACTIVE_SQL, periods),
    customerFigures(pool, tenantId, from, to),
  ]);
  // Live tables still built by version 1 (its rebuild to 2 is under way): no years, no counts; answer as it did.
  const built = z.number().nullable().parse(opening.rows[0]?.version ?? null);
  const legacy = built !== null && built < 2;
  const people = legacy ? await customerFigures(pool, tenantId, from, to, ['month', 'week', 'day']) : customers;
  const activeRows = legacy ? (await pool.query(ACTIVE_FROM_ROWS_SQL, periods)).rows : active.rows;
  const byBucket = new Map(days.rows.map((raw) => dayRow.parse(raw)).map((r) => [r.bucket, r]));
  const activeByBucket = new Map(activeRows.map((raw) => activeRow.parse(raw)).map((r) => [r.period, r.active]));
  let outstanding = points.parse(opening.rows[0]?.net ?? 0);
  const intervals: SummaryBucket[] = starts.map((start) => {
    const key = dayText(start);
    const row = byBucket.get(key);
    outstanding += row?.net ?? 0;
    return {
      from: key,
      to: dayText(new Date(nextStart(start, interval).getTime() - 86_400_000)),
      earned: row?.earned ?? 0,
      redeemed: row?.redeemed ?? 0,
      expired: row?.expired ?? 0,
      adjusted: row?.adjusted ?? 0,
      rewardsIssued: row?.rewards_issued ?? 0,
      rewardsRedeemed: row?.rewards_redeemed ?? 0,
      activeCustomers: activeByBucket.get(key) ?? 0,
      outstanding,
    };
  });
  return summaryAnswer(pool, { tenantId, from: dayText(from), to: dayText(to), interval, intervals, activeCustomers: people.active, outstandingAtEnd: outstanding, top: people.top ?? [] });
}

/**
 * The answer from its parts: the range's totals summed over its intervals, and its top customers with their wallets
 * (one query of the wallets read model; null where the customer has none). bench/summary.ts builds its baseline's
 * answer, computed from the ledger lines, through it too.
 */
export async function summaryAnswer(
  pool: pg.Pool,
  parts: Omit<ProgramSummary, 'totals' | 'topCustomers'> & { activeCustomers: number; outstandingAtEnd: number; top: readonly { consumer_id: string; earned: number }[] },
): Promise<ProgramSummary> {
  const { intervals, top } = parts;
  const sum = (f: (b: SummaryBucket) => number) => intervals.reduce((total, b) => total + f(b), 0);
  const wallets = top.length
    ? new Map((await pool.query<{ consumer_id: string; id: string }>('SELECT consumer_id, id FROM wallets WHERE tenant_id = $1 AND consumer_id = ANY($2::text[])', [parts.tenantId, top.map((r) => r.consumer_id)])).rows.map((r) => [r.consumer_id, r.id]))
    : new Map<string, string>();
  return {
    tenantId: parts.tenantId,
    from: parts.from,
    to: parts.to,
    interval: parts.interval,
    totals: {
      earned: sum((b) => b.earned),
      redeemed: sum((b) => b.redeemed),
      expired: sum((b) => b.expired),
      adjusted: sum((b) => b.adjusted),
      rewardsIssued: sum((b) => b.rewardsIssued),
      rewardsRedeemed: sum((b) => b.rewardsRedeemed),
      activeCustomers: parts.activeCustomers,
      outstandingAtEnd: parts.outstandingAtEnd,
    },
    intervals,
    topCustomers: top.map((r) => ({ consumerId: r.consumer_id, walletId: wallets.get(r.consumer_id) ?? null, earned: r.earned })),
  };
}

/** The CSV export's columns, in order (the header row). */
export const LEDGER_CSV_COLUMNS = [
  'time',
  'line_id',
  'wallet_id',
  'consumer_id',
  'kind',
  'points',
  'balance_after',
  'locked_change',
  'reward_id',
  'issued_reward_id',
  'payment_id',
  'refund_id',
  'actor_id',
  'reason',
  'reference',
] as const;

/** One CSV field in SQL (RFC 4180): quoted, inner quotes doubled, when it holds a comma, a quote or a line break. */
const csvField = (expression: string) =>
  `CASE WHEN (${expression}) IS NULL THEN '' WHEN (${expression})::text ~ '[",\r\n]' THEN '"' || replace((${expression})::text, '"', '""') || '"' ELSE (${expression})::text END`;

/**
 * Text a merchant, an administrator or anyone with a token chose, made inert in a spreadsheet: a value starting with
 * `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a formula when the export is opened (CSV
 * injection), so it gets a leading apostrophe, as OWASP advises. Every text column goes through it: the typed
 * `reason` and `reference`, and the ids, since a user id (`consumer_id`, `actor_id`) is a token's `sub`, any text of
 * 1–200 characters (found in review, 2026-12-08). Times, kinds and numbers are written as they are.
 */
function spreadsheetSafe(expression: string): string {
  return `CASE WHEN ${expression} ~ '^[-=+@\t\r]' THEN '''' || ${expression} ELSE ${expression} END`;
}

/** The columns' values, in `LEDGER_CSV_COLUMNS` order. */
const CSV_VALUES = [
  `to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
  spreadsheetSafe('l.id'),
  spreadsheetSafe('l.wallet_id'),
  spreadsheetSafe('w.consumer_id'),
  'l.kind',
  `CASE l.entry_type WHEN 'debit' THEN -l.points ELSE l.points END`,
  'l.balance_after',
  'l.locked_change',
  spreadsheetSafe('l.reward_id'),
  spreadsheetSafe('l.issued_reward_id'),
  spreadsheetSafe('l.payment_id'),
  spreadsheetSafe('l.refund_id'),
  spreadsheetSafe('l.admin_id'),
  spreadsheetSafe('l.reason'),
  spreadsheetSafe('l.reference'),
];

/** Lines per page: each page is one short query on a pooled connection, returned before the page is written. */
const CSV_PAGE = 1000;

/** A row's place in the export's order, carried exactly: its time as PostgreSQL's text (every microsecond), its id. */
type LedgerKey = readonly [at: string, id: string];

const CSV_LINE = `${CSV_VALUES.map(csvField).join(` || ',' || `)} || E'\r\n'`;

/** The last line of the range when the export starts (index `wallet_ledger_tenant_time`, read backwards): its bound. */
const CSV_LAST_SQL = `
SELECT l.created_at::text, l.id FROM wallet_ledger l
 WHERE l.tenant_id = $1 AND l.created_at >= $2 AND l.created_at < $3
 ORDER BY l.created_at DESC, l.id DESC LIMIT 1`;

/** A page of lines up to the bound ($3, $4), after the key ($5, $6) or, for the first page, from `from` ($2). */
const csvPageSql = (after: boolean) => `
SELECT ${CSV_LINE} AS line, l.created_at::text, l.id
  FROM wallet_ledger l LEFT JOIN wallets w ON w.id = l.wallet_id
 WHERE l.tenant_id = $1 AND l.created_at >= $2 AND (l.created_at, l.id) <= ($3::timestamptz, $4::text)
   ${after ? 'AND (l.created_at, l.id) > ($5::timestamptz, $6::text)' : ''}
 ORDER BY l.created_at, l.id LIMIT ${CSV_PAGE}`;
const CSV_FIRST_SQL = csvPageSql(false);
const CSV_NEXT_SQL = csvPageSql(true);

async function csvPage(pool: pg.Pool, values: readonly unknown[], after?: LedgerKey) {
  const { rows } = await pool.query<[line: string, at: string, id: string]>({
    text: after ? CSV_NEXT_SQL : CSV_FIRST_SQL,
    values: after ? [...values, ...after] : [...values],
    rowMode: 'array',
  });
  return rows;
}

/**
 * The workspace's ledger lines recorded in [from, to) as CSV (RFC 4180: CRLF line ends, a header row), oldest
 * first (time, then id), a page of `CSV_PAGE` lines at a time: memory stays flat however long the ledger is, and
 * PostgreSQL writes each row as one CSV line, so a row costs one string here, not one per field.
 * No connection and no transaction is held while the client reads: each page is one `pool.query` with a keyset
 * on (created_at, id) (index `wallet_ledger_tenant_time`) after the last line sent, so a client that stops
 * reading holds nothing but its place. The export's last line is fixed when it starts (the newest line of the
 * range then) and the first page is read before this resolves: a failure there is the route's error answer, not
 * a 200 cut short. The ledger is append-only (lines are inserted, never updated or deleted), so the file holds
 * every line of the range the read model held at the start, each once, in order.
 */
export async function ledgerCsv(pool: pg.Pool, tenantId: string, range: { from: Date; to: Date }): Promise<AsyncGenerator<string>> {
  const { rows: last } = await pool.query<[at: string, id: string]>({ text: CSV_LAST_SQL, values: [tenantId, range.from, range.to], rowMode: 'array' });
  const bound = last[0];
  const values = bound ? [tenantId, range.from, bound[0], bound[1]] : [];
  const first = bound ? await csvPage(pool, values) : [];
  return (async function* pages() {
    yield `${LEDGER_CSV_COLUMNS.join(',')}\r\n`;
    let rows = first;
    while (rows.length > 0) {
      yield rows.map((row) => row[0]).join('');
      const end = rows.at(-1);
      rows = end && rows.length === CSV_PAGE ? await csvPage(pool, values, [end[1], end[2]]) : [];
    }
  })();
}
