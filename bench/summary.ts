/**
 * `npm run bench:summary [-- --quick]`: `GET /api/v1/client/program/summary` on 1,000,000 ledger lines.
 *
 * Generates a year of wallet events (credits, redemptions, rewards issued, redeemed and voided, merchant
 * adjustments, expiries, reversals) for 10 workspaces, half of them in one busy workspace with 20,000
 * customers, and feeds them through the `program_summary` projection's own `apply`, in batches as the runner
 * would. The same lines are also kept as plain rows (one per ledger line, indexed by workspace and day), whose
 * figures the generator writes from its own choice of type and points, not through the projection's classifier.
 *
 * Timed, in turns: `programSummary` (what the route calls: the projection's aggregates) against the baseline,
 * the same summary computed per request from the ledger lines — what serving it without a projection costs.
 * Cases, for the busy workspace: the dashboard's default (30 days by day), a quarter by week, a year by month;
 * and the default for a typical workspace (one of the nine others, 1/18 of the lines). The aim: p50 ≤ 50 ms.
 *
 * Correctness: for every case the projection's answer equals the one computed from the generator's rows, field by
 * field (intervals, totals, active and top customers, outstanding points), and the busy workspace's year totals
 * (earned, redeemed, expired, adjusted, rewards issued and redeemed, active customers, outstanding) equal sums the
 * generator kept of its own choices while generating.
 */
import type pg from 'pg';
import { v5 as uuidv5 } from 'uuid';
import type { RecordedEvent } from '../domain/ports/event-store.ts';
import { programSummaryProjection, type SummaryLine } from '../projections/program-summary.ts';
import { walletBalanceEvents, type WalletBalanceEvent } from '../domain/wallets/events.ts';
import { intervalStarts, programSummary, summaryAnswer, type ProgramSummary, type SummaryBucket, type SummaryInterval } from '../projections/read/program.ts';
import { writeReport, resultsTable, notes, type ResultRow } from './report.ts';
import { formatDuration, log, machineInfo, machineSummary, now, openPool, parseFlags, percentile, reportCorrectness, runBenchmark, withBenchDatabase } from './support.ts';

const explain = process.argv.includes('--explain');
const flags = parseFlags(process.argv.slice(2).filter((a) => a !== '--explain'));
const CONFIG = flags.quick ? { lines: 100_000, runs: 10, warmup: 2 } : { lines: 1_000_000, runs: 40, warmup: 5 };
const BATCH = 5000;
const TENANTS = 10;
const BUSY_CUSTOMERS = 20_000;
const OTHER_CUSTOMERS = 4_000;
const YEAR_START = Date.UTC(2025, 0, 1);
const AIM_MS = 50;
const NS = '0f7f8e1a-3b2c-4d5e-9f60-718293a4b5c6';
const BUSY = uuidv5('tenant-0', NS);

/** A small deterministic PRNG (mulberry32), so every run loads the same lines. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Totals {
  earned: number;
  redeemed: number;
  expired: number;
  adjusted: number;
  rewardsIssued: number;
  rewardsRedeemed: number;
  /** The busy workspace's customers with a line of their own doing (a credit, a redemption, a reward issued or redeemed). */
  activeCustomers: Set<string>;
  net: number;
}

/**
 * A baseline row: one ledger line's figures as the generator chose them (bench_ledger_lines' columns). Written by
 * the generator from its own choice of type and points, never by the projection's classifier (`summaryLines`), so
 * that comparing the projection's answers with the rows can find that classifier wrong.
 */
type GeneratedLine = SummaryLine;

/**
 * The events of one batch as the feed would deliver them with the baseline rows of the same lines, and what the busy
 * workspace's totals became. What each line means, as the summary defines it: a credit is earned (+), its reversal
 * earned back (−, and not the customer's activity); a redemption of points or of a reward is redeemed, a reward's
 * redemption also counts one reward redeemed; an issued reward counts one and moves no balance; a voided reward
 * nothing; an adjustment is adjusted (either sign) and an expiry expired, neither the customer's activity.
 */
function* batches(lines: number, totals: Totals): Generator<{ events: RecordedEvent[]; rows: GeneratedLine[] }> {
  const roll = random(42);
  let batch: RecordedEvent[] = [];
  let rows: GeneratedLine[] = [];
  for (let i = 0; i < lines; i++) {
    const busy = roll() < 0.5;
    const tenant = busy ? 0 : 1 + Math.floor(roll() * (TENANTS - 1));
    const customer = Math.floor(Math.pow(roll(), 1.5) * (busy ? BUSY_CUSTOMERS : OTHER_CUSTOMERS));
    const tenantId = tenant === 0 ? BUSY : uuidv5(`tenant-${tenant}`, NS);
    const consumerId = uuidv5(`consumer-${tenant}-${customer}`, NS);
    const owner = { walletId: uuidv5(`wallet-${tenant}-${customer}`, NS), tenantId, consumerId };
    const recordedAt = new Date(YEAR_START + Math.floor((i / lines) * 365 * 86_400_000));
    const kind = roll();
    const points = 1 + Math.floor(roll() * 200);
    const reward = { issuedRewardId: `ir-${i}`, rewardId: 'rw-coffee', points: 100 };
    let event: WalletBalanceEvent;
    const line: GeneratedLine = {
      id: uuidv5(`line-${i}`, NS),
      tenant_id: tenantId,
      day: recordedAt.toISOString().slice(0, 10),
      consumer_id: consumerId,
      ...{ earned: 0, redeemed: 0, expired: 0, adjusted: 0, rewards_issued: 0, rewards_redeemed: 0, net: 0, active: false },
    };
    if (kind < 0.7) {
      event = { type: 'PointsCredited', data: { ...owner, paymentId: `p-${i}`, points, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' } };
      Object.assign(line, { earned: points, net: points, active: true });
    } else if (kind < 0.78) {
      event = { type: 'PointsRedeemed', data: { ...owner, points, idempotencyKey: `k-${i}`, reference: null, redeemedBy: 'm' } };
      Object.assign(line, { redeemed: points, net: -points, active: true });
    } else if (kind < 0.84) {
      event = { type: 'RewardIssued', data: { ...owner, ...reward, rewardVersion: 1, rewardName: 'Free coffee', idempotencyKey: `k-${i}`, issuedBy: 'm', issuedAt: recordedAt.toISOString(), expiresAt: recordedAt.toISOString() } };
      Object.assign(line, { rewards_issued: 1, active: true });
    } else if (kind < 0.89) {
      event = { type: 'RewardRedeemed', data: { ...owner, ...reward, idempotencyKey: `k-${i}`, redeemedBy: 'm' } };
      Object.assign(line, { redeemed: reward.points, rewards_redeemed: 1, net: -reward.points, active: true });
    } else if (kind < 0.9) {
      event = { type: 'RewardVoided', data: { ...owner, ...reward, voidedBy: 'm', reason: null } };
    } else if (kind < 0.95) {
      const signed = roll() < 0.3 ? -points : points;
      event = { type: 'PointsAdjusted', data: { ...owner, points: signed, reason: 'forgot phone', adjustedBy: 'm', adjustedAs: 'merchant', idempotencyKey: null } };
      Object.assign(line, { adjusted: signed, net: signed });
    } else if (kind < 0.98) {
      event = { type: 'PointsExpired', data: { ...owner, points, period: recordedAt.toISOString().slice(0, 10), rule: 'earned', policyVersion: 1, asOf: recordedAt.toISOString() } };
      Object.assign(line, { expired: points, net: -points });
    } else {
      event = { type: 'PointsReversed', data: { ...owner, paymentId: `p-${i - 1}`, refundId: `r-${i}`, points, fromExpired: 0 } };
      Object.assign(line, { earned: -points, net: -points });
    }
    const recorded: RecordedEvent = {
      id: line.id,
      type: event.type,
      data: event.data,
      metadata: { schemaVersion: walletBalanceEvents.versionOf(event.type) },
      stream: `wallet-${owner.walletId}`,
      revision: i,
      position: String(i) as RecordedEvent['position'],
      recordedAt,
    };
    if (busy) {
      totals.earned += line.earned;
      totals.redeemed += line.redeemed;
      totals.expired += line.expired;
      totals.adjusted += line.adjusted;
      totals.rewardsIssued += line.rewards_issued;
      totals.rewardsRedeemed += line.rewards_redeemed;
      if (line.active) totals.activeCustomers.add(consumerId);
      totals.net += line.net;
    }
    batch.push(recorded);
    rows.push(line);
    if (batch.length === BATCH) {
      yield { events: batch, rows };
      batch = [];
      rows = [];
    }
  }
  if (batch.length) yield { events: batch, rows };
}

/** Loads the lines through the projection (and the generator's own rows of them for the baseline), batch by batch. */
async function load(pool: pg.Pool, lines: number): Promise<{ ms: number; totals: Totals }> {
  const totals: Totals = { earned: 0, redeemed: 0, expired: 0, adjusted: 0, rewardsIssued: 0, rewardsRedeemed: 0, activeCustomers: new Set(), net: 0 };
  await pool.query(`CREATE TABLE bench_ledger_lines (
    id text PRIMARY KEY, tenant_id text, day date, consumer_id text, earned bigint, redeemed bigint, expired bigint, adjusted bigint,
    rewards_issued int, rewards_redeemed int, net bigint, active boolean)`);
  const started = now();
  let done = 0;
  for (const { events: batch, rows } of batches(lines, totals)) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await programSummaryProjection.apply(batch, { db: client, table: (name) => name });
      await client.query(
        `INSERT INTO bench_ledger_lines SELECT * FROM jsonb_to_recordset($1::jsonb) AS b(id text, tenant_id text, day date, consumer_id text, earned bigint,
           redeemed bigint, expired bigint, adjusted bigint, rewards_issued int, rewards_redeemed int, net bigint, active boolean)`,
        [JSON.stringify(rows)],
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    done += batch.length;
    if (done % 100_000 === 0) log(`  ${done.toLocaleString('en-US')} lines`);
  }
  const ms = now() - started;
  await pool.query('CREATE INDEX bench_ledger_lines_tenant_day ON bench_ledger_lines (tenant_id, day)');
  await pool.query('VACUUM ANALYZE');
  return { ms, totals };
}

/** The baseline: the same summary computed per request from the ledger lines themselves. */
async function summaryFromLines(pool: pg.Pool, tenantId: string, asked: { from: Date; to: Date; interval: SummaryInterval }): Promise<ProgramSummary> {
  const day = (d: Date) => d.toISOString().slice(0, 10);
  // Whole intervals, as the API answers: from the first interval's start to the last one's end.
  const starts = intervalStarts(asked.from, asked.to, asked.interval);
  const lastEnd = intervalStarts(new Date(asked.to.getTime() + 40 * 86_400_000), new Date(asked.to.getTime() + 40 * 86_400_000), asked.interval)[0]!;
  const ends = [...starts.slice(1), ...intervalStarts(asked.to, lastEnd, asked.interval).slice(1, 2)].map((s) => new Date(s.getTime() - 86_400_000));
  const range = { from: starts[0]!, to: ends.at(-1)!, interval: asked.interval };
  const args = [tenantId, range.interval, day(range.from), day(range.to)];
  const [buckets, opening, top, distinct] = await Promise.all([
    pool.query(
      `SELECT date_trunc($2, day)::date AS bucket, sum(earned)::bigint AS earned, sum(redeemed)::bigint AS redeemed, sum(expired)::bigint AS expired,
              sum(adjusted)::bigint AS adjusted, sum(rewards_issued)::bigint AS ri, sum(rewards_redeemed)::bigint AS rr, sum(net)::bigint AS net,
              count(DISTINCT consumer_id) FILTER (WHERE active) AS active
         FROM bench_ledger_lines WHERE tenant_id = $1 AND day BETWEEN $3::date AND $4::date GROUP BY 1`,
      args,
    ),
    pool.query(`SELECT coalesce(sum(net), 0)::bigint AS net FROM bench_ledger_lines WHERE tenant_id = $1 AND day < $2::date`, [tenantId, day(range.from)]),
    pool.query(
      `SELECT consumer_id, sum(earned)::bigint AS earned FROM bench_ledger_lines WHERE tenant_id = $1 AND day BETWEEN $2::date AND $3::date
        GROUP BY consumer_id HAVING sum(earned) > 0 ORDER BY sum(earned) DESC, consumer_id LIMIT 10`,
      [tenantId, day(range.from), day(range.to)],
    ),
    pool.query(`SELECT count(DISTINCT consumer_id) FILTER (WHERE active) AS n FROM bench_ledger_lines WHERE tenant_id = $1 AND day BETWEEN $2::date AND $3::date`, [
      tenantId,
      day(range.from),
      day(range.to),
    ]),
  ]);
  const byBucket = new Map(buckets.rows.map((r) => [day(r.bucket as Date), r]));
  let outstanding = Number(opening.rows[0].net);
  const intervals: SummaryBucket[] = starts.map((start, i) => {
    const r = byBucket.get(day(start));
    outstanding += Number(r?.net ?? 0);
    return {
      from: day(start),
      to: day(ends[i]!),
      earned: Number(r?.earned ?? 0),
      redeemed: Number(r?.redeemed ?? 0),
      expired: Number(r?.expired ?? 0),
      adjusted: Number(r?.adjusted ?? 0),
      rewardsIssued: Number(r?.ri ?? 0),
      rewardsRedeemed: Number(r?.rr ?? 0),
      activeCustomers: Number(r?.active ?? 0),
      outstanding,
    };
  });
  return summaryAnswer(pool, {
    tenantId,
    from: day(range.from),
    to: day(range.to),
    interval: range.interval,
    intervals,
    activeCustomers: Number(distinct.rows[0].n),
    outstandingAtEnd: outstanding,
    top: top.rows.map((r) => ({ consumer_id: r.consumer_id as string, earned: Number(r.earned) })),
  });
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const started = now();
  await withBenchDatabase(async (db) => {
    const machine = await machineInfo(db);
    const pool = await openPool(db.url, 5);
    try {
      log(`Loading ${CONFIG.lines.toLocaleString('en-US')} ledger lines through the program_summary projection...`);
      const loaded = await load(pool, CONFIG.lines);
      log(`Loaded in ${formatDuration(loaded.ms)} (${Math.round(CONFIG.lines / (loaded.ms / 1000)).toLocaleString('en-US')} lines/s).`);
      const end = new Date(YEAR_START + 364 * 86_400_000);
      const typical = uuidv5('tenant-1', NS);
      const cases: { name: string; tenantId: string; range: { from: Date; to: Date; interval: SummaryInterval } }[] = [
        { name: 'busy workspace, last 30 days by day', tenantId: BUSY, range: { from: new Date(end.getTime() - 29 * 86_400_000), to: end, interval: 'day' } },
        { name: 'busy workspace, a quarter by week', tenantId: BUSY, range: { from: new Date(end.getTime() - 90 * 86_400_000), to: end, interval: 'week' } },
        { name: 'busy workspace, the year by month', tenantId: BUSY, range: { from: new Date(YEAR_START), to: end, interval: 'month' } },
        { name: 'typical workspace, last 30 days by day', tenantId: typical, range: { from: new Date(end.getTime() - 29 * 86_400_000), to: end, interval: 'day' } },
      ];
      const problems: string[] = [];
      const rows: ResultRow[] = [];
      const counted = await pool.query<{ tenant_id: string; n: string }>('SELECT tenant_id, count(*) AS n FROM bench_ledger_lines GROUP BY tenant_id');
      const lineCount = new Map(counted.rows.map((r) => [r.tenant_id, Number(r.n)]));
      for (const c of cases) {
        if (explain) {
          // `--explain`: the server's plans of the summary's statements, to see where the time goes.
          const spied: { text: string; values: unknown[] }[] = [];
          const spy = { query: (text: string, values: unknown[]) => (spied.push({ text, values }), pool.query(text, values)) } as unknown as pg.Pool;
          await programSummary(spy, c.tenantId, c.range);
          for (const q of spied) {
            const plan = await pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${q.text}`, q.values);
            log(`${c.name}:\n${plan.rows.map((r) => r['QUERY PLAN']).join('\n')}`);
          }
        }
        const answer = await programSummary(pool, c.tenantId, c.range);
        const expected = await summaryFromLines(pool, c.tenantId, c.range);
        if (JSON.stringify(answer) !== JSON.stringify(expected)) problems.push(`${c.name}: the projection's summary differs from the one computed from the generator's rows`);
        if (c.name === 'busy workspace, the year by month') {
          const t = answer.totals;
          const m = loaded.totals;
          const kept = { ...m, activeCustomers: m.activeCustomers.size };
          const same =
            t.earned === m.earned && t.redeemed === m.redeemed && t.expired === m.expired && t.adjusted === m.adjusted && t.rewardsIssued === m.rewardsIssued &&
            t.rewardsRedeemed === m.rewardsRedeemed && t.activeCustomers === kept.activeCustomers && t.outstandingAtEnd === m.net;
          if (!same) problems.push(`the year's totals ${JSON.stringify(t)} differ from the sums kept while generating ${JSON.stringify(kept)}`);
        }
        const samples = { tally: [] as number[], baseline: [] as number[] };
        for (let run = -CONFIG.warmup; run < CONFIG.runs; run++) {
          let at = now();
          await programSummary(pool, c.tenantId, c.range);
          if (run >= 0) samples.tally.push(now() - at);
          at = now();
          await summaryFromLines(pool, c.tenantId, c.range);
          if (run >= 0) samples.baseline.push(now() - at);
        }
        const p50 = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 50);
        const p99 = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 99);
        const tally = p50(samples.tally);
        const baseline = p50(samples.baseline);
        rows.push({
          measurement: `summary p50, ${c.name}`,
          unit: 'ms',
          tally,
          baseline,
          ratio: tally / baseline,
          aim: AIM_MS,
          met: tally <= AIM_MS,
          note: `p99 ${p99(samples.tally).toFixed(1)} ms (baseline p99 ${p99(samples.baseline).toFixed(1)} ms); ${answer.intervals.length} intervals, ${answer.totals.activeCustomers.toLocaleString('en-US')} active customers, ${lineCount.get(c.tenantId)?.toLocaleString('en-US')} ledger lines in the workspace`,
        });
        log(`  ${c.name}: p50 ${tally.toFixed(1)} ms, baseline (from the ledger lines) ${baseline.toFixed(1)} ms`);
      }
      process.stdout.write(
        [
          `## Program summary on ${CONFIG.lines.toLocaleString('en-US')} ledger lines (busy workspace: half of them; ${CONFIG.runs} runs each)`,
          '',
          machineSummary(machine),
          '',
          resultsTable(rows),
          '',
          ...notes(rows),
          '',
        ].join('\n'),
      );
      const file = await writeReport('summary', { quick: flags.quick, startedAt, durationMs: now() - started, machine, results: rows });
      log(`Results written to ${file}`);
      reportCorrectness(
        problems.length === 0,
        problems.length === 0
          ? `the projection's summary equals the one computed from the generator's own rows of the ${CONFIG.lines.toLocaleString('en-US')} lines for all ${cases.length} cases, ` +
            `and the busy workspace's year totals the sums the generator kept of its own choices (earned, redeemed, expired, adjusted, rewards, active customers, outstanding)`
          : problems.join('; '),
      );
    } finally {
      await pool.end();
    }
  });
}

runBenchmark(main);
