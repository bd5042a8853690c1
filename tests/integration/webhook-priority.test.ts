/**
 * Acknowledgements go first (adapters/workers/acknowledgements.ts): while webhooks are being acknowledged in the
 * process, the inbox worker leases nothing, and leases its whole backlog as soon as they are answered; a stream of
 * acknowledgements that never stops holds it back at most `ackPriorityMs` a batch, and it then leases quarter
 * batches. The worker runs on the real inbox (PostgreSQL); its handler settles every webhook as `ignored`.
 */
import test from 'ava';
import pino from 'pino';
import { v4 as uuid } from 'uuid';
import { webhookInbox } from '../../adapters/postgres/webhook-inbox.ts';
import { Acknowledgements } from '../../adapters/workers/acknowledgements.ts';
import { WebhookProcessor } from '../../adapters/workers/webhook-processor.ts';
import type { WebhookHandler, WebhookResult } from '../../domain/payments/webhook-handler.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

/** A worker whose handler records the size of every batch it is given and settles each webhook as ignored. */
function worker(acknowledgements: Acknowledgements, options: { ackPriorityMs: number; batchSize: number }) {
  const inbox = webhookInbox(database.pool);
  const batches: number[] = [];
  const settled = new Set<string>();
  const handler: WebhookHandler = {
    async handleBatch(webhooks, commit) {
      batches.push(webhooks.length);
      const results: WebhookResult[] = webhooks.map(() => ({ ok: true, tenantId: null, result: { outcome: 'ignored', position: undefined } }));
      await commit?.([], results);
      return results;
    },
  };
  const processor = new WebhookProcessor(inbox, handler, pino({ level: 'silent' }), async (_requests, settlements) => ({ position: undefined, settled: await inbox.completeMany(settlements) }), {
    ...options,
    batchesInFlight: 1,
    pollIntervalMs: 20,
    acknowledgements,
    onSettled: (eventId) => settled.add(eventId),
  });
  return { inbox, processor, batches, settled };
}

const store = async (inbox: ReturnType<typeof webhookInbox>, count: number) => {
  const ids = Array.from({ length: count }, () => `evt-${uuid()}`);
  await inbox.recordMany(ids.map((eventId) => ({ eventId, merchantId: 'M-1', eventType: 'payment.updated', objectId: null, rawBody: '{}', headers: {} })));
  return ids;
};
const attempts = async (ids: string[]) =>
  (await database.pool.query<{ attempts: number }>('SELECT attempts FROM pos_webhook_events_raw WHERE id = ANY($1)', [ids])).rows.map((r) => r.attempts);

test.serial('while a webhook is being acknowledged the worker leases nothing; once it is answered, the whole backlog in one batch', async (t) => {
  const acknowledgements = new Acknowledgements();
  acknowledgements.received();
  const { inbox, processor, batches, settled } = worker(acknowledgements, { ackPriorityMs: 60_000, batchSize: 64 });
  const ids = await store(inbox, 10);
  processor.start();
  try {
    t.is(await eventually(async () => acknowledgements.deferring, (n) => n === 1, { timeoutMs: 5_000, intervalMs: 5 }), 1, 'the worker waits for the acknowledgement');
    t.deepEqual(await attempts(ids), Array(10).fill(0), 'no row leased meanwhile');
    acknowledgements.answered();
    t.is(await eventually(async () => settled.size, (n) => n === 10, { timeoutMs: 5_000, intervalMs: 10 }), 10);
    t.deepEqual(batches, [10], 'the backlog went in one batch at full size');
  } finally {
    await processor.stop();
  }
});

test.serial('acknowledgements that never stop hold the worker back a bounded time: it leases quarter batches and drains', async (t) => {
  const acknowledgements = new Acknowledgements();
  acknowledgements.received(); // never answered: acknowledgements pending throughout
  const { inbox, processor, batches, settled } = worker(acknowledgements, { ackPriorityMs: 20, batchSize: 8 });
  await store(inbox, 10);
  processor.start();
  try {
    t.is(await eventually(async () => settled.size, (n) => n === 10, { timeoutMs: 10_000, intervalMs: 10 }), 10, 'every webhook processed');
    t.true(batches.every((size) => size <= 2), `batches of at most a quarter of 8, got ${batches.join(', ')}`);
  } finally {
    await processor.stop();
  }
});

test('waiting for no acknowledgement: true once the last is answered, false at the bound with some still pending', async (t) => {
  const acknowledgements = new Acknowledgements();
  t.true(await acknowledgements.whenNone(1_000), 'none pending: at once');
  acknowledgements.received();
  acknowledgements.received();
  const waited = acknowledgements.whenNone(60_000);
  acknowledgements.answered();
  t.is(acknowledgements.count, 1);
  acknowledgements.answered();
  t.true(await waited);
  acknowledgements.received();
  t.false(await acknowledgements.whenNone(10), 'still one pending after the bound');
  t.is(acknowledgements.deferring, 0, 'no waiter left behind');
});
