/**
 * `npm run bench:audit [-- --quick]`: the admin audit trail on 1,000,000 events.
 *
 * Bulk-loads `audit_events` (50 tenants, 50,000 wallets, 20 event types, a year of history with some events
 * recorded out of feed order) in a fresh database with the migration's own indexes, ANALYZEs it, then times
 * `auditPage` — the function the API calls — for each kind of filter: the first page, and a page deep in the
 * results (90% of the way down, by cursor). The baseline, measured in the same run on the same table, is the
 * cheapest page PostgreSQL can serve: the newest 51 rows by primary key, unfiltered — timed in turns with each
 * case, so the ratio compares runs that shared the machine's state at the time.
 *
 * The first page and each deep page are also checked against a plain OFFSET query of audit_events (the full ordered
 * list of event ids, and whether a next page is offered), so a fast wrong answer cannot pass. Besides the
 * client-side p50/p99 (what the API sees, scheduling noise included), the server's own execution time of the
 * page's statements is shown (EXPLAIN ANALYZE, median of 5).
 */
import pg from 'pg';
import { auditPage, encodeAuditCursor, type AuditFilter } from '../projections/read/audit.ts';
import {
  formatDuration,
  formatMs,
  formatRatio,
  instrumentPool,
  log,
  machineInfo,
  machineSummary,
  markdownTable,
  now,
  openPool,
  parseFlags,
  percentile,
  withBenchDatabase,
  withClient,
  writeResults,
  reportCorrectness,
  runBenchmark,
} from './support.ts';

const flags = parseFlags();
const CONFIG = flags.quick ? { rows: 100_000, runs: 20, warmup: 3 } : { rows: 1_000_000, runs: 50, warmup: 5 };
const PAGE = 50;
const DEPTH = 0.9;
const TENANTS = 50;
const WALLETS = 50_000;
const YEAR_START = '2025-01-01T00:00:00Z';

/** Event types by stream kind; within a kind the first types are the most frequent (20 types in all). */
const TYPES = {
  wallet: ['PointsCredited', 'PointsRedeemed', 'PointsReversed', 'PointsAdjusted'],
  payment: ['PaymentStatusObserved', 'PurchaseCompleted', 'RefundApplied', 'RefundHeld', 'HeldPointsClaimed'],
  user: ['UserRegistered', 'UserApproved', 'UserPhoneChanged', 'UserSuspended', 'UserReinstated', 'UserPersonalDataErased'],
  rules: ['RewardRuleCreated', 'RewardRuleActivated'],
  connection: ['SquarePaymentsPolled', 'SquareTokensRefreshed', 'SquareConnectionAuthorized'],
};

const sqlArray = (values: readonly string[]) => `ARRAY[${values.map((v) => `'${v}'`).join(', ')}]`;
/** A skewed pick: low indexes are frequent, the last ones rare. */
const pick = (values: readonly string[], skew: number) => `(${sqlArray(values)})[1 + floor(power(r.roll, ${skew}) * ${values.length})::int]`;

/**
 * One row per event, in feed order. Kinds by `i % 20`: 10 wallet, 7 payment, 1 user, 1 rules, 1 connection.
 * Every 997th event is recorded a minute before the one ahead of it in the feed (a late commit).
 */
function loadSql(rows: number): string {
  const stepSeconds = (365 * 24 * 3600) / rows;
  return `
    INSERT INTO audit_events (seq, event_id, position, stream, revision, type, recorded_at, late, actor, tenant_id, wallet_id, payment_id, correlation_id, causation_id, data)
    SELECT seq, md5('event' || seq)::uuid, (1000 + seq / 3) || '.' || seq, stream, revision, type, recorded_at,
           COALESCE(recorded_at < max(recorded_at) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false),
           actor, tenant, wallet, payment, 'req-' || (seq / 3), 'req-' || (seq / 3),
           jsonb_build_object('tenantId', tenant, 'walletId', wallet, 'paymentId', payment, 'points', seq % 500, 'at', recorded_at)
      FROM (
        SELECT g.seq, k.kind, k.type,
               timestamptz '${YEAR_START}' + make_interval(secs => g.seq * ${stepSeconds}) - CASE WHEN g.seq % 997 = 0 THEN interval '1 minute' ELSE interval '0' END AS recorded_at,
               CASE k.kind
                 WHEN 'wallet' THEN 'wallet-' || md5('wallet' || k.wallet)::uuid
                 WHEN 'payment' THEN 'payment-pay-' || (g.seq / 7)
                 WHEN 'user' THEN 'user-' || md5('user' || k.member)::uuid
                 WHEN 'rules' THEN 'reward-rules-' || md5('tenant' || k.tenant)::uuid
                 ELSE 'square-connection-' || md5('tenant' || k.tenant)::uuid
               END AS stream,
               g.seq % 100 AS revision,
               CASE
                 WHEN k.kind = 'user' AND k.type <> 'UserApproved' THEN NULL
                 WHEN k.kind = 'user' THEN md5('tenant' || (k.member % ${TENANTS}))::uuid::text
                 WHEN k.kind = 'payment' THEN md5('tenant' || ((g.seq / 7) % ${TENANTS}))::uuid::text
                 ELSE md5('tenant' || k.tenant)::uuid::text
               END AS tenant,
               CASE WHEN k.kind = 'wallet' THEN md5('wallet' || k.wallet)::uuid::text END AS wallet,
               CASE WHEN k.kind = 'payment' THEN 'pay-' || (g.seq / 7) END AS payment,
               CASE
                 WHEN k.type = 'PointsAdjusted' OR k.type IN ('UserApproved', 'UserSuspended', 'UserReinstated', 'UserPersonalDataErased') THEN 'admin:' || (g.seq % 20)
                 WHEN k.kind = 'wallet' AND k.type = 'PointsRedeemed' THEN 'user:owner-' || k.tenant
                 WHEN k.kind = 'wallet' THEN 'system:wallet-credits'
                 WHEN k.kind = 'payment' THEN CASE WHEN g.seq % 2 = 0 THEN 'square:M' || ((g.seq / 7) % ${TENANTS}) ELSE 'system:poll' END
                 WHEN k.kind = 'user' THEN 'user:' || md5('user' || k.member)::uuid
                 WHEN k.kind = 'rules' THEN 'user:owner-' || k.tenant
                 ELSE 'system:square-refresh'
               END AS actor
          FROM generate_series(1, ${rows}) AS g(seq)
          CROSS JOIN LATERAL (
            SELECT CASE WHEN g.seq % 20 < 10 THEN 'wallet' WHEN g.seq % 20 < 17 THEN 'payment' WHEN g.seq % 20 = 17 THEN 'user' WHEN g.seq % 20 = 18 THEN 'rules' ELSE 'connection' END AS kind,
                   1 + floor(random() * ${WALLETS})::int AS wallet,
                   1 + floor(random() * 20000)::int AS member,
                   floor(random() * ${TENANTS})::int AS tenant_pick,
                   random() AS roll
          ) r
          CROSS JOIN LATERAL (
            SELECT r.kind, r.wallet, r.member, CASE WHEN r.kind = 'wallet' THEN r.wallet % ${TENANTS} ELSE r.tenant_pick END AS tenant,
                   CASE r.kind
                     WHEN 'wallet' THEN ${pick(TYPES.wallet, 2)}
                     WHEN 'payment' THEN ${pick(TYPES.payment, 2)}
                     WHEN 'user' THEN ${pick(TYPES.user, 3)}
                     WHEN 'rules' THEN ${pick(TYPES.rules, 1)}
                     ELSE ${pick(TYPES.connection, 2)}
                   END AS type
          ) k
      ) events`;
}

/** Drops the secondary indexes, loads, and builds them again from the migration's own definitions. */
async function load(url: string, rows: number): Promise<{ loadMs: number; indexMs: number; sizeMiB: number }> {
  return withClient(url, async (db) => {
    const { rows: indexes } = await db.query<{ indexname: string; indexdef: string }>(
      `SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = 'audit_events' AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`,
    );
    for (const index of indexes) await db.query(`DROP INDEX ${index.indexname}`);
    await db.query('SELECT setseed(0.42)');
    let started = now();
    await db.query(loadSql(rows));
    const loadMs = now() - started;
    started = now();
    await db.query('SET maintenance_work_mem = ' + "'256MB'");
    for (const index of indexes) await db.query(index.indexdef);
    await db.query('VACUUM ANALYZE audit_events');
    const indexMs = now() - started;
    const size = await db.query<{ bytes: string }>(`SELECT pg_total_relation_size('audit_events') AS bytes`);
    return { loadMs, indexMs, sizeMiB: Math.round(Number(size.rows[0]!.bytes) / 2 ** 20) };
  });
}

interface Case {
  name: string;
  filter: AuditFilter;
}

/** The same filter as plain SQL, for counting matches and finding the deep page's cursor and first row. */
function plainWhere(filter: AuditFilter): { where: string; params: unknown[] } {
  const params: unknown[] = [];
  const clauses: string[] = [];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    clauses.push(clause.replace('?', `$${params.length}`));
  };
  if (filter.tenantId) add('tenant_id = ?', filter.tenantId);
  if (filter.stream) add('stream = ?', filter.stream);
  if (filter.types) add('type = ANY(?)', filter.types);
  if (filter.actor) add('actor = ?', filter.actor);
  if (filter.walletId) add('wallet_id = ?', filter.walletId);
  if (filter.paymentId) add('payment_id = ?', filter.paymentId);
  if (filter.from) add('recorded_at >= ?', filter.from);
  if (filter.to) add('recorded_at < ?', filter.to);
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

async function sampleCases(pool: pg.Pool): Promise<Case[]> {
  const one = async (sql: string) => (await pool.query<{ v: string }>(sql)).rows[0]!.v;
  const tenant = await one(`SELECT md5('tenant' || 7)::uuid::text AS v`);
  const wallet = await one(`SELECT wallet_id AS v FROM audit_events WHERE wallet_id IS NOT NULL AND seq > ${Math.floor(CONFIG.rows / 2)} ORDER BY seq LIMIT 1`);
  const payment = await one(`SELECT payment_id AS v FROM audit_events WHERE payment_id IS NOT NULL AND seq > ${Math.floor(CONFIG.rows / 3)} ORDER BY seq LIMIT 1`);
  const stream = `square-connection-${tenant}`;
  const at = (fraction: number) => new Date(Date.parse(YEAR_START) + fraction * 365 * 24 * 3600 * 1000);
  const day = 1 / 365;
  return [
    { name: 'none (all events)', filter: {} },
    { name: 'tenantId', filter: { tenantId: tenant } },
    { name: 'stream (a tenant’s connection)', filter: { stream } },
    { name: 'type (common)', filter: { types: ['PointsCredited'] } },
    { name: 'type (rare)', filter: { types: ['UserPersonalDataErased'] } },
    { name: 'type × 3', filter: { types: ['PointsAdjusted', 'RefundApplied', 'UserSuspended'] } },
    { name: 'actor (an admin)', filter: { actor: 'admin:3' } },
    { name: 'actor (a process)', filter: { actor: 'system:wallet-credits' } },
    { name: 'walletId', filter: { walletId: wallet } },
    { name: 'paymentId', filter: { paymentId: payment } },
    { name: 'from (last 30 days)', filter: { from: at(1 - 30 * day) } },
    { name: 'to (before mid-year)', filter: { to: at(0.5) } },
    { name: 'from–to (one day)', filter: { from: at(0.4), to: at(0.4 + day) } },
    { name: 'tenantId + type', filter: { tenantId: tenant, types: ['PointsRedeemed'] } },
    { name: 'tenantId + from–to (a week)', filter: { tenantId: tenant, from: at(0.6), to: at(0.6 + 7 * day) } },
    { name: 'tenantId + type × 2 + to', filter: { tenantId: tenant, types: ['PointsAdjusted', 'RefundApplied'], to: at(0.3) } },
    { name: 'actor + type × 2', filter: { actor: 'admin:3', types: ['PointsAdjusted', 'UserSuspended'] } },
  ];
}

interface Timing {
  p50: number;
  p99: number;
}

type Baseline = () => Promise<unknown>;

const timing = (samples: readonly number[]): Timing => {
  const sorted = Float64Array.from(samples).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
};

/**
 * Times the contenders in turns (A B C, A B C, ...), so that on a shared machine a slow minute slows all of
 * them alike rather than whichever happened to run in it; the baseline is one of the contenders each time.
 */
async function timeInTurns<Name extends string>(runs: number, warmup: number, contenders: Record<Name, () => Promise<unknown>>): Promise<Record<Name, Timing>> {
  const names = Object.keys(contenders) as Name[];
  const samples = new Map<Name, number[]>(names.map((n) => [n, []]));
  for (let run = -warmup; run < runs; run++) {
    for (const name of names) {
      const started = now();
      await contenders[name]();
      if (run >= 0) samples.get(name)!.push(now() - started);
    }
  }
  return Object.fromEntries(names.map((n) => [n, timing(samples.get(n)!)])) as Record<Name, Timing>;
}

/** Index names in a JSON plan, in plan order. */
function indexesIn(plan: unknown): string[] {
  if (Array.isArray(plan)) return plan.flatMap(indexesIn);
  if (!plan || typeof plan !== 'object') return [];
  const node = plan as Record<string, unknown>;
  const own = typeof node['Index Name'] === 'string' ? [node['Index Name']] : [];
  return [...own, ...Object.values(node).flatMap(indexesIn)];
}

/**
 * What the server does for one page: the indexes its plans use, and its own execution time (EXPLAIN ANALYZE,
 * median of a few runs) — a figure that client-side scheduling noise on a busy machine does not reach.
 */
async function inspect(pool: pg.Pool, filter: AuditFilter, cursor: string | undefined): Promise<{ indexes: string[]; serverMs: number }> {
  const spy = instrumentPool(pool, { label: (sql) => (sql.trimStart().startsWith('SELECT (SELECT seq') ? 'bounds' : 'page') });
  await auditPage(spy.pool, filter, { cursor, limit: PAGE });
  const statements = ['bounds', 'page'].flatMap((label) => spy.last.get(label) ?? []);
  const indexes = new Set<string>();
  const runs: number[] = [];
  for (let run = 0; run < 5; run++) {
    let total = 0;
    for (const { sql, params } of statements) {
      const { rows } = await pool.query<{ 'QUERY PLAN': [{ Plan: unknown; 'Execution Time': number }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
      const [plan] = rows[0]!['QUERY PLAN'];
      for (const name of indexesIn(plan.Plan)) indexes.add(name);
      total += plan['Execution Time'];
    }
    runs.push(total);
  }
  return { indexes: [...indexes], serverMs: percentile(Float64Array.from(runs).sort(), 50) };
}

interface CaseResult {
  name: string;
  filter: AuditFilter;
  matches: number;
  firstPage: Timing & { serverMs: number };
  deepPage: Timing & { depth: number; serverMs: number };
  /** The baseline, timed in turns with this case's pages. */
  baseline: Timing;
  indexes: string[];
}

/** `problems` receives every page that differs from what the plain query says it must hold. */
async function measure(pool: pg.Pool, c: Case, baseline: Baseline, problems: string[]): Promise<CaseResult> {
  const { where, params } = plainWhere(c.filter);
  const matches = Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM audit_events ${where}`, params)).rows[0]!.n);
  const depth = Math.max(0, Math.floor(matches * DEPTH) - 1);
  // The row at `depth` is the last one shown before the deep page (its cursor); the deep page must hold the PAGE rows
  // after it in feed order, newest first, and the first page the newest PAGE rows: the plain query's OFFSET depth + 1
  // and OFFSET 0. One row more tells whether a next page must be offered.
  const around = await pool.query<{ seq: string }>(`SELECT seq FROM audit_events ${where} ORDER BY seq DESC OFFSET ${depth} LIMIT 1`, params);
  const cursor = around.rows[0] ? encodeAuditCursor('newest', around.rows[0].seq) : undefined;
  const plainPage = async (offset: number) => {
    const { rows } = await pool.query<{ event_id: string }>(`SELECT event_id FROM audit_events ${where} ORDER BY seq DESC OFFSET ${offset} LIMIT ${PAGE + 1}`, params);
    return { ids: rows.slice(0, PAGE).map((r) => r.event_id), more: rows.length > PAGE };
  };
  const check = (which: string, page: Awaited<ReturnType<typeof auditPage>>, wanted: { ids: string[]; more: boolean }) => {
    const got = page.items.map((item) => item.eventId);
    const at = got.findIndex((id, i) => id !== wanted.ids[i]);
    const differs = at >= 0 ? at : got.length !== wanted.ids.length ? Math.min(got.length, wanted.ids.length) : -1;
    if (differs >= 0) {
      problems.push(
        `${c.name}: the ${which} page has ${got.length} items, the plain query ${wanted.ids.length}; they first differ at item ${differs + 1} (${got[differs]} against ${wanted.ids[differs]})`,
      );
    }
    if ((page.nextCursor !== null) !== wanted.more) problems.push(`${c.name}: the ${which} page ${page.nextCursor ? 'offers' : 'does not offer'} a next page, the plain query says ${wanted.more ? 'there is one' : 'there is none'}`);
  };
  check('deep', await auditPage(pool, c.filter, { cursor, limit: PAGE }), await plainPage(cursor ? depth + 1 : 0));
  check('first', await auditPage(pool, c.filter, { limit: PAGE }), await plainPage(0));

  const timed = await timeInTurns(CONFIG.runs, CONFIG.warmup, {
    first: () => auditPage(pool, c.filter, { limit: PAGE }),
    baseline,
    deep: () => auditPage(pool, c.filter, { cursor, limit: PAGE }),
  });
  const firstServer = await inspect(pool, c.filter, undefined);
  const deepServer = await inspect(pool, c.filter, cursor);
  return {
    name: c.name,
    filter: c.filter,
    matches,
    firstPage: { ...timed.first, serverMs: firstServer.serverMs },
    deepPage: { ...timed.deep, depth: depth + 1, serverMs: deepServer.serverMs },
    baseline: timed.baseline,
    indexes: [...new Set([...firstServer.indexes, ...deepServer.indexes])],
  };
}

async function main(): Promise<void> {
  await withBenchDatabase(async (db) => {
    const machine = await machineInfo(db);
    log(`Loading ${CONFIG.rows.toLocaleString('en-US')} audit rows...`);
    const loaded = await load(db.url, CONFIG.rows);
    log(`Loaded in ${formatDuration(loaded.loadMs)}, indexed and analysed in ${formatDuration(loaded.indexMs)} (${loaded.sizeMiB} MiB).`);
    const pool = await openPool(db.url, 1);
    try {
      const baselineSql = `SELECT seq, event_id, position, stream, revision, type, recorded_at, actor, tenant_id, wallet_id, payment_id, correlation_id, causation_id, data
                             FROM audit_events ORDER BY seq DESC LIMIT ${PAGE + 1}`;
      const results: CaseResult[] = [];
      const problems: string[] = [];
      for (const c of await sampleCases(pool)) {
        log(`  ${c.name}...`);
        results.push(await measure(pool, c, () => pool.query(baselineSql), problems));
      }
      const baseline = timing(results.map((r) => r.baseline.p50));

      const baselineServer = await pool.query<{ 'QUERY PLAN': [{ 'Execution Time': number }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${baselineSql}`);
      const baselineServerMs = baselineServer.rows[0]!['QUERY PLAN'][0]['Execution Time'];
      const rows = [
        ['baseline: newest 51 rows, plain SELECT (median of the cases’ p50s)', CONFIG.rows.toLocaleString('en-US'), formatMs(baseline.p50), '', formatMs(baselineServerMs), '', '', '', '', 'audit_events_pkey'],
        ...results.map((r) => [
          r.name,
          r.matches.toLocaleString('en-US'),
          formatMs(r.firstPage.p50),
          formatMs(r.firstPage.p99),
          formatMs(r.firstPage.serverMs),
          `${formatMs(r.deepPage.p50)} @ ${r.deepPage.depth.toLocaleString('en-US')}`,
          formatMs(r.deepPage.p99),
          formatMs(r.deepPage.serverMs),
          formatRatio(Math.max(r.firstPage.p50, r.deepPage.p50) / r.baseline.p50),
          r.indexes.join(', '),
        ]),
      ];
      const table = markdownTable(
        ['Filter', 'Matches', 'First page p50', 'p99', 'server', 'Deep page p50 @ row', 'p99', 'server', 'Worse p50 ÷ baseline p50 in turns', 'Indexes'],
        rows,
      );
      process.stdout.write(
        [
          `## Audit trail: a page of ${PAGE} of ${CONFIG.rows.toLocaleString('en-US')} events (${CONFIG.runs} runs each)`,
          '',
          machineSummary(machine),
          `- Load: ${formatDuration(loaded.loadMs)}; indexes + ANALYZE: ${formatDuration(loaded.indexMs)}; table with indexes: ${loaded.sizeMiB} MiB`,
          '',
          table,
          '',
        ].join('\n'),
      );
      const file = await writeResults('audit', {
        quick: flags.quick,
        rows: CONFIG.rows,
        runs: CONFIG.runs,
        pageSize: PAGE,
        machine,
        load: loaded,
        baseline: { p50OfCases: baseline.p50, serverMs: baselineServerMs },
        cases: results,
      });
      log(`Results written to ${file}`);
      reportCorrectness(
        problems.length === 0,
        problems.length === 0 ? `the first and the deep page of all ${results.length} filters hold the same event ids in the same order as a plain query of audit_events (ORDER BY seq DESC, OFFSET 0 and the deep page's), and offer a next page exactly when it has more rows` : problems.join('; '),
      );
    } finally {
      await pool.end();
    }
  });
}

runBenchmark(main);
