/**
 * The webhook worker thread's composition root (see webhook-thread.ts): built from the same `provide…` functions as
 * the service, on the configuration the service resolved and handed over. Reports go to the service by message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Writable } from 'node:stream';
import { secretValues } from '../adapters/config.ts';
import { createLogger } from '../adapters/logger.ts';
import { createIdentityHasher } from '../adapters/identity/hasher.ts';
import { provideInfrastructure, providePool } from './infrastructure.ts';
import { Cleanups } from './lifecycle.ts';
import { squareConnections } from './connections.ts';
import { provideIngestionCore, provideWebhookProcessor } from './ingestion.ts';
import type { ServiceMessage, ThreadMessage, ThreadMessages, WebhookThreadData, WebhookWorkerReports } from './webhook-thread.ts';
import { RemoteAcknowledgements } from '../adapters/workers/acknowledgements.ts';

const port = parentPort;
if (!port) throw new Error('webhook-thread-entry.ts runs as a worker thread of the service (wiring/webhook-thread.ts)');
/** Reports of one turn of the event loop go in one message; lifecycle messages go at once, after them. */
let queued: ThreadMessage[] = [];
const flush = () => {
  if (!queued.length) return;
  port.postMessage({ kind: 'reports', messages: queued } satisfies ThreadMessages);
  queued = [];
};
const post = (message: ThreadMessage) => {
  if (queued.push(message) === 1) setImmediate(flush);
};
const postNow = (message: ThreadMessage) => {
  flush();
  port.postMessage(message);
};

async function start(data: WebhookThreadData): Promise<void> {
  const { config, databaseUrl } = data;
  const env: NodeJS.ProcessEnv = { ...data.env };
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line) post({ kind: 'log', line });
      callback();
    },
  });
  const log = createLogger({ level: config.LOG_LEVEL, secrets: secretValues(config), destination });
  const cleanups = new Cleanups();
  try {
    // Batches in flight, each with a read or its commit, and the ingestion state's reads beside them.
    const pool = providePool(databaseUrl, Math.min(config.DATABASE_POOL_SIZE, config.WEBHOOK_BATCHES_IN_FLIGHT * 2 + 4), log, cleanups);
    const reports: WebhookWorkerReports = {
      outcome: (outcome) => post({ kind: 'outcome', outcome }),
      appended: (stream, events) => post({ kind: 'appended', stream, events }),
      settled: (eventId, settlement) => post({ kind: 'settled', eventId, settlement }),
      customerChanged: (tenantId, customerId) => post({ kind: 'customer-changed', tenantId, customerId }),
      conflict: (stream) => post({ kind: 'conflict', stream }),
      leasesTakenBack: (count) => post({ kind: 'leases-taken-back', count }),
    };
    const infrastructure = await provideInfrastructure(
      { config, env, log, databaseUrl, pool, metrics: { appended: reports.appended, concurrencyConflict: reports.conflict } },
      cleanups,
    );
    const hasher = createIdentityHasher(config.IDENTITY_HASH_KEY);
    const { connections } = squareConnections(infrastructure, config);
    const core = await provideIngestionCore(infrastructure, { hasher, connections });
    // The service's acknowledgements, as it reports them: the worker defers to them while they queue, as it would inline.
    const acknowledgements = new RemoteAcknowledgements();
    const processor = provideWebhookProcessor(infrastructure, core, { hasher, connections, reports, acknowledgements });
    processor.start();
    cleanups.add(() => processor.stop());
    port!.on('message', (message: ServiceMessage) => {
      if (message.kind === 'wake') processor.wake();
      else if (message.kind === 'look-ahead') core.lookAhead(message.customers);
      else if (message.kind === 'acknowledgements') acknowledgements.set(message.queueing);
      else if (message.kind === 'stop') {
        void cleanups
          .run((error) => log.warn({ err: error }, 'error while stopping the webhook worker thread'))
          .finally(() => {
            postNow({ kind: 'stopped' });
            port!.close();
          });
      }
    });
    postNow({ kind: 'ready' });
  } catch (error) {
    await cleanups.run();
    postNow({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
  }
}

void start(workerData as WebhookThreadData);
