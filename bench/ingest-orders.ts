/**
 * The cost of reading a payment's Square order for rules that need it (issue 19), run by `npm run bench:ingest`
 * after its own phases: through the real `square` SDK and the adapter against the local Square server, the order
 * look-up ingestion uses (`domain/payments/order-lookup.ts`), uncached (a new order: `GET /v2/orders/{id}`),
 * uncached with its items' categories (plus `POST /v2/catalog/batch-retrieve`), and cached (a second tender of the
 * order, or a retried webhook). Baseline, same run: the uncached Square customer look-up every new customer's first
 * payment already pays. Writes `bench/results/ingest-orders.json` (the README table `bench:ingest-orders`).
 *
 * Correctness: every order read gives, through the pure rule evaluation, the points its lines should give, and a
 * payment-only rule set reads no order at all.
 */
import os from 'node:os';
import { createSquareGateway } from '../adapters/square/client.ts';
import { DEMO_CATALOG } from '../adapters/square/simulator/orders.ts';
import { startSquareServer, type TestOrderLine } from '../adapters/square/simulator/server.ts';
import { orderLookup } from '../domain/payments/order-lookup.ts';
import { evaluateRules, rulesNeedOrder, type RuleRef } from '../domain/rewards/evaluate.ts';
import type { ResultRow } from './report.ts';
import { notes, resultsTable } from './report.ts';
import { formatDuration, log, writeResults } from './support.ts';

const MERCHANT = 'MBENCHORDERS';
const LOCATION = 'LBENCHORDERS';
const ITEM_RULE: RuleRef = { ruleId: 'item', version: 1, rule: { kind: 'item', points: 5, itemVariationIds: ['VARLATTE'] } };
const CATEGORY_RULE: RuleRef = { ruleId: 'category', version: 1, rule: { kind: 'category', points: 2, categoryIds: ['CATPASTRY'] } };
const SPEND_RULE: RuleRef = { ruleId: 'spend', version: 1, rule: { kind: 'spend', points: 1, per: 100, basis: 'amount', minimumSpend: 0 } };

interface Phase {
  p50: number;
  p99: number;
  cpuMsPerOp: number;
  perSecond: number;
}

/** Runs `op` for each of `n` indexes, `concurrency` at a time: latency percentiles, CPU and rate. */
async function measure(n: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<Phase> {
  const latencies: number[] = [];
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const at = performance.now();
        await op(i);
        latencies.push(performance.now() - at);
      }
    }),
  );
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const sorted = Float64Array.from(latencies).sort();
  return { p50: sorted[Math.floor(sorted.length * 0.5)] ?? Number.NaN, p99: sorted[Math.floor(sorted.length * 0.99)] ?? Number.NaN, cpuMsPerOp: (used.user + used.system) / 1000 / n, perSecond: (n / wall) * 1000 };
}

const orderLines = (i: number): TestOrderLine[] => [
  { catalogObjectId: 'VARLATTE', name: 'Latte', quantity: String(1 + (i % 3)), basePriceMinor: 450, taxMinor: 36 },
  { catalogObjectId: 'VARMUFFIN', name: 'Muffin', quantity: String(i % 2), basePriceMinor: 325 },
];

// Over 80 lines because it is one benchmark read top to bottom: set-up, four measured phases, the check, the report.
export async function orderFetchBenchmark(quick: boolean): Promise<boolean> {
  const n = quick ? 200 : 2_000;
  const concurrency = 8;
  const started = performance.now();
  const startedAt = new Date();
  const square = await startSquareServer();
  try {
    square.addMerchant({ merchantId: MERCHANT, businessName: 'Bench Orders', locations: [{ id: LOCATION, name: 'Main' }] });
    square.setCatalog(MERCHANT, DEMO_CATALOG);
    for (let i = 0; i < n; i++) {
      square.addCustomer(MERCHANT, { id: `cust-${i}`, email: `c${i}@bench.test` });
      square.addOrder(MERCHANT, { id: `ord-${i}`, locationId: LOCATION, lines: orderLines(i), createdAt: startedAt.toISOString() });
      square.addOrder(MERCHANT, { id: `ordc-${i}`, locationId: LOCATION, lines: orderLines(i), createdAt: startedAt.toISOString() });
    }
    const api = createSquareGateway({ appId: square.appId, appSecret: square.appSecret, environment: 'sandbox', baseUrl: square.url }).forAccessToken(square.issueAccessToken(MERCHANT));
    const lookups = orderLookup({ apiFor: async () => api, scopes: () => ['ORDERS_READ', 'ITEMS_READ'] }, { ttlMs: 600_000, maxEntries: 100_000, now: () => Date.now() });
    // Warm the SDK and the sockets before anything is measured.
    for (let i = 0; i < 20; i++) await api.getCustomer(`cust-${i}`);

    const customer = await measure(n, concurrency, (i) => api.getCustomer(`cust-${i}`));
    const order = await measure(n, concurrency, (i) => lookups.get('t', `ord-${i}`, false));
    const withCatalog = await measure(n, concurrency, (i) => lookups.get('t', `ordc-${i}`, true));
    const requestsBefore = square.requests.length;
    const cached = await measure(n, concurrency, (i) => lookups.get('t', `ord-${i}`, false));
    const cachedRequests = square.requests.length - requestsBefore;

    // Correctness: each order read gives what its lines should; a payment-only rule set needs no order.
    const wrong: string[] = [];
    for (let i = 0; i < n; i++) {
      const read = await lookups.get('t', `ordc-${i}`, true);
      const amountMinor = (1 + (i % 3)) * 486 + (i % 2) * 325;
      const result = evaluateRules([ITEM_RULE, CATEGORY_RULE], { amountMinor, totalMinor: amountMinor, order: read, hasOrder: true });
      const expected = 5 * (1 + (i % 3)) + 2 * (i % 2);
      if (result.points !== expected) wrong.push(`ord-${i}: ${result.points} points, expected ${expected}`);
    }
    if (rulesNeedOrder([SPEND_RULE])) wrong.push('a payment-only spend rule would read the order');
    if (cachedRequests !== 0) wrong.push(`${cachedRequests} Square requests for cached orders`);
    const correct = wrong.length === 0;
    const correctness = correct
      ? `${n} orders read through the SDK give the points of their lines (item + category rules); cached reads made no Square request; a payment-only rule reads no order`
      : wrong.slice(0, 5).join('; ');

    const row = (measurement: string, phase: Phase, note: string): ResultRow[] => [
      { measurement: `${measurement}: latency p50`, unit: 'ms', tally: phase.p50, baseline: customer.p50, ratio: phase.p50 / customer.p50, aim: null, met: null, note },
      { measurement: `${measurement}: CPU per payment (this process: SDK, adapter, local Square)`, unit: 'ms', tally: phase.cpuMsPerOp, baseline: customer.cpuMsPerOp, ratio: phase.cpuMsPerOp / customer.cpuMsPerOp, aim: null, met: null, note: null },
    ];
    const results: ResultRow[] = [
      ...row('order, uncached (item or before-tax rule)', order, `p99 ${order.p99.toFixed(2)} ms vs ${customer.p99.toFixed(2)} ms; one GET /v2/orders/{id}`),
      ...row('order + catalog, uncached (category rule or excluded categories)', withCatalog, `p99 ${withCatalog.p99.toFixed(2)} ms; the order, then POST /v2/catalog/batch-retrieve with related objects`),
      ...row('order, cached (second tender, retried webhook)', cached, `p99 ${cached.p99.toFixed(3)} ms; ${cachedRequests} Square requests`),
      { measurement: 'correctness: points from orders read', unit: 'orders', tally: n - wrong.length, baseline: n, ratio: (n - wrong.length) / n, aim: null, met: correct, note: correctness },
    ];
    const load = Math.round(os.loadavg()[0]! * 100) / 100;
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${load}; local Square server in this process (loopback, no added delay), concurrency ${concurrency}`;
    process.stdout.write(
      [
        '',
        `## Order fetch for rules that read the order${quick ? ' (--quick)' : ''}`,
        '',
        `- ${machine}; ${n} payments per phase; baseline: the uncached customer look-up (GET /v2/customers/{id}) in the same run`,
        '',
        resultsTable(results),
        '',
        'Notes:',
        ...notes(results),
        '',
      ].join('\n'),
    );
    const file = await writeResults('ingest-orders', { benchmark: 'ingest-orders', quick, startedAt: startedAt.toISOString(), durationMs: Math.round(performance.now() - started), machine, results });
    log(`Order fetch results written to ${file} (${formatDuration(performance.now() - started)})`);
    process.stderr.write(`correctness: ${correct ? 'OK' : 'WRONG'}: order fetch: ${correctness}\n`);
    return correct;
  } finally {
    await square.stop();
  }
}
