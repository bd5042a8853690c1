/**
 * A worker-thread entry standing in for the webhook worker's composition root (tests/integration/webhook-thread.test.ts):
 * it speaks the same messages, and logs as the service's logger does (levels by label). Its first run in a directory (`env.TALLY_THREAD_TEST_DIR`) logs a line and ends
 * with exit code 1, as a crashed thread would; later runs answer every wake, and every word of the acknowledgements, with an outcome named after their run.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { ServiceMessage, ThreadMessage, WebhookThreadData } from '../../wiring/webhook-thread.ts';

const port = parentPort!;
const data = workerData as WebhookThreadData;
const marker = path.join(data.env.TALLY_THREAD_TEST_DIR ?? '.', 'first-run');
const post = (message: ThreadMessage) => port.postMessage(message);
const firstRun = !existsSync(marker);
const line = (level: string, msg: string) => JSON.stringify({ level, time: Date.now(), pid: process.pid, hostname: 'h', msg, run: firstRun ? 1 : 2 });

post({ kind: 'ready' });
if (firstRun) {
  writeFileSync(marker, '');
  post({ kind: 'log', line: line('error', 'first run: ending as a crash would') });
  setTimeout(() => process.exit(1), 10);
} else {
  post({ kind: 'log', line: line('info', 'second run: ready') });
  // As a real worker started again takes back the leases its crashed run held.
  post({ kind: 'leases-taken-back', count: 3 });
  port.on('message', (message: ServiceMessage) => {
    if (message.kind === 'wake') post({ kind: 'outcome', outcome: 'woken-in-second-run' });
    else if (message.kind === 'acknowledgements') post({ kind: 'outcome', outcome: `told-queueing-${message.queueing}-in-second-run` });
    else {
      post({ kind: 'stopped' });
      port.close();
    }
  });
}
