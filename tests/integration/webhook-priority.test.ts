/**
 * Acknowledgements go first when they queue (adapters/workers/acknowledgements.ts): while at least `queueing` webhooks
 * are being acknowledged at once in the process, and until they have stayed fewer for `quietMs`, the inbox worker
 * leases nothing, and it leases its whole backlog once they stop queueing; a few pending at a time (a steady rate)
 * never hold it back; acknowledgements that keep queueing hold it back at most `ackPriorityMs` a batch, and it then
 * leases quarter batches. The worker runs on the real inbox (PostgreSQL); its handler settles every webhook as `ignored`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import pino from 'pino';
import { v4 as uuid } from 'uuid';
import { webhookInbox } from '../../adapters/postgres/webhook-inbox.ts';
import { Acknowledgements, RemoteAcknowledgements } from '../../adapters/workers/acknowledgements.ts';
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

test.serial('while acknowledgements queue the worker leases nothing; once they stop, the whole backlog in one batch', async (t) => {
  const acknowledgements = new Acknowledgements({ queueing: 3, quietMs: 200 });
  for (let i = 0; i < 3; i++) acknowledgements.received();
  const { inbox, processor, batches, settled } = worker(acknowledgements, { ackPriorityMs: 60_000, batchSize: 64 });
  const ids = await store(inbox, 10);
  processor.start();
  try {
    t.is(await eventually(async () => acknowledgements.deferring, (n) => n === 1, { timeoutMs: 5_000, intervalMs: 5 }), 1, 'the worker waits for the acknowledgements');
    // A dip below the threshold shorter than `quietMs` (answers written together, the next requests arriving) does not
    // end the burst, not even once `quietMs` has passed since the dip began.
    acknowledgements.answered();
    await sleep(50);
    acknowledgements.received();
    await sleep(300);
    t.is(acknowledgements.deferring, 1, 'the worker still waits');
    t.deepEqual(await attempts(ids), Array(10).fill(0), 'no row leased meanwhile');
    for (let i = 0; i < 3; i++) acknowledgements.answered();
    t.is(await eventually(async () => settled.size, (n) => n === 10, { timeoutMs: 5_000, intervalMs: 10 }), 10);
    t.deepEqual(batches, [10], 'the backlog went in one batch at full size');
  } finally {
    await processor.stop();
  }
});

test.serial('a few acknowledgements pending at a time (below the threshold) never hold the worker back', async (t) => {
  const acknowledgements = new Acknowledgements({ queueing: 3, quietMs: 60_000 });
  acknowledgements.received();
  acknowledgements.received(); // two pending throughout, never answered: fewer than three
  const { inbox, processor, batches, settled } = worker(acknowledgements, { ackPriorityMs: 60_000, batchSize: 64 });
  await store(inbox, 10);
  processor.start();
  try {
    t.is(await eventually(async () => settled.size, (n) => n === 10, { timeoutMs: 5_000, intervalMs: 10 }), 10, 'every webhook processed without waiting');
    t.deepEqual(batches, [10]);
    t.is(acknowledgements.deferring, 0);
  } finally {
    await processor.stop();
  }
});

test.serial('acknowledgements that never stop queueing hold the worker back a bounded time: it leases quarter batches and drains', async (t) => {
  const acknowledgements = new Acknowledgements({ queueing: 1 });
  acknowledgements.received(); // never answered: queueing throughout
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

test('waiting for the queue to end: at once when none queue; true once they stayed below the threshold for quietMs; false at the bound while they queue', async (t) => {
  let clock = 1_000;
  const acknowledgements = new Acknowledgements({ queueing: 2, quietMs: 15, now: () => clock });
  t.false(acknowledgements.queueing(), 'nothing received: not queueing');
  t.true(await acknowledgements.whenQuiet(1_000), 'not queueing: at once');
  acknowledgements.received();
  t.false(acknowledgements.queueing(), 'one pending, below the threshold of two');
  acknowledgements.received();
  t.true(acknowledgements.queueing(), 'two pending');
  const waited = acknowledgements.whenQuiet(60_000);
  acknowledgements.answered();
  t.true(acknowledgements.queueing(), 'just fell below: still queueing until quietMs has passed');
  clock += 15;
  t.false(acknowledgements.queueing(), 'below the threshold for quietMs');
  t.true(await waited, 'the waiting worker is released');
  t.is(acknowledgements.deferring, 0, 'no waiter left behind');
  acknowledgements.received();
  t.true(acknowledgements.queueing(), 'back at the threshold');
  t.false(await acknowledgements.whenQuiet(10), 'still queueing at the bound');
  t.is(acknowledgements.deferring, 0, 'no waiter left behind');
});

test('a pause of the sender within a burst lengthens the quiet the burst must keep: twice the pause, for pauseMemoryMs, never past maxQuietMs', async (t) => {
  let clock = 1_000;
  const acknowledgements = new Acknowledgements({ queueing: 2, quietMs: 15, maxQuietMs: 100, pauseMemoryMs: 500, now: () => clock, busySinceLastCall: () => 0 });
  const burst = () => {
    acknowledgements.received();
    acknowledgements.received();
    t.true(acknowledgements.queueing(), 'two pending: queueing');
    acknowledgements.answered();
    acknowledgements.answered();
  };
  burst();
  t.is(acknowledgements.quietFor(), 15, 'no pause seen yet: quietMs');
  clock += 40; // the sender pauses for 40 ms: with no pause seen before, the burst looks over after 15
  t.false(acknowledgements.queueing(), 'the first pause still ends the burst');
  burst(); // its next requests arrive 40 ms after the last
  t.is(acknowledgements.quietFor(), 80, 'twice the pause');
  clock += 40;
  t.true(acknowledgements.queueing(), 'a second pause as long no longer ends it');
  clock += 40;
  t.false(acknowledgements.queueing(), 'quiet for 80 ms: over');
  clock += 400; // 480 ms after the pause: remembered
  t.is(acknowledgements.quietFor(), 80);
  clock += 30; // 510 ms after it: forgotten
  t.is(acknowledgements.quietFor(), 15, 'after pauseMemoryMs, quietMs again');
  burst();
  clock += 100;
  burst(); // a pause as long as maxQuietMs is the end of a burst, not a pause within it
  t.is(acknowledgements.quietFor(), 15, 'a pause of maxQuietMs or more is not remembered');
  clock += 90;
  burst();
  t.is(acknowledgements.quietFor(), 100, 'twice a 90 ms pause, capped at maxQuietMs');
  clock += 1_000;
  acknowledgements.received(); // one pending, below the threshold: not queueing
  clock += 50;
  acknowledgements.received();
  t.is(acknowledgements.quietFor(), 15, 'a pause that began while they did not queue is not a pause within a burst');
});

test("a gap between arrivals while this thread was busy is not the sender's pause: the quiet a burst must keep stays", async (t) => {
  let clock = 1_000;
  let busy = 0;
  const acknowledgements = new Acknowledgements({ queueing: 2, quietMs: 15, maxQuietMs: 100, pauseMemoryMs: 500, now: () => clock, busySinceLastCall: () => busy });
  const burst = () => {
    acknowledgements.received();
    acknowledgements.received();
    acknowledgements.answered();
    acknowledgements.answered();
  };
  burst();
  clock += 40;
  busy = 0.9; // the thread decided a batch meanwhile: the next requests waited in their sockets
  burst();
  busy = 0;
  t.is(acknowledgements.quietFor(), 15, 'the gap was the thread, not the sender: quietMs');
  clock += 40;
  busy = 0.2; // the thread mostly idle: the sender paused
  burst();
  busy = 0;
  t.is(acknowledgements.quietFor(), 80, 'a pause of the sender: twice it');
});

test('a worker on another thread follows the acknowledgements by message: told once when they start and once when they stop queueing', async (t) => {
  const acknowledgements = new Acknowledgements({ queueing: 2, quietMs: 5 });
  const told: boolean[] = [];
  const remote = new RemoteAcknowledgements();
  const unfollow = acknowledgements.onChange((queueing) => {
    told.push(queueing);
    remote.set(queueing); // what the thread's message handler does
  });
  t.false(remote.queueing());
  t.true(await remote.whenQuiet(1_000), 'not queueing: at once');
  acknowledgements.received();
  t.deepEqual(told, [], 'one pending: not queueing, nothing said');
  acknowledgements.received();
  acknowledgements.received();
  t.deepEqual(told, [true], 'said once when they started queueing');
  t.true(remote.queueing());
  const waited = remote.whenQuiet(60_000);
  for (let i = 0; i < 3; i++) acknowledgements.answered();
  t.true(await waited, 'released once they stayed below the threshold for quietMs');
  t.deepEqual(told, [true, false]);
  t.false(await (acknowledgements.received(), acknowledgements.received(), remote.whenQuiet(10)), 'queueing again: not quiet at the bound');
  t.deepEqual(told, [true, false, true]);
  unfollow();
  acknowledgements.answered();
  acknowledgements.answered();
  await acknowledgements.whenQuiet(1_000);
  t.deepEqual(told, [true, false, true], 'no longer told once unfollowed');
});
