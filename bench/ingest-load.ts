/**
 * The load generator of bench/ingest.ts, in its own process so that its CPU is not Tally's:
 *
 *   node --import=tsx bench/ingest-load.ts webhooks <spec.json> <out.json>
 *   node --import=tsx bench/ingest-load.ts reads <spec.json> <out.json>
 *
 * `webhooks`: signs (as Square does: base64 HMAC-SHA256 of notification URL + body) and POSTs each payment's
 * `payment.updated` COMPLETED webhook, closed-loop at the given concurrency over keep-alive node:http (lighter
 * than `fetch`, so the generator keeps up with the open-loop rates on a busy machine) (or, with
 * `rate`, open-loop: webhook i is sent at start + i / rate whatever the answers so far), recording
 * every request's send and acknowledgement time (epoch ms, comparable across processes). Meanwhile it samples
 * the `wallets` projection's checkpoint every few milliseconds on its own connection (cheap: one row by
 * primary key), and after the last acknowledgement keeps sampling until the system has drained (the inbox
 * processed and every expected credit in `wallet_ledger`).
 *
 * `reads`: closed-loop GETs at the given concurrency against two URLs in alternating slices (Tally's
 * /api/v1/me/wallets with consumers' bearer tokens, and the bare Koa route), summed per side.
 */
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { paymentWebhook, squareSignature } from '../tests/support/square-webhooks.ts';
import { runInterleaved, type Operation } from './support.ts';

const epoch = () => performance.timeOrigin + performance.now();

export interface WebhookSpec {
  url: string;
  key: string;
  notificationUrl: string;
  databaseUrl: string;
  concurrency: number;
  /** Open loop: webhooks per second, sent on schedule whether or not earlier ones were answered. */
  rate?: number;
  /** Checkpoint sampling interval (ms). */
  sampleMs: number;
  drainTimeoutMs: number;
  /** Credit rows `wallet_ledger` holds once these webhooks are all processed (those of earlier runs included). */
  creditsWhenDrained: number;
  payments: { eventId: string; merchantId: string; paymentId: string; amount: number; customerId: string }[];
}

export interface WebhookOutput {
  startedEpoch: number;
  lastAckEpoch: number;
  drainedEpoch: number | null;
  /** Per payment, in spec order: send and acknowledgement epoch ms, status (0 = network error). */
  sentAt: number[];
  ackedAt: number[];
  status: number[];
  errors: string[];
  /** [epoch ms, wallets checkpoint position] each time the position changed. */
  checkpoints: [number, string][];
  samples: number;
  /** Webhooks sent again after a connection error (as Square redelivers). */
  retries: number;
  /** Statements this process sent to PostgreSQL (each its own committed transaction), to subtract from xact_commit. */
  queries: number;
  lastDrainProbe: Record<string, unknown> | null;
}

export interface ReadSpec {
  concurrency: number;
  rounds: number;
  sliceMs: number;
  tally: { url: string; headers: Record<string, string>[] };
  bare: { url: string; headers: Record<string, string>[] };
}

async function webhooks(spec: WebhookSpec): Promise<WebhookOutput> {
  // Bodies and signatures are prepared before the clock starts: the generator's own work stays out of it.
  const requests = spec.payments.map((p) => {
    const body = JSON.stringify(paymentWebhook({ eventId: p.eventId, merchantId: p.merchantId, paymentId: p.paymentId, amount: p.amount, customerId: p.customerId }));
    return {
      body,
      headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': squareSignature(spec.key, spec.notificationUrl, body) },
    };
  });
  const target = `${spec.url}/api/v1/webhooks/square`;
  const n = requests.length;
  const out: WebhookOutput = {
    startedEpoch: 0,
    lastAckEpoch: 0,
    drainedEpoch: null,
    sentAt: new Array(n).fill(0),
    ackedAt: new Array(n).fill(0),
    status: new Array(n).fill(0),
    errors: [],
    checkpoints: [],
    samples: 0,
    queries: 0,
    retries: 0,
    lastDrainProbe: null,
  };

  const db = new pg.Client({ connectionString: spec.databaseUrl });
  await db.connect();
  let sampling = true;
  let lastPosition: string | null = null;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await db.query<{ position: string | null }>(`SELECT position FROM projection_checkpoints WHERE name = 'wallets'`);
      const at = epoch();
      out.samples++;
      out.queries++;
      const position = rows[0]?.position ?? null;
      if (position !== null && position !== lastPosition) {
        out.checkpoints.push([at, position]);
        lastPosition = position;
      }
      await new Promise((resolve) => setTimeout(resolve, spec.sampleMs));
    }
  })();

  // Warm the keep-alive connections (not recorded) with the liveness probe: a webhook would be a real
  // payment, and an unsigned one counts as an authentication failure (rate-limited per address).
  // Open loop: connections as needed (up to 512; beyond, requests wait in the agent and that wait counts).
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.rate ? 512 : spec.concurrency });
  const send = (url: string, method: string, headers: Record<string, string>, body?: string) =>
    new Promise<number>((resolve, reject) => {
      const request = http.request(url, { method, agent, headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (response) => {
        response.on('error', reject);
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.resume();
      });
      request.on('error', reject);
      request.end(body);
    });
  await Promise.all(Array.from({ length: spec.concurrency }, () => send(`${spec.url}/healthz`, 'GET', {})));

  const post = async (i: number) => {
    const request = requests[i]!;
    out.sentAt[i] = epoch();
    // A connection error is sent again at once, up to twice, as Square redelivers a webhook that was not
    // answered: keep-alive has a race (the server closes an idle connection as the client reuses it, ECONNRESET)
    // that is not Tally's doing. The acknowledgement time includes the retries; `retries` counts them.
    for (let attempt = 1; ; attempt++) {
      try {
        out.status[i] = await send(target, 'POST', request.headers, request.body);
        break;
      } catch (error) {
        out.status[i] = 0;
        if (out.errors.length < 20) out.errors.push(`${error instanceof Error ? error.message : String(error)} (attempt ${attempt})`);
        if (attempt === 3) break;
        out.retries++;
      }
    }
    out.ackedAt[i] = epoch();
  };
  out.startedEpoch = epoch();
  if (spec.rate) {
    // Open loop: every webhook leaves at its scheduled time; a slow answer delays nothing that follows it.
    const interval = 1000 / spec.rate;
    const inFlight: Promise<void>[] = [];
    let next = 0;
    while (next < n) {
      const due = Math.min(n, Math.floor((epoch() - out.startedEpoch) / interval) + 1);
      while (next < due) inFlight.push(post(next++));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(inFlight);
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: spec.concurrency }, async () => {
        for (;;) {
          const i = next++;
          if (i >= n) return;
          await post(i);
        }
      }),
    );
  }
  out.lastAckEpoch = out.ackedAt.reduce((a, b) => Math.max(a, b), 0);
  agent.destroy();

  // Drained: nothing pending in the inbox, and every credit in `wallet_ledger` (the wallets projection applied
  // it, whether the batch appended it inline or the wallet-credits reactor did). Projections and reactors are fed
  // only the event types they handle, so their checkpoints need not reach the head of the log: not a test.
  const deadline = epoch() + spec.drainTimeoutMs;
  while (epoch() < deadline) {
    const { rows } = await db.query<{ pending: string; credits: string; wallets: string | null }>(
      `SELECT (SELECT count(*) FROM pos_webhook_events_raw WHERE NOT processed) AS pending,
              (SELECT count(*) FROM wallet_ledger WHERE kind = 'earn') AS credits,
              (SELECT position FROM projection_checkpoints WHERE name = 'wallets') AS wallets`,
    );
    const probe = rows[0]!;
    out.queries++;
    out.lastDrainProbe = probe;
    if (Number(probe.pending) === 0 && Number(probe.credits) >= spec.creditsWhenDrained) {
      out.drainedEpoch = epoch();
      // The probe saw the checkpoint past every credit: count that as a sample, the sampler may not have yet.
      if (probe.wallets !== null && probe.wallets !== lastPosition) {
        out.checkpoints.push([out.drainedEpoch, probe.wallets]);
        lastPosition = probe.wallets;
      }
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  sampling = false;
  await sampler;
  await db.end();
  return out;
}

async function reads(spec: ReadSpec) {
  const statuses: Record<string, Record<number, number>> = { tally: {}, bare: {} };
  const worker = (side: 'tally' | 'bare', index: number): Operation => {
    const { url, headers: all } = spec[side];
    let k = index;
    return async () => {
      const headers = all[k++ % all.length]!;
      const response = await fetch(url, { headers });
      await response.arrayBuffer();
      statuses[side]![response.status] = (statuses[side]![response.status] ?? 0) + 1;
    };
  };
  const workers = (side: 'tally' | 'bare') => Array.from({ length: spec.concurrency }, (_, i) => worker(side, i * 7919));
  // Warm-up: opens the keep-alive connections and the server's caches, not recorded.
  await runInterleaved({ contenders: { tally: { workers: workers('tally') }, bare: { workers: workers('bare') } }, rounds: 1, sliceMs: 300 });
  statuses.tally = {};
  statuses.bare = {};
  const result = await runInterleaved({
    contenders: { tally: { workers: workers('tally') }, bare: { workers: workers('bare') } },
    rounds: spec.rounds,
    sliceMs: spec.sliceMs,
  });
  return { result, statuses };
}

async function main() {
  const [mode, specFile, outFile] = process.argv.slice(2);
  if (!mode || !specFile || !outFile) throw new Error('usage: ingest-load.ts webhooks|reads <spec.json> <out.json>');
  const spec = JSON.parse(await readFile(specFile, 'utf8'));
  const output = mode === 'webhooks' ? await webhooks(spec as WebhookSpec) : mode === 'reads' ? await reads(spec as ReadSpec) : undefined;
  if (!output) throw new Error(`unknown mode ${mode}`);
  await writeFile(outFile, JSON.stringify(output));
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`ingest-load: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
