/**
 * The webhook worker thread's lifecycle as the service sees it (wiring/webhook-thread.ts), on a stand-in entry
 * module that speaks the same messages: its log lines are written by the service's logger at their level; a
 * thread that ends unexpectedly is started again; wake-ups, and whether acknowledgements queue (said before it was
 * started again), reach the new thread; stop ends it. What the real thread does is covered by
 * tests/http/ingestion-thread.test.ts, which runs the ingestion suite with it on (`WEBHOOK_WORKER_THREAD=true`).
 */
import test from 'ava';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../adapters/logger.ts';
import { loadConfig } from '../../adapters/config.ts';
import { startWebhookThread } from '../../wiring/webhook-thread.ts';
import { until } from '../support/eventually.ts';

test('a thread that ends is started again; its log lines reach the service log; wake, stop and whether acknowledgements queue reach the new thread', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-thread-'));
  const env = { NODE_ENV: 'test', DATA_DIR: dir, TALLY_THREAD_TEST_DIR: dir };
  const config = await loadConfig(env);
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const text of String(chunk).split('\n')) if (text) lines.push(JSON.parse(text) as Record<string, unknown>);
      callback();
    },
  });
  const log = createLogger({ level: 'debug', secrets: [], destination });
  const outcomes: string[] = [];
  const takenBack: number[] = [];
  const thread = await startWebhookThread({
    config,
    env,
    databaseUrl: 'postgres://unused',
    log,
    reports: { outcome: (o) => outcomes.push(o), appended: () => undefined, settled: () => undefined, customerChanged: () => undefined, conflict: () => undefined, leasesTakenBack: (n) => takenBack.push(n) },
    // The double beside this file as it runs: compiled in .build/ (npm test) or the source through tsx.
    entry: new URL(`../support/webhook-thread-double${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
    restartMs: 50,
  });
  // Told while the first run is about to end (it listens to nothing): the run started again is told when ready.
  thread.acknowledgements(true);
  try {
    await until(async () => lines.some((l) => l.msg === 'second run: ready'), (seen) => seen, { timeoutMs: 20_000 });
    const crashLine = lines.find((l) => l.msg === 'first run: ending as a crash would');
    t.is(crashLine?.level, 'error', "the thread's error line is an error line of the service");
    t.is(crashLine?.thread, 'webhooks');
    t.is(crashLine?.run, 1);
    t.true(lines.some((l) => l.level === 'error' && typeof l.msg === 'string' && l.msg.startsWith('webhook worker thread ended; starting it again')));
    thread.wake();
    await until(async () => outcomes.includes('woken-in-second-run'), (seen) => seen, { timeoutMs: 10_000 });
  } finally {
    await thread.stop();
  }
  t.deepEqual(outcomes, ['told-queueing-true-in-second-run', 'woken-in-second-run']);
  t.deepEqual(takenBack, [3], "the thread's report of leases taken back reaches the service");
});
