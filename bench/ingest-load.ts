/**
 * The load generator of bench/ingest.ts, in its own process so that its CPU is not Tally's:
 *
 *   node --import=tsx bench/ingest-load.ts webhooks <spec.json> <out.json>
 *   node --import=tsx bench/ingest-load.ts reads <spec.json> <out.json>
 *
 * `webhooks`: signs (as Square does: base64 HMAC-SHA256 of notification URL + body) and POSTs each payment's
 * `payment.updated` COMPLETED webhook, closed-loop at the given concurrency over keep-alive connections with
 * prepared request bytes (`RawHttpClient`, below: lighter than `node:http`, itself lighter than `fetch`, so the
 * generator takes less of the cores it shares with Tally and keeps up with the open-loop rates) (or, with
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
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { paymentWebhook, squareSignature } from '../tests/support/square-webhooks.ts';
import { runInterleaved, type Operation } from './support.ts';

const epoch = () => performance.timeOrigin + performance.now();
const WEBHOOK_PATH = '/api/v1/webhooks/square';

/** Tally closes a keep-alive connection idle for 5 s (wiring/http.ts): the client stops reusing one a second before. */
const STALE_AFTER_MS = 4_000;

/**
 * A minimal keep-alive HTTP/1.1 client for the webhook load: requests are prepared bytes, each sent with one
 * socket write on an idle connection (one request at a time per connection), and the answer parsed only as far
 * as its status and length. Square's senders are not on Tally's machine; on the shared 2 cores, `node:http`'s
 * client cost about as much CPU per webhook as Tally's own acknowledgement, so the lean client leaves Tally
 * more of the machine (the generator's CPU is reported).
 */
class RawHttpClient {
  private readonly idle: RawConnection[] = [];
  private readonly waiting: ((connection: RawConnection) => void)[] = [];
  private open = 0;
  private readonly host: string;
  private readonly port: number;

  constructor(url: string, private readonly maxConnections: number) {
    const parsed = new URL(url);
    this.host = parsed.hostname;
    this.port = Number(parsed.port || 80);
  }

  static requestBytes(host: string, method: string, path: string, headers: Record<string, string>, body?: string): Buffer {
    const content = body === undefined ? undefined : Buffer.from(body);
    const lines = [`${method} ${path} HTTP/1.1`, `host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    if (content) lines.push(`content-length: ${content.length}`);
    const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    return content ? Buffer.concat([head, content]) : head;
  }

  request(method: string, path: string, headers: Record<string, string>, body?: string): Buffer {
    return RawHttpClient.requestBytes(`${this.host}:${this.port}`, method, path, headers, body);
  }

  /** Sends the request on an idle connection (a new one while under the limit, else waits) and answers its status. */
  async send(bytes: Buffer): Promise<number> {
    const connection = this.takeIdle() ?? (this.open < this.maxConnections ? (this.open++, new RawConnection(this.host, this.port)) : await new Promise<RawConnection>((resolve) => this.waiting.push(resolve)));
    try {
      const { status, keepAlive } = await connection.exchange(bytes);
      if (keepAlive) this.release(connection);
      else this.replace(connection);
      return status;
    } catch (error) {
      this.replace(connection);
      throw error;
    }
  }

  /**
   * An idle connection still open: those the server closed while idle (its keep-alive timeout) are dropped, as
   * node:http's agent does, and so are those idle for nearly that long (`STALE_AFTER_MS`): the server may be closing
   * one as it is reused, and the request then meets a reset that is not Tally's doing.
   */
  private takeIdle(): RawConnection | undefined {
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) {
      if (connection.open && Date.now() - connection.idleSince < STALE_AFTER_MS) return connection;
      connection.destroy();
      this.open--;
    }
    return undefined;
  }

  private release(connection: RawConnection) {
    const next = this.waiting.shift();
    if (next) next(connection);
    else {
      connection.idleSince = Date.now();
      this.idle.push(connection);
    }
  }

  private replace(connection: RawConnection) {
    connection.destroy();
    const next = this.waiting.shift();
    if (next) next(new RawConnection(this.host, this.port));
    else this.open--;
  }

  close() {
    for (const connection of this.idle.splice(0)) connection.destroy();
  }
}

class RawConnection {
  /** When it was last released idle (ms since the epoch). */
  idleSince = Date.now();
  private readonly socket: net.Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private pending: { resolve(answer: { status: number; keepAlive: boolean }): void; reject(error: Error): void } | null = null;
  private failed: Error | null = null;

  constructor(host: string, port: number) {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
      this.parse();
    });
    const fail = (error: Error) => {
      this.failed ??= error;
      const pending = this.pending;
      this.pending = null;
      pending?.reject(error);
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(new Error('socket hang up')));
  }

  /** Not closed by the server or failed. */
  get open(): boolean {
    return this.failed === null;
  }

  exchange(bytes: Buffer): Promise<{ status: number; keepAlive: boolean }> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.buffered = Buffer.alloc(0);
      this.socket.write(bytes);
    });
  }

  private parse() {
    const headEnd = this.buffered.indexOf('\r\n\r\n');
    if (headEnd < 0 || !this.pending) return;
    const head = this.buffered.toString('latin1', 0, headEnd);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const bodyStart = headEnd + 4;
    if (length) {
      if (this.buffered.length < bodyStart + Number(length[1])) return;
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      if (this.buffered.indexOf('0\r\n\r\n', bodyStart) < 0) return;
    }
    const pending = this.pending;
    this.pending = null;
    this.buffered = Buffer.alloc(0);
    pending.resolve({ status, keepAlive: !/\r\nconnection: *close/i.test(head) });
  }

  destroy() {
    this.socket.destroy();
  }
}

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
  /** This process's CPU (ms) from the first webhook sent to the last acknowledged. */
  cpuMs: number;
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
  // Each request's bytes (request line, headers, body) are built here too: sending one is one socket write.
  const client0 = new URL(spec.url);
  const requests = spec.payments.map((p) => {
    const body = JSON.stringify(paymentWebhook({ eventId: p.eventId, merchantId: p.merchantId, paymentId: p.paymentId, amount: p.amount, customerId: p.customerId }));
    return RawHttpClient.requestBytes(client0.host, 'POST', WEBHOOK_PATH, { 'content-type': 'application/json', 'x-square-hmacsha256-signature': squareSignature(spec.key, spec.notificationUrl, body) }, body);
  });
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
    cpuMs: 0,
  };

  const db = new pg.Client({ connectionString: spec.databaseUrl });
  await db.connect();
  // The drain probe reads the unprocessed rows through the inbox's partial index: a table that grew by thousands of
  // rows since it was last analysed is otherwise read whole (about 9 ms a time, the server's CPU during the burst).
  await db.query('SET enable_seqscan = off');
  let sampling = true;
  let lastPosition: string | null = null;
  const sampler = (async () => {
    while (sampling) {
      // Named: a sample every few ms, planned once (unnamed, its planning was 76 ms of the server's time a burst).
      const { rows } = await db.query<{ position: string | null }>({ name: 'bench_wallets_checkpoint', text: `SELECT position FROM projection_checkpoints WHERE name = 'wallets'` });
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
  // Open loop: connections as needed (up to 512; beyond, requests wait for one and that wait counts).
  const client = new RawHttpClient(spec.url, spec.rate ? 512 : spec.concurrency);
  await Promise.all(Array.from({ length: spec.concurrency }, () => client.send(client.request('GET', '/healthz', {}))));
  const send = (bytes: Buffer) => client.send(bytes);
  const post = async (i: number) => {
    const request = requests[i]!;
    out.sentAt[i] = epoch();
    // A connection error is sent again at once, up to twice, as Square redelivers a webhook that was not
    // answered: keep-alive has a race (the server closes an idle connection as the client reuses it, ECONNRESET)
    // that is not Tally's doing. The acknowledgement time includes the retries; `retries` counts them.
    for (let attempt = 1; ; attempt++) {
      try {
        out.status[i] = await send(request);
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
  const cpuBefore = process.cpuUsage();
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
  const cpuAfter = process.cpuUsage(cpuBefore);
  out.cpuMs = (cpuAfter.user + cpuAfter.system) / 1000;
  client.close();

  // Drained: nothing pending in the inbox, and every credit in `wallet_ledger` (the wallets projection applied
  // it, whether the batch appended it inline or the wallet-credits reactor did). Projections and reactors are fed
  // only the event types they handle, so their checkpoints need not reach the head of the log: not a test.
  const deadline = epoch() + spec.drainTimeoutMs;
  // The credits are counted only once the inbox has nothing pending, and whether anything is pending is asked, not
  // counted: counting the ledger every 20 ms of the drain's tail took PostgreSQL 10 ms a time, and counting the
  // unprocessed inbox rows (through their partial index) 3.9 ms a time while thousands were pending, 1.0 s of the
  // server's time in a 6,000-webhook burst that the drain itself needed (pg_stat_statements, `--statements`). The
  // first unprocessed row ends the `EXISTS`; the count is taken once, for the report, if the drain times out.
  while (epoch() < deadline) {
    // Named, as the sampler's: every 20 ms of the drain, planned once (unnamed, 64 ms of the server's planning a burst).
    const { rows } = await db.query<{ pending: boolean; credits: string | null; wallets: string | null }>({
      name: 'bench_drain_probe',
      text: `WITH inbox AS (SELECT EXISTS (SELECT 1 FROM pos_webhook_events_raw WHERE NOT processed) AS pending)
       SELECT inbox.pending,
              CASE WHEN NOT inbox.pending THEN (SELECT count(*) FROM wallet_ledger WHERE kind = 'earn') END AS credits,
              (SELECT position FROM projection_checkpoints WHERE name = 'wallets') AS wallets
         FROM inbox`,
    });
    const probe = rows[0]!;
    out.queries++;
    out.lastDrainProbe = probe;
    if (!probe.pending && Number(probe.credits) >= spec.creditsWhenDrained) {
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
  if (out.drainedEpoch === null) {
    const { rows } = await db.query<{ pending: string }>(`SELECT count(*) AS pending FROM pos_webhook_events_raw WHERE NOT processed`);
    out.queries++;
    out.lastDrainProbe = { ...out.lastDrainProbe, pending: Number(rows[0]!.pending) };
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
  // Warm-up, not recorded. First every caller once on each side, at the same concurrency: each token is verified
  // once and then served from the verified-token cache (http/auth.ts), as in a service whose callers come back, and
  // this new process's code and connections are warm before the first measured slice (always Tally's). Without it,
  // the slices below reached ten or so tokens per worker, about half of the 1,000 consumers' tokens were first seen
  // in the first run's first slice, and every run's ratio was lower (README, Reads).
  let warmupRequests = 0;
  for (const side of ['tally', 'bare'] as const) {
    let next = 0;
    const once = worker(side, 0);
    await Promise.all(
      Array.from({ length: spec.concurrency }, async () => {
        while (next++ < spec[side].headers.length) await once();
      }),
    );
    warmupRequests += spec[side].headers.length;
  }
  // Then alternating slices as the measured ones.
  const warm = await runInterleaved({ contenders: { tally: { workers: workers('tally') }, bare: { workers: workers('bare') } }, rounds: 1, sliceMs: 300 });
  warmupRequests += warm.tally.operations + warm.bare.operations;
  statuses.tally = {};
  statuses.bare = {};
  const result = await runInterleaved({
    contenders: { tally: { workers: workers('tally') }, bare: { workers: workers('bare') } },
    rounds: spec.rounds,
    sliceMs: spec.sliceMs,
  });
  return { result, statuses, warmupRequests };
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
