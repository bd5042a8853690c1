/**
 * The webhook worker on a thread of its own (`WEBHOOK_WORKER_THREAD`, off by default: README says why): the service's thread answers
 * requests (acknowledging a webhook is a signature, one insert and a 200) while the worker thread leases, decides
 * and commits batches on the other core. Neither waits behind the other on one event loop.
 *
 * The worker thread is a second, smaller composition (`webhook-thread-entry.ts`): its own pool, event store,
 * in-memory ingestion state, Square clients and caches, built by the same `provide…` functions as the service's,
 * exactly as a second instance of the service would hold them. It reports back by messages: outcomes and appends
 * (the service's metrics), settlements (the simulator's `trigger`), customers named by webhooks (the poll's cache),
 * log lines (the service's logger). The service wakes it when a webhook is stored, and stops it on shutdown.
 *
 * A worker thread that fails is started again after a second; the inbox keeps every webhook meanwhile (a batch it
 * had leased is leased again when its lease runs out).
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { CustomerOfMerchant } from '../domain/payments/customer-cache.ts';
import type { Config } from '../adapters/config.ts';

const settlement = z.union([z.object({ outcome: z.string() }), z.object({ error: z.string() })]);
export type Settlement = z.infer<typeof settlement>;

/** What the webhook worker reports, wherever it runs (the worker thread forwards it to the service's metrics). */
export interface WebhookWorkerReports {
  outcome(outcome: string): void;
  appended(stream: string, events: number): void;
  settled(eventId: string, settlement: Settlement): void;
  /** A customer webhook named this customer: a cache of its contacts on another thread drops it too. */
  customerChanged(tenantId: string, customerId: string): void;
  /** A concurrency conflict met by one of the worker's appends (the worker thread's store reports it). */
  conflict(stream: string): void;
  /** Leases of a dead worker the worker took back (webhook-processor.ts). */
  leasesTakenBack(count: number): void;
}

/** What the service hands the worker thread: everything it needs to build itself, all plain data. */
export interface WebhookThreadData {
  /** The Square configuration in use (the simulator's in development), with the service's generated secrets. */
  config: Config;
  env: Record<string, string | undefined>;
  databaseUrl: string;
}

/** Messages from the worker thread; checked on arrival like any input. */
const report = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ready') }),
  z.object({ kind: z.literal('failed'), message: z.string() }),
  z.object({ kind: z.literal('stopped') }),
  z.object({ kind: z.literal('log'), line: z.string() }),
  z.object({ kind: z.literal('outcome'), outcome: z.string() }),
  z.object({ kind: z.literal('appended'), stream: z.string(), events: z.number() }),
  z.object({ kind: z.literal('settled'), eventId: z.string(), settlement }),
  z.object({ kind: z.literal('conflict'), stream: z.string() }),
  z.object({ kind: z.literal('leases-taken-back'), count: z.number().int().positive() }),
  z.object({ kind: z.literal('customer-changed'), tenantId: z.string(), customerId: z.string() }),
]);
/** Reports come in one message per turn of the thread's event loop (`reports`): a message costs more than its content. */
export const threadMessage = z.union([report, z.object({ kind: z.literal('reports'), messages: z.array(report) })]);
export type ThreadMessage = z.infer<typeof report>;
export type ThreadMessages = z.infer<typeof threadMessage>;

/** Messages to the worker thread. */
export type ServiceMessage =
  | { kind: 'wake' }
  | { kind: 'stop' }
  | { kind: 'look-ahead'; customers: CustomerOfMerchant[] }
  | { kind: 'acknowledgements'; queueing: boolean };

const RESTART_MS = 1000;
/** Bounds a stop: a batch waiting on Square may take SQUARE_TIMEOUT_SECONDS; the thread is ended after this. */
const STOP_GRACE_MS = 60_000;

/** The worker thread's composition root beside this module: `.ts` from source, `.js` in the production build. */
function defaultEntry(): URL {
  const here = new URL(import.meta.url);
  return new URL(`./webhook-thread-entry${here.pathname.endsWith('.ts') ? '.ts' : '.js'}`, here);
}

/**
 * Starts `entry` on a worker thread; a `.ts` module through tsx's loader, registered in the thread first (Node 20
 * does not apply a `--import` loader to a worker thread's entry module).
 */
function newWorker(entry: URL, data: WebhookThreadData): Worker {
  const options = { workerData: data, name: 'tally-webhooks' };
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/** A log line of the worker thread, written again by the service's logger at its level. */
function relog(log: Logger, line: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    log.warn({ line }, 'webhook worker thread: unreadable log line');
    return;
  }
  if (typeof parsed !== 'object' || parsed === null) return;
  const { level, msg, time: _time, pid: _pid, hostname: _hostname, ...fields } = parsed as Record<string, unknown>;
  // The level as a label (the service's format) or pino's number.
  const label = typeof level === 'number' ? log.levels.labels[level] : typeof level === 'string' && level in log.levels.values ? level : undefined;
  const write = label && label in log ? (log as unknown as Record<string, (o: object, m?: string) => void>)[label] : undefined;
  (write ?? log.info).call(log, fields, typeof msg === 'string' ? msg : undefined);
}

export interface WebhookThread {
  wake(): void;
  /** Square customers of webhooks just stored, for the thread's cache (`lookAhead` of the ingestion core). */
  lookAhead(customers: readonly CustomerOfMerchant[]): void;
  /** The service's acknowledgements started (true) or stopped (false) queueing: the thread's worker defers to them. */
  acknowledgements(queueing: boolean): void;
  stop(): Promise<void>;
}

/**
 * Starts the worker thread and resolves once it is ready (or rejects with why it could not start).
 * Over 80 lines because it is the thread's whole lifecycle around one shared state (the current thread, stopping or
 * not): spawning, reading its messages, starting it again, waking it, stopping it.
 */
export async function startWebhookThread(options: {
  config: Config;
  env: NodeJS.ProcessEnv;
  databaseUrl: string;
  log: Logger;
  reports: WebhookWorkerReports;
  /** The module the thread runs (default: the worker's composition root; tests give a module of their own). */
  entry?: URL;
  /** How long after an unexpected end the thread is started again (ms). */
  restartMs?: number;
}): Promise<WebhookThread> {
  const { log, reports } = options;
  const threadLog = log.child({ thread: 'webhooks' });
  const data: WebhookThreadData = { config: options.config, env: { ...options.env }, databaseUrl: options.databaseUrl };
  let worker: Worker | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopped: (() => void) | undefined;
  /** What the thread was last told of the acknowledgements: a thread started again is told it when ready. */
  let acknowledgementsQueueing = false;

  const receive = (raw: unknown, ready: (error?: Error) => void) => {
    const parsed = threadMessage.safeParse(raw);
    if (!parsed.success) {
      threadLog.warn({ issues: parsed.error.issues.slice(0, 3) }, 'webhook worker thread: unexpected message');
      return;
    }
    if (parsed.data.kind === 'reports') for (const message of parsed.data.messages) handle(message, ready);
    else handle(parsed.data, ready);
  };
  const handle = (message: ThreadMessage, ready: (error?: Error) => void) => {
    switch (message.kind) {
      case 'ready':
        return ready();
      case 'failed':
        return ready(new Error(`the webhook worker thread could not start: ${message.message}`));
      case 'stopped':
        return stopped?.();
      case 'log':
        return relog(threadLog, message.line);
      case 'outcome':
        return reports.outcome(message.outcome);
      case 'appended':
        return reports.appended(message.stream, message.events);
      case 'settled':
        return reports.settled(message.eventId, message.settlement);
      case 'conflict':
        return reports.conflict(message.stream);
      case 'leases-taken-back':
        return reports.leasesTakenBack(message.count);
      case 'customer-changed':
        return reports.customerChanged(message.tenantId, message.customerId);
    }
  };

  const spawn = () =>
    new Promise<void>((resolve, reject) => {
      let started = false;
      const ready = (error?: Error) => {
        if (started) return;
        started = true;
        if (error) return reject(error);
        if (acknowledgementsQueueing) current.postMessage({ kind: 'acknowledgements', queueing: true } satisfies ServiceMessage);
        resolve();
      };
      const current = newWorker(options.entry ?? defaultEntry(), data);
      worker = current;
      current.on('message', (raw) => receive(raw, ready));
      current.on('error', (error) => {
        threadLog.error({ err: error }, 'webhook worker thread failed');
        ready(error);
      });
      current.on('exit', (code) => {
        if (worker === current) worker = undefined;
        stopped?.();
        if (!started) return ready(new Error(`the webhook worker thread exited with code ${code} before it was ready`));
        if (stopping) return;
        const restartMs = options.restartMs ?? RESTART_MS;
        threadLog.error({ code }, `webhook worker thread ended; starting it again in ${restartMs} ms (the inbox keeps every webhook)`);
        restartTimer = setTimeout(() => {
          spawn().catch((error: unknown) => threadLog.error({ err: error }, 'webhook worker thread could not start again'));
        }, restartMs);
      });
    });

  await spawn();
  // Webhooks stored in one turn of the event loop wake the thread once.
  let wakeQueued = false;
  return {
    wake() {
      if (wakeQueued) return;
      wakeQueued = true;
      setImmediate(() => {
        wakeQueued = false;
        worker?.postMessage({ kind: 'wake' } satisfies ServiceMessage);
      });
    },
    lookAhead(customers) {
      worker?.postMessage({ kind: 'look-ahead', customers: [...customers] } satisfies ServiceMessage);
    },
    acknowledgements(queueing) {
      acknowledgementsQueueing = queueing;
      worker?.postMessage({ kind: 'acknowledgements', queueing } satisfies ServiceMessage);
    },
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      const current = worker;
      if (!current) return;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      current.postMessage({ kind: 'stop' } satisfies ServiceMessage);
      const timer = setTimeout(() => void current.terminate(), STOP_GRACE_MS);
      await done;
      clearTimeout(timer);
      await current.terminate();
    },
  };
}
