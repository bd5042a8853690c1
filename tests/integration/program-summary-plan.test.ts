/**
 * The program summary's batch write (projections/program-summary.ts) against real PostgreSQL: its cost does not grow
 * with the customers already summarised. Each customer row of a batch is found by its key, never by reading the
 * table of every customer's periods (which a plain join let the planner do on every batch).
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { summaryWriteStatement, type SummaryLine } from '../../projections/program-summary.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

const day = '2026-12-07';
const line = (tenantId: string, consumerId: string): SummaryLine => ({
  id: uuid(), tenant_id: tenantId, day, consumer_id: consumerId,
  earned: 10, redeemed: 0, expired: 0, adjusted: 0, rewards_issued: 0, rewards_redeemed: 0, net: 10, active: true,
});

interface PlanNode { 'Node Type': string; 'Relation Name'?: string; 'Actual Rows': number; 'Actual Loops': number; Plans?: PlanNode[] }

test('a batch reads only its own customers\' period rows, however many customers the summary holds', async (t) => {
  const tenants = Array.from({ length: 10 }, () => uuid());
  const consumers = Array.from({ length: 5_000 }, (_, i) => ({ tenantId: tenants[i % tenants.length]!, consumerId: uuid() }));
  const table = (name: string) => name;
  // Every customer active today: 20,000 rows of program_customer_periods (day, week, month, year).
  for (let i = 0; i < consumers.length; i += 500) {
    await database.pool.query(summaryWriteStatement(consumers.slice(i, i + 500).map((c) => line(c.tenantId, c.consumerId)), table));
  }
  await database.pool.query('ANALYZE program_customer_periods');
  const { rows: counted } = await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM program_customer_periods');
  t.is(Number(counted[0]!.n), 20_000);

  // A batch of 100: 50 customers seen before, 50 new ones.
  const batch = [...consumers.slice(0, 50).map((c) => line(c.tenantId, c.consumerId)), ...Array.from({ length: 50 }, () => line(tenants[0]!, uuid()))];
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    const { text, values } = summaryWriteStatement(batch, table);
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    const reads: PlanNode[] = [];
    const walk = (node: PlanNode) => {
      if (node['Relation Name'] === 'program_customer_periods' && node['Node Type'] !== 'ModifyTable') reads.push(node);
      for (const child of node.Plans ?? []) walk(child);
    };
    walk((rows[0] as { 'QUERY PLAN': { Plan: PlanNode }[] })['QUERY PLAN'][0]!.Plan);
    t.true(reads.length > 0, 'the statement reads the customers\' rows to count the newly active');
    t.false(reads.some((node) => node['Node Type'] === 'Seq Scan'), `scans: ${reads.map((node) => node['Node Type']).join(', ')}`);
    // At most one row per (customer, interval) of the batch: 100 lines, 4 intervals each.
    const rowsRead = reads.reduce((sum, node) => sum + node['Actual Rows'] * node['Actual Loops'], 0);
    t.true(rowsRead <= 400, `rows of program_customer_periods read: ${rowsRead}`);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
  // The counts it writes are the ones the plain join gave: 50 new customers active today, in every interval.
  await database.pool.query(summaryWriteStatement(batch, table));
  const { rows: active } = await database.pool.query<{ granularity: string; active_customers: number }>(
    'SELECT granularity, active_customers FROM program_period_customers WHERE tenant_id = $1 ORDER BY granularity',
    [tenants[0]],
  );
  t.deepEqual(active.map((r) => [r.granularity, r.active_customers]), [['day', 550], ['month', 550], ['week', 550], ['year', 550]]);
});
