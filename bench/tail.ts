/**
 * `npm run bench:tail [-- --quick]`: what connected live event tails (GET /api/v1/admin/events/stream) cost payment
 * ingestion. Tally runs in this process (`startTally`) with the built-in Square simulator; closed-loop workers
 * trigger payments by email through the simulator, each answered once Tally has processed the webhooks and the
 * read models caught up (a credit per payment). Two contenders in alternating slices on the same service: no tail
 * connected, and 50 admin tails connected and reading (in a child process, as remote clients). Correctness line: every tail received every credit of its
 * slice, and every trigger was credited.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { v4 as uuid } from 'uuid';
import { startTally } from '../main.ts';
import { createLogger } from '../adapters/logger.ts';
import { freePort } from '../adapters/postgres/embedded.ts';
import { DEMO_MERCHANT } from '../adapters/square/simulator/development.ts';
import { api, browse, cookieJar, tokenFor, TEST_JWT_SECRET } from '../tests/support/http.ts';
import { formatRate, formatRatio, log, parseFlags, runInterleaved, withBenchDatabase, type Operation } from './support.ts';

const { quick } = parseFlags();
const TAILS = 50;
const WORKERS = 8;
const CONSUMERS = 40;
const ROUNDS = quick ? 1 : 6;
const SLICE_MS = quick ? 2_000 : 10_000;
const ADMIN_EMAIL = 'admin@bench-tail.test';

/**
 * The tails, in a child process: opens N streams (argv: url, token, n), prints `ready`, then on reading the expected
 * number of credits from stdin waits (30 s at most) until every stream has that many and prints the counts as JSON.
 */
const TAIL_READERS = `
const [url, token, n] = process.argv.slice(1);
const counts = Array(Number(n)).fill(0);
const controllers = [];
await Promise.all(counts.map(async (_, i) => {
  const controller = new AbortController();
  controllers.push(controller);
  const response = await fetch(url, { headers: { authorization: 'Bearer ' + token }, signal: controller.signal });
  if (!response.ok) { console.error('tail answered ' + response.status); process.exit(1); }
  (async () => {
    const decoder = new TextDecoder();
    try { for await (const chunk of response.body) counts[i] += (decoder.decode(chunk, { stream: true }).match(/^id: /gm) ?? []).length; } catch {}
  })();
}));
console.log('ready');
process.stdin.setEncoding('utf8');
process.stdin.once('data', async (line) => {
  const expected = Number(line.trim());
  const deadline = Date.now() + 30000;
  while (counts.some((c) => c < expected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  console.log(JSON.stringify(counts));
  for (const c of controllers) c.abort();
  process.exit(0);
});
`;

await withBenchDatabase(async (db) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-tail-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    NODE_ENV: 'development',
    SQUARE_SIMULATOR: 'on',
    PORT: String(port),
    HOST: '127.0.0.1',
    API_BASE_URL: url,
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: ADMIN_EMAIL,
    AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000',
  };
  const tally = await startTally({ env, log: createLogger({ level: 'error' }) });
  try {
    const call = api(url);
    const admin = await tokenFor('bench-admin', ADMIN_EMAIL);
    await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
    const merchantId = uuid();
    const merchant = await tokenFor(merchantId, 'owner@bench-tail.test');
    await call('POST', '/api/v1/me/register', { token: merchant, body: { role: 'client', businessName: 'Bench Bakery' } });
    await call('PATCH', `/api/v1/admin/users/${merchantId}/approve`, { token: admin });
    const rule = await call('POST', '/api/v1/client/reward-rules', { token: merchant, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
    await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: merchant });
    const connect = await call('GET', '/api/v1/client/pos/square/connect', { token: merchant });
    // The connect answer sets the cookie the start link is bound to.
    const jar = cookieJar(connect.headers);
    const consent = (await browse(connect.body.url, jar)).visited.at(-1)!;
    const landed = (await browse(consent, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=allow' })).visited.at(-1)!;
    if (!landed.endsWith('/pos?connected=square')) throw new Error(`connect did not complete: ${landed}`);
    const emails = Array.from({ length: CONSUMERS }, (_, i) => `consumer-${i}@bench-tail.test`);
    for (const email of emails) await call('POST', '/api/v1/me/register', { token: await tokenFor(`c-${email}`, email), body: { role: 'consumer' } });

    let credited = 0;
    let failed = 0;
    let paymentCount = 0;
    const workers: Operation[] = Array.from({ length: WORKERS }, () => async () => {
      const email = emails[paymentCount++ % emails.length]!;
      const response = await fetch(`${url}/square-simulator/simulator/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ merchant_id: DEMO_MERCHANT.merchantId, amount: 1099, email }),
      });
      const answer = (await response.json()) as { webhooks?: { type: string; processed?: string }[] };
      if (answer.webhooks?.find((w) => w.type === 'payment.updated')?.processed === 'credited') credited++;
      else failed++;
    });

    // Warm-up, outside the measurement: each consumer's first payment also creates the Square customer.
    await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
      for (let i = w; i < CONSUMERS; i += WORKERS) await workers[w]!();
    }));
    log(`warm-up: ${credited} payments credited`);
    credited = 0;

    const tailsMissing: string[] = [];
    const result = await runInterleaved({
      contenders: { 'no tail': { workers }, [`${TAILS} tails`]: { workers } },
      rounds: ROUNDS,
      sliceMs: SLICE_MS,
      around: async (name, slice) => {
        if (name === 'no tail') return void (await slice());
        // The tails read in a process of their own, as remote clients would: their parsing is not Tally's cost.
        const readers = spawn(process.execPath, ['--input-type=module', '-e', TAIL_READERS, `${url}/api/v1/admin/events/stream?type=PointsCredited`, admin, String(TAILS)], {
          stdio: ['pipe', 'pipe', 'inherit'],
        });
        const lines = createInterface({ input: readers.stdout! });
        const nextLine = () => new Promise<string>((resolve, reject) => {
          lines.once('line', resolve);
          readers.once('exit', (code) => reject(new Error(`tail readers exited (${code})`)));
        });
        if ((await nextLine()) !== 'ready') throw new Error('tail readers did not connect');
        const before = credited;
        await slice();
        const expected = credited - before;
        readers.stdin!.write(`${expected}\n`);
        const counts = JSON.parse(await nextLine()) as number[];
        if (counts.length !== TAILS || counts.some((c) => c !== expected)) tailsMissing.push(`slice with ${expected} credits: tails got ${Math.min(...counts)}..${Math.max(...counts)}`);
        await new Promise((resolve) => (readers.exitCode === null ? readers.once('exit', resolve) : resolve(undefined)));
      },
    });

    const base = result['no tail'];
    const tails = result[`${TAILS} tails`];
    const ratio = tails.rate / base.rate;
    process.stdout.write(
      [
        `## Live event tails and ingestion (npm run bench:tail${quick ? ' -- --quick' : ''})`,
        '',
        `${WORKERS} closed-loop workers trigger payments through the simulator; each answers once credited. ${ROUNDS} rounds of ${SLICE_MS / 1000} s slices, alternating.`,
        '',
        '| contender | payments credited/s | p50 | p99 |',
        '| --- | --- | --- | --- |',
        `| no tail | ${formatRate(base.rate)} | ${base.latencyMs.p50.toFixed(1)} ms | ${base.latencyMs.p99.toFixed(1)} ms |`,
        `| ${TAILS} tails reading | ${formatRate(tails.rate, '/s')} | ${tails.latencyMs.p50.toFixed(1)} ms | ${tails.latencyMs.p99.toFixed(1)} ms |`,
        '',
        `Throughput with ${TAILS} tails: ${formatRatio(ratio)} of none (cost ${((1 - ratio) * 100).toFixed(1)}%).`,
        `Correctness: ${failed === 0 && tailsMissing.length === 0 ? 'OK' : 'FAILED'}: ${credited} payments credited, ${failed} not; every tail received every credit of its slice${tailsMissing.length ? `: NO (${tailsMissing.join('; ')})` : ''}.`,
        '',
      ].join('\n'),
    );
    if (failed || tailsMissing.length) process.exitCode = 1;
  } finally {
    await tally.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
log('done');
