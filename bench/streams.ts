/**
 * `npm run bench:streams [-- --quick]`: does a long stream cost more than a short one, and does one hot wallet
 * slow everyone (issues 12.5 and 14.3)?
 *
 * Part 1, stream length: wallets of 10, 1,000, 10,000 and 100,000 events (`--quick`: up to 10,000) on the
 * PostgreSQL event store, through the production command path (keyed queue, recent states, snapshots in
 * `stream_snapshots`). Per wallet: the first command after seeding (a full fold, which writes the first
 * snapshot), a cold process's first command (snapshot + tail), then rounds of one credit (as the wallet-credits
 * reactor issues it), one redemption (the wallets service) and that redemption retried with its key (a replay,
 * answered as the first time), the sizes interleaved so machine noise falls on all of them alike. Reported:
 * p50/p99 per size and the ratio of the longest to the 10-event wallet (aim ≤ 1.2×).
 *
 * Part 2, the hot wallet, through the HTTP API of a running Tally: 100 concurrent redemptions on a wallet of
 * 10,000 events whose balance allows exactly 50, used once before (as a hot wallet has been: its state is in the
 * process and its snapshot written), while another tenant reads its own wallet in a loop. Baselines
 * in the same run: the other tenant's reads with nothing else running, and the same 100 redemptions on a wallet
 * of 10 events. Aims: under 2 s, read p99 under 50 ms.
 *
 * Correctness line: every wallet's balance and length, folded from its first event with no snapshot, equals
 * what the commands should have left; every replay answered its redemption's answer; exactly 50 redemptions
 * succeeded in each storm.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { v4 as uuid } from 'uuid';
import { provideCommandPath } from '../adapters/commands/path.ts';
import { PostgresEventStore } from '../adapters/eventstore/postgres.ts';
import { createLogger } from '../adapters/logger.ts';
import { handleCommand, loadState } from '../domain/shared/command-handler.ts';
import { walletsService } from '../domain/wallets/service.ts';
import { walletDecider, walletStream } from '../domain/wallets/wallet.ts';
import { startTally, type Tally } from '../main.ts';
import { credit, percentile, redeemStorm, seedWallet, type WalletOwner } from '../tests/support/hot-wallet.ts';
import { benchApi, log, machineInfo, machineSummary, markdownTable, now, openPool, parseFlags, withBenchDatabase, writeResults } from './support.ts';

const { quick } = parseFlags();
const SIZES = quick ? [10, 1_000, 10_000] : [10, 1_000, 10_000, 100_000];
const ROUNDS = quick ? 60 : 300;
const SEED_BALANCE = 1_000;
const STORM = { history: 10_000, redeems: 100, points: 10, balance: 500 };
const JWT_SECRET = 'bench-jwt-secret-that-is-long-enough-for-hs256-0123456789';
const ADMIN_EMAIL = 'ops@streams.bench';

interface SizeResult {
  size: number;
  firstCommandMs: number;
  coldProcessMs: number;
  credit: { p50: number; p99: number };
  redeem: { p50: number; p99: number };
  /** The redemption retried with its key (an idempotent replay). */
  replay: { p50: number; p99: number };
}

const fmt = (ms: number) => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

async function streamLength(url: string): Promise<{ sizes: SizeResult[]; correct: boolean; problems: string[] }> {
  const pool = await openPool(url, 10);
  const store = new PostgresEventStore(pool, { connectionString: url });
  try {
    const runtime = { now: () => new Date(), newId: uuid };
    const wallets = new Map<number, WalletOwner>();
    for (const size of SIZES) {
      const owner = { walletId: uuid(), tenantId: uuid(), consumerId: uuid() };
      const started = now();
      await seedWallet(store, owner, size, SEED_BALANCE);
      log(`  seeded a wallet of ${size.toLocaleString('en-US')} events (${((now() - started) / 1000).toFixed(1)} s)`);
      wallets.set(size, owner);
    }
    const redeem = (commands: ReturnType<typeof provideCommandPath>, owner: WalletOwner, idempotencyKey = uuid()) =>
      walletsService({ store, runtime, commands }).redeem(owner.tenantId, owner.walletId, { points: 1, idempotencyKey }, 'bench-clerk', {});
    const creditCommand = (commands: ReturnType<typeof provideCommandPath>, owner: WalletOwner) =>
      handleCommand(
        store,
        walletStream(owner.walletId),
        walletDecider,
        { type: 'CreditPoints', ...owner, paymentId: uuid(), points: 2, ruleId: 'rule-bench', ruleVersion: 1, basis: 'amount', basisAmountMinor: 200, via: 'purchase' },
        { newId: uuid, metadata: {}, path: commands },
      );

    const firstCommandMs = new Map<number, number>();
    const coldProcessMs = new Map<number, number>();
    for (const [size, owner] of wallets) {
      let started = now();
      await redeem(provideCommandPath(pool), owner);
      firstCommandMs.set(size, now() - started);
      started = now();
      await redeem(provideCommandPath(pool), owner);
      coldProcessMs.set(size, now() - started);
    }

    const commands = provideCommandPath(pool);
    const latencies = new Map(SIZES.map((size) => [size, { credit: [] as number[], redeem: [] as number[], replay: [] as number[] }]));
    const problems: string[] = [];
    for (const [, owner] of wallets) await creditCommand(commands, owner); // warm this process's states: not measured
    for (let round = 0; round < ROUNDS; round++) {
      for (const [size, owner] of wallets) {
        const into = latencies.get(size)!;
        let started = now();
        await creditCommand(commands, owner);
        into.credit.push(now() - started);
        const key = uuid();
        started = now();
        const first = await redeem(commands, owner, key);
        into.redeem.push(now() - started);
        started = now();
        const again = await redeem(commands, owner, key);
        into.replay.push(now() - started);
        if (JSON.stringify(again) !== JSON.stringify({ ...first, replayed: true })) problems.push(`wallet of ${size}: a replay answered ${JSON.stringify(again)}, not ${JSON.stringify(first)}`);
      }
    }

    for (const [size, owner] of wallets) {
      const { state, revision } = await loadState(store, walletStream(owner.walletId), walletDecider); // full fold, no snapshot
      const expectedBalance = SEED_BALANCE - 2 + (ROUNDS + 1) * 2 - ROUNDS;
      const expectedLength = size + 2 + 1 + 2 * ROUNDS;
      if (state.balance !== expectedBalance) problems.push(`wallet of ${size}: balance ${state.balance}, expected ${expectedBalance}`);
      if ((revision ?? -1) + 1 !== expectedLength) problems.push(`wallet of ${size}: ${(revision ?? -1) + 1} events, expected ${expectedLength}`);
    }
    const sizes = SIZES.map((size) => {
      const l = latencies.get(size)!;
      return {
        size,
        firstCommandMs: firstCommandMs.get(size)!,
        coldProcessMs: coldProcessMs.get(size)!,
        credit: { p50: percentile(l.credit, 50), p99: percentile(l.credit, 99) },
        redeem: { p50: percentile(l.redeem, 50), p99: percentile(l.redeem, 99) },
        replay: { p50: percentile(l.replay, 50), p99: percentile(l.replay, 99) },
      };
    });
    return { sizes, correct: problems.length === 0, problems };
  } finally {
    await store.close();
    await pool.end();
  }
}

interface StormFigures {
  history: number;
  elapsedMs: number;
  answers: Record<string, number>;
  otherReads: number;
  otherReadP99: number;
  /** CPU time of this process (Tally, the load and the other tenant's reads) during the storm. */
  cpuMs: number;
}

async function hotWallet(url: string): Promise<{ baselineReadP99: number; baselineReads: number; storms: StormFigures[]; correct: boolean }> {
  const env: NodeJS.ProcessEnv = {
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'tally-bench-streams-')),
    DATABASE_URL: url,
    AUTH_JWT_SECRET: JWT_SECRET,
    ADMIN_EMAILS: ADMIN_EMAIL,
    IDENTITY_HASH_KEY: 'bench-identity-hash-key-0123456789abcdef',
    ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    CRON_SECRET: 'bench-cron-secret-0123456789',
    API_BASE_URL: 'https://api.tally.bench',
    FRONTEND_URL: 'https://app.tally.bench',
    AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000',
  };
  let tally: Tally | undefined;
  try {
    tally = await startTally({ env, log: createLogger({ level: 'error', secrets: [JWT_SECRET] }) });
    const { call, expectStatus, register } = benchApi(tally.url, JWT_SECRET);
    const admin = await register('consumer', ADMIN_EMAIL);
    const merchant = async (i: number) => {
      const client = await register('client', `owner${i}@streams.bench`, { businessName: `Streams Merchant ${i}` });
      const approval = expectStatus('approve', await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: admin.token }), 200);
      return { token: client.token, tenantId: approval.body.user.tenantId as string };
    };
    const [hot, small, other, warm] = [await merchant(0), await merchant(1), await merchant(2), await merchant(3)];
    const shopper = await register('consumer', 'shopper@streams.bench');
    const hotWallet = { walletId: uuid(), tenantId: hot.tenantId, consumerId: shopper.id };
    const smallWallet = { walletId: uuid(), tenantId: small.tenantId, consumerId: shopper.id };
    const otherWallet = { walletId: uuid(), tenantId: other.tenantId, consumerId: shopper.id };
    const warmWallet = { walletId: uuid(), tenantId: warm.tenantId, consumerId: shopper.id };
    // Each storm wallet is used once before its storm (one redemption of 10, so the balance is then STORM.balance), as a
    // hot wallet has been: its state is in the process and its snapshot written. A first read of a long wallet with no
    // snapshot is a one-off cost, measured in part 1 ("first command").
    await seedWallet(tally.store, hotWallet, STORM.history, STORM.balance + STORM.points);
    await seedWallet(tally.store, warmWallet, 10, STORM.balance);
    await seedWallet(tally.store, smallWallet, 10, STORM.balance + STORM.points);
    const { position } = await tally.store.append(walletStream(otherWallet.walletId), [{ id: uuid(), ...credit(otherWallet, 'pay-other', 42), metadata: {} }], 'no_stream');
    if (!(await tally.runner.waitForPosition(position, 300_000))) throw new Error('projections did not catch up with the seeded wallets');
    const otherPath = `/api/v1/client/wallets/${otherWallet.walletId}`;

    // Warm-up, not reported: the first storm of a fresh process pays for compiling its code paths.
    await redeemStorm(call, { walletId: warmWallet.walletId, token: warm.token }, STORM.redeems, STORM.points, { token: other.token, path: otherPath });

    // Baseline: the other tenant's reads alone, for about as long as a storm takes.
    const alone: number[] = [];
    const until = now() + 2_000;
    while (now() < until) {
      const started = now();
      expectStatus('other read', await call('GET', otherPath, { token: other.token }), 200);
      alone.push(now() - started);
    }
    const storms: StormFigures[] = [];
    for (const [wallet, token] of [[smallWallet, small.token], [hotWallet, hot.token]] as const) {
      const body = { points: STORM.points, idempotencyKey: uuid() };
      expectStatus('first use', await call('POST', `/api/v1/client/wallets/${wallet.walletId}/redeem`, { token, body }), 200);
    }
    for (const [history, wallet, token] of [[10, smallWallet, small.token], [STORM.history, hotWallet, hot.token]] as const) {
      const cpu = process.cpuUsage();
      const storm = await redeemStorm(call, { walletId: wallet.walletId, token }, STORM.redeems, STORM.points, { token: other.token, path: otherPath });
      const used = process.cpuUsage(cpu);
      storms.push({
        history,
        elapsedMs: storm.elapsedMs,
        answers: storm.answers,
        otherReads: storm.otherReads.length,
        otherReadP99: percentile(storm.otherReads, 99),
        cpuMs: (used.user + used.system) / 1000,
      });
      log(`  storm on a wallet of ${history} events: ${storm.elapsedMs.toFixed(0)} ms ${JSON.stringify(storm.answers)}`);
    }
    const expected = { '200': STORM.balance / STORM.points, '409 INSUFFICIENT_POINTS': STORM.redeems - STORM.balance / STORM.points };
    const correct = storms.every((s) => JSON.stringify(s.answers) === JSON.stringify(expected));
    return { baselineReadP99: percentile(alone, 99), baselineReads: alone.length, storms, correct };
  } finally {
    await tally?.stop();
  }
}

async function main() {
  log(`bench:streams${quick ? ' --quick' : ''}: stream length ${SIZES.join(', ')}; ${ROUNDS} rounds`);
  const part1 = await withBenchDatabase(async (db) => ({ machine: await machineInfo(db), ...(await streamLength(db.url)) }), 'tally_bench_streams');
  log('hot wallet...');
  const part2 = await withBenchDatabase((db) => hotWallet(db.url), 'tally_bench_hot');

  const base = part1.sizes[0]!;
  const longest = part1.sizes.at(-1)!;
  const lines: string[] = [];
  lines.push(`## bench:streams${quick ? ' (quick)' : ''}`, '', machineSummary(part1.machine), '');
  lines.push(
    markdownTable(
      ['wallet events', 'credit p50', 'credit p99', 'redeem p50', 'redeem p99', 'replay p50', 'replay p99', 'first command (full fold, writes snapshot)', 'cold process (snapshot + tail)'],
      part1.sizes.map((s) => [
        s.size.toLocaleString('en-US'),
        fmt(s.credit.p50),
        fmt(s.credit.p99),
        fmt(s.redeem.p50),
        fmt(s.redeem.p99),
        fmt(s.replay.p50),
        fmt(s.replay.p99),
        fmt(s.firstCommandMs),
        fmt(s.coldProcessMs),
      ]),
    ),
    '',
    `Ratio ${longest.size.toLocaleString('en-US')} vs 10 events (p50): credit ${ratio(longest.credit.p50, base.credit.p50)}, redeem ${ratio(longest.redeem.p50, base.redeem.p50)}, replay ${ratio(longest.replay.p50, base.replay.p50)} (aim ≤ 1.20×); ${ROUNDS} rounds.`,
    '',
  );
  lines.push(
    markdownTable(
      ['hot wallet', 'wallet events', '100 concurrent redeems', 'answers', "other tenant's reads meanwhile", 'their p99', 'CPU of the process meanwhile'],
      part2.storms.map((s) => [
        '',
        s.history.toLocaleString('en-US'),
        fmt(s.elapsedMs),
        Object.entries(s.answers).map(([k, v]) => `${v} × ${k}`).join(', '),
        String(s.otherReads),
        fmt(s.otherReadP99),
        fmt(s.cpuMs),
      ]),
    ),
    '',
    `Other tenant's read p99 with nothing else running: ${fmt(part2.baselineReadP99)} (${part2.baselineReads} reads). Aims: 100 redeems on 10,000 events < 2 s, read p99 < 50 ms.`,
    '',
  );
  const correct = part1.correct && part2.correct;
  lines.push(
    `correctness: ${correct ? 'ok' : 'FAILED'}: every wallet's balance and length folded from its first event match the commands, every replay its first answer; each storm: exactly ${STORM.balance / STORM.points} of ${STORM.redeems} succeeded` +
      (part1.problems.length ? ` (${part1.problems.join('; ')})` : ''),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  await writeResults('streams', { quick, rounds: ROUNDS, machine: part1.machine, sizes: part1.sizes, hotWallet: part2, correct });
  if (!correct) process.exitCode = 1;
}

await main();
