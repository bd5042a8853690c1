/**
 * The webhook inbox: group commit of the acknowledgements (webhooks arriving together stored by one statement,
 * each answered once its row is committed), and its lease: a worker whose lease ran out while it worked (a slow Square call) may answer after
 * another worker claimed the row again. Its late answer must not undo the newer attempt's outcome. A lease names its
 * holder (lease-holder.ts): the leases of a dead worker are taken back at once, a live worker's never.
 */
import test from 'ava';
import pg from 'pg';
import { v4 as uuid } from 'uuid';
import { pino } from 'pino';
import { claimDueStatement, groupedRecorder, InboxBusy, webhookInbox, type InboxEntry } from '../../adapters/postgres/webhook-inbox.ts';
import { LEASE_LOCK_CLASS, LeaseHolder } from '../../adapters/postgres/lease-holder.ts';
import { WebhookProcessor } from '../../adapters/workers/webhook-processor.ts';
import type { WebhookResult } from '../../domain/payments/webhook-handler.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually, until } from '../support/eventually.ts';
import { watchedPool } from '../support/watched-pool.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

const entry = (eventId: string) => ({ eventId, merchantId: 'M-1', eventType: 'payment.updated', objectId: `pay-${eventId}`, rawBody: '{}', headers: {} });
const row = async (eventId: string) =>
  (await database.pool.query('SELECT processed, outcome, attempts, error FROM pos_webhook_events_raw WHERE id = $1', [eventId])).rows[0];

/** Marks rows processed, so that the serial tests after this one, whose claims take every due row, never meet them. */
const settle = (ids: string[]) => database.pool.query('UPDATE pos_webhook_events_raw SET processed = true, locked_until = NULL WHERE id = ANY($1)', [ids]);

/** Claims until this event is among the claimed rows, with a lease of `leaseMs`. Serial tests: a claim takes every due row. */
async function claim(inbox: ReturnType<typeof webhookInbox>, eventId: string, leaseMs: number) {
  const mine = await eventually(async () => (await inbox.claimDue(100, leaseMs)).find((r) => r.event_id === eventId), Boolean, { timeoutMs: 2_000, intervalMs: 20 });
  if (!mine) throw new Error(`${eventId} was never claimed`);
  return mine;
}

test.serial('a late answer from an expired lease changes nothing: the newer attempt settles the webhook', async (t) => {
  const inbox = webhookInbox(database.pool);
  const eventId = `evt-${uuid()}`;
  await inbox.record(entry(eventId));
  const first = await claim(inbox, eventId, 1); // a lease that runs out at once: claimed again as soon as it has
  const second = await claim(inbox, eventId, 30_000);
  t.is(second.attempts, first.attempts + 1);

  t.true(await inbox.complete(eventId, second.attempts, { tenantId: 't-1', outcome: 'credited' }));
  t.false(await inbox.fail(eventId, first.attempts, { tenantId: null, error: 'TIMEOUT: Square did not answer', retryAt: new Date() }), 'the stale failure is refused');
  t.false(await inbox.complete(eventId, first.attempts, { tenantId: 't-1', outcome: 'duplicate' }), 'so is a stale success');
  t.like(await row(eventId), { processed: true, outcome: 'credited', error: null });
});

test.serial('the attempt that holds the lease records its failure, and the webhook is due again at its retry time', async (t) => {
  const inbox = webhookInbox(database.pool);
  const eventId = `evt-${uuid()}`;
  await inbox.record(entry(eventId));
  const claimed = await claim(inbox, eventId, 30_000);
  t.true(await inbox.fail(eventId, claimed.attempts, { tenantId: null, error: 'NETWORK: connection reset', retryAt: new Date(Date.now() - 1000) }));
  t.like(await row(eventId), { processed: false, outcome: 'failed', error: 'NETWORK: connection reset' });
  const again = await claim(inbox, eventId, 30_000);
  t.is(again.attempts, claimed.attempts + 1);
});

test.serial("a dead worker's leases are taken back at once; a live worker's, and a lease without a holder, run their time", async (t) => {
  const inbox = webhookInbox(database.pool);
  const silent = pino({ level: 'silent' });
  const live = new LeaseHolder(database.url, silent);
  const dying = new LeaseHolder(database.url, silent, 60_000); // it does not take a new lock within this test
  await Promise.all([live.start(), dying.start()]);
  const dyingKey = dying.key;
  t.true(typeof live.key === 'number' && typeof dyingKey === 'number' && live.key !== dyingKey);
  const leased = async (holder: number | null) => {
    const eventId = `evt-${uuid()}`;
    await inbox.record(entry(eventId));
    const mine = await eventually(async () => (await inbox.claimDue(100, 60_000, holder)).find((r) => r.event_id === eventId), Boolean, { timeoutMs: 2_000, intervalMs: 20 });
    if (!mine) throw new Error(`${eventId} was never claimed`);
    return eventId;
  };
  const [ofLive, ofDying, ofNobody] = [await leased(live.key), await leased(dyingKey), await leased(null)];
  try {
    t.is(await inbox.releaseDeadLeases(), 0, 'every holder is alive; a lease without one is not touched');
    // The dying worker's connection goes away, as when its process is killed: PostgreSQL drops its lock.
    await database.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2`,
      [LEASE_LOCK_CLASS, dyingKey],
    );
    t.is(await eventually(() => inbox.releaseDeadLeases(), (n) => n > 0, { timeoutMs: 5_000, intervalMs: 20 }), 1);
    // The holder hears of it when its socket closes, which may come after the server has already dropped the lock.
    t.is(await eventually(async () => dying.key, (key) => key === null, { timeoutMs: 5_000, intervalMs: 20 }), null, 'the holder knows it lost its lock');
    const due = await inbox.claimDue(100, 60_000, live.key);
    t.deepEqual(due.map((r) => [r.event_id, r.attempts]), [[ofDying, 2]], "only the dead worker's webhook is due again, at once");
    t.false(due.some((r) => r.event_id === ofLive || r.event_id === ofNobody));
  } finally {
    await Promise.all([live.stop(), dying.stop()]);
  }
  // A worker that stops ends its lock: what it still held is taken back too (here: the webhook just claimed again).
  t.is(await inbox.releaseDeadLeases(), 2);
  await settle([ofLive, ofDying, ofNobody]);
});

test.serial("a worker started after a crash processes the dead worker's webhooks at once, and leaves a live worker's alone", async (t) => {
  const inbox = webhookInbox(database.pool);
  const silent = pino({ level: 'silent' });
  const other = new LeaseHolder(database.url, silent); // another instance, alive and busy with its webhook
  await other.start();
  const [ofDead, ofOther] = [`evt-${uuid()}`, `evt-${uuid()}`];
  await inbox.recordMany([entry(ofDead), entry(ofOther)]);
  // As the killed process left them: leased for a minute, one under a key whose lock is gone, one under a live key.
  const lease = `UPDATE pos_webhook_events_raw SET attempts = 1, locked_until = now() + interval '60 seconds', locked_by = $2 WHERE id = $1`;
  await database.pool.query(lease, [ofDead, 12345]);
  await database.pool.query(lease, [ofOther, other.key]);
  const settled: string[] = [];
  const takenBack: number[] = [];
  const processor = new WebhookProcessor(
    inbox,
    {
      async handleBatch(webhooks, commit) {
        const results: WebhookResult[] = webhooks.map(() => ({ ok: true, tenantId: null, result: { outcome: 'ignored', position: undefined } }));
        await commit?.([], results);
        return results;
      },
    },
    silent,
    async (_requests, settlements) => ({ position: undefined, settled: await inbox.completeMany(settlements) }),
    { pollIntervalMs: 20, leaseHolder: new LeaseHolder(database.url, silent), onSettled: (eventId) => settled.push(eventId), onLeasesTakenBack: (n) => takenBack.push(n) },
  );
  processor.start();
  try {
    await until(async () => settled.includes(ofDead), Boolean, { timeoutMs: 5_000, intervalMs: 10 });
    t.like(await row(ofDead), { processed: true, outcome: 'ignored', attempts: 2 }, 'taken back at the start, not after the minute');
    t.like(await row(ofOther), { processed: false, attempts: 1 }, "the live instance's lease stands");
    t.deepEqual(takenBack, [1], 'counted for /metrics');
  } finally {
    await processor.stop();
    await other.stop();
  }
  t.false(settled.includes(ofOther));
  await settle([ofOther]);
});

test.serial("the lock's connection outlives a server's idle_session_timeout: it is pinged", async (t) => {
  // The holder's own connection ends after 1.5 s idle, as a server configured so would end it; pinged every 100 ms.
  const url = new URL(database.url);
  url.searchParams.set('options', '-c idle_session_timeout=1500');
  const pinged = new LeaseHolder(url.toString(), pino({ level: 'silent' }), 20, 100);
  await pinged.start();
  const key = pinged.key;
  // A connection with the same timeout, opened after the holder's and never used: once the server has ended it,
  // the holder's has been open longer than the timeout.
  const idle = new pg.Client({ connectionString: url.toString() });
  const ended = new Promise<void>((resolve) => {
    idle.on('error', () => resolve());
    idle.on('end', () => resolve());
  });
  await idle.connect();
  try {
    await ended;
    t.is(pinged.key, key, 'the same lock, all along');
    const held = await database.pool.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted`, [LEASE_LOCK_CLASS, key]);
    t.is(held.rows[0].n, 1);
  } finally {
    await pinged.stop();
    await idle.end().catch(() => undefined);
  }
});

test.serial('a worker whose lock connection is lost while it lives takes a new lock under a new key once PostgreSQL answers', async (t) => {
  const holder = new LeaseHolder(database.url, pino({ level: 'silent' }), 20);
  await holder.start();
  const first = holder.key;
  t.truthy(first);
  try {
    await database.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2`, [LEASE_LOCK_CLASS, first]);
    const next = await eventually(async () => holder.key, (key) => key !== null && key !== first, { timeoutMs: 5_000, intervalMs: 10 });
    t.true(next !== null && next !== first, 'a new key: the leases under the old one count as dead');
    const held = await database.pool.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted`, [LEASE_LOCK_CLASS, next]);
    t.is(held.rows[0].n, 1, 'and PostgreSQL holds its lock');
  } finally {
    await holder.stop();
  }
  t.is(holder.key, null);
});

/** The inbox with its statements counted: `record` (one row) and `recordMany` (several). */
function countedInbox() {
  const inbox = webhookInbox(database.pool);
  const statements: number[] = [];
  return {
    statements,
    inbox: {
      record: async (e: InboxEntry) => (statements.push(1), inbox.record(e)),
      recordMany: async (es: readonly InboxEntry[]) => (statements.push(es.length), inbox.recordMany(es)),
    },
  };
}
const deliveries = async (eventIds: string[]) =>
  Object.fromEntries(
    (await database.pool.query<{ event_id: string; deliveries: number }>('SELECT id AS event_id, deliveries FROM pos_webhook_events_raw WHERE id = ANY($1)', [eventIds])).rows.map((r) => [
      r.event_id,
      r.deliveries,
    ]),
  );

test.serial('webhooks arriving together are stored by one statement each batch; a repeated event id is counted as a delivery, not stored twice', async (t) => {
  const { inbox, statements } = countedInbox();
  const recorder = groupedRecorder(inbox, { maxBatch: 64, maxInFlight: 1 });
  const ids = Array.from({ length: 20 }, () => `evt-${uuid()}`);
  // 20 webhooks at once, two of them delivered twice (Square retrying while the first delivery was in flight),
  // and one already stored before.
  await recorder.record(entry(ids[19]!));
  const sent = [...ids, ids[3]!, ids[7]!];
  const answers = await Promise.all(sent.map((id) => recorder.record(entry(id))));

  t.deepEqual(
    answers.map((a) => a.inserted),
    sent.map((id, i) => i < 19 && id !== ids[19]),
    'each answered for its own row: inserted the first time an id is seen, a duplicate after',
  );
  const stored = await deliveries(ids);
  t.is(Object.keys(stored).length, 20);
  t.like(stored, { [ids[3]!]: 2, [ids[7]!]: 2, [ids[19]!]: 2, [ids[0]!]: 1 });
  // The first webhook (alone, an insert was free) went first; the other 21 waited for it and went together,
  // less the repeated ids, which went in the statement after.
  t.deepEqual(statements, [1, 1, 19, 2]);
});

test.serial('a webhook the database refuses fails alone: the others of its statement are stored and answered', async (t) => {
  const { inbox, statements } = countedInbox();
  const recorder = groupedRecorder(inbox, { maxBatch: 64, maxInFlight: 1 });
  const ids = Array.from({ length: 6 }, () => `evt-${uuid()}`);
  const blocker = recorder.record(entry(`evt-${uuid()}`));
  // PostgreSQL text cannot hold NUL: the statement holding this one fails, and is retried one webhook at a time.
  const results = await Promise.allSettled(ids.map((id, i) => recorder.record(i === 2 ? { ...entry(id), rawBody: 'bad \u0000 body' } : entry(id))));
  await blocker;
  t.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
  );
  t.deepEqual(Object.keys(await deliveries(ids)).sort(), ids.filter((_, i) => i !== 2).sort());
  t.deepEqual(statements, [1, 6, 1, 1, 1, 1, 1, 1]);
});

test.serial('inserts blocked (the inbox locked): nothing waits unanswered: a statement times out, what waits is refused after the wait limit, what exceeds the cap at once; then all goes on', async (t) => {
  // The acknowledgement pool's statements are bounded, as main.ts sets them.
  const ackPool = new pg.Pool({ connectionString: database.url, max: 1, options: '-c statement_timeout=400' });
  ackPool.on('error', () => undefined); // a backend still closing when the test database is dropped
  t.teardown(() => ackPool.end());
  const recorder = groupedRecorder(webhookInbox(ackPool), { maxBatch: 64, maxInFlight: 1, maxWaiting: 3, waitLimitMs: 200 });
  const holder = await database.pool.connect();
  t.teardown(() => holder.release());
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE pos_webhook_events_raw IN EXCLUSIVE MODE');
  const sent = Array.from({ length: 6 }, () => recorder.record(entry(`evt-${uuid()}`)));
  // The first is in its statement; three wait; two more are past the cap. All four are unanswered.
  t.like(recorder.waiting(), { count: 4 });
  const results = await Promise.allSettled(sent);
  await holder.query('COMMIT');
  t.true(results.every((r) => r.status === 'rejected' && r.reason instanceof InboxBusy), JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : r.status))));
  const reasons = results.map((r) => (r.status === 'rejected' ? String((r.reason as Error).message) : ''));
  t.regex(reasons[0]!, /did not complete the insert/, 'the statement timed out');
  t.true(reasons.slice(1, 4).every((m) => /could not be stored within 0.2 s/.test(m)), reasons.join('\n'));
  t.true(reasons.slice(4).every((m) => /Too many webhooks are waiting to be stored \(3\)/.test(m)), reasons.join('\n'));
  t.deepEqual(recorder.waiting(), { count: 0, oldestMs: 0 });
  // The lock let go, webhooks are stored again.
  t.deepEqual(await recorder.record(entry(`evt-${uuid()}`)), { inserted: true });
});

test.serial('with an insert free, a webhook is stored at once, alone: nothing waits on a timer', async (t) => {
  const { inbox, statements } = countedInbox();
  const recorder = groupedRecorder(inbox, { maxBatch: 64, maxInFlight: 2 });
  for (let i = 0; i < 3; i++) t.deepEqual(await recorder.record(entry(`evt-${uuid()}`)), { inserted: true });
  t.deepEqual(statements, [1, 1, 1]);
});

test.serial('a second insert starts only while a full batch waits: fewer, fuller statements', async (t) => {
  const { inbox, statements } = countedInbox();
  // No insert stalls here (a minute): only a full batch starts a second one.
  const recorder = groupedRecorder(inbox, { maxBatch: 4, maxInFlight: 2, stalledAfterMs: 60_000 });
  // Three at once: the first goes alone; the two others wait for it (they would fill no batch), not for a free slot.
  await Promise.all(Array.from({ length: 3 }, () => recorder.record(entry(`evt-${uuid()}`))));
  t.deepEqual(statements, [1, 2]);
  // Ten at once: the first alone; once four wait, a second insert takes them; the rest go as inserts finish.
  statements.length = 0;
  await Promise.all(Array.from({ length: 10 }, () => recorder.record(entry(`evt-${uuid()}`))));
  t.deepEqual(statements, [1, 4, 4, 1]);
});

test.serial('an insert that stalls holds the webhooks behind it back for stalledAfterMs at most: another insert stores them', async (t) => {
  const { inbox, statements } = countedInbox();
  const recorder = groupedRecorder(inbox, { maxBatch: 64, maxInFlight: 2, stalledAfterMs: 50 });
  // The first webhook's insert waits on the test's uncommitted row of the same event id.
  const blocked = `evt-${uuid()}`;
  const blocker = await database.pool.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query(`INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, headers) VALUES ($1, 'M', 'payment.updated', '{}', '{}')`, [blocked]);
    // Taken before the first insert starts: the stall is counted from that start, so no pause of the test's own
    // between the two shortens what it measures (5 ms are left for the clocks' granularity).
    const startedAt = Date.now();
    const first = recorder.record(entry(blocked));
    const others = [`evt-${uuid()}`, `evt-${uuid()}`];
    t.deepEqual(await Promise.all(others.map((id) => recorder.record(entry(id)))), [{ inserted: true }, { inserted: true }], 'stored while the first is blocked');
    t.true(Date.now() - startedAt >= 45, `after the first had stalled, not at once (${Date.now() - startedAt} ms)`);
    t.deepEqual(statements, [1, 2]);
    await blocker.query('ROLLBACK');
    t.deepEqual(await first, { inserted: true });
  } finally {
    blocker.release();
  }
});

test.serial('a statement stores at most maxBatch webhooks', async (t) => {
  const { inbox, statements } = countedInbox();
  const recorder = groupedRecorder(inbox, { maxBatch: 4, maxInFlight: 1 });
  await Promise.all(Array.from({ length: 11 }, () => recorder.record(entry(`evt-${uuid()}`))));
  t.deepEqual(statements, [1, 4, 4, 2]);
});

test.serial('leasing a webhook is a HOT update: no new index entries for the row stored a moment before', async (t) => {
  // One connection, so that its statistics can be flushed before they are read.
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  try {
    const inbox = webhookInbox(pool);
    const ids = Array.from({ length: 40 }, () => `evt-${uuid()}`);
    // Realistic bodies (a payment webhook is 1–3 KB): a few rows fill a page.
    await inbox.recordMany(ids.map((eventId) => ({ ...entry(eventId), rawBody: JSON.stringify({ id: eventId, pad: 'x'.repeat(1400) }) })));
    const counts = async () => {
      await pool.query('SELECT pg_stat_force_next_flush()');
      await pool.query('SELECT 1'); // the flush happens once the previous statement's transaction is over
      const { rows } = await database.pool.query<{ upd: string; hot: string }>(
        `SELECT pg_stat_clear_snapshot(), n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'pos_webhook_events_raw'`,
      );
      return { updated: Number(rows[0]!.upd), hot: Number(rows[0]!.hot) };
    };
    const before = await counts();
    const claimed = await inbox.claimDue(1000, 30_000);
    t.true(ids.every((id) => claimed.some((r) => r.event_id === id)));
    const after = await counts();
    t.is(after.updated - before.updated, claimed.length);
    t.is(after.hot - before.hot, claimed.length, 'every lease was a HOT update');
  } finally {
    await pool.end();
  }
});

test.serial('a lease reads only unprocessed rows, however long the inbox history (migration 0270)', async (t) => {
  // 20,000 webhooks processed long ago, then a few due: the claim must not step over the processed ones.
  await database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, processed, processed_at, outcome, received_at, next_attempt_at)
     SELECT 'old-' || g, 'M-1', 'payment.updated', '{}', true, now(), 'credited', now() - interval '1 day', now() - interval '1 day'
       FROM generate_series(1, 20000) g`,
  );
  const due = Array.from({ length: 5 }, () => `evt-${uuid()}`);
  for (const eventId of due) await webhookInbox(database.pool).record(entry(eventId));
  await database.pool.query('ANALYZE pos_webhook_events_raw');
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    const { text, values } = claimDueStatement(100, 30_000);
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    const scans: { 'Node Type': string; 'Index Name'?: string; 'Rows Removed by Filter'?: number; 'Actual Rows': number }[] = [];
    const walk = (node: { Plans?: unknown[] } & Record<string, unknown>) => {
      if (node['Relation Name'] === 'pos_webhook_events_raw' && node['Alias'] === 'pos_webhook_events_raw') scans.push(node as never);
      for (const child of node.Plans ?? []) walk(child as never);
    };
    walk(rows[0]['QUERY PLAN'][0].Plan);
    t.is(scans.length, 1);
    t.is(scans[0]!['Index Name'], 'pos_webhook_events_raw_due_order');
    t.true(scans[0]!['Actual Rows'] >= due.length);
    t.true((scans[0]!['Rows Removed by Filter'] ?? 0) < 1000, `rows removed by the filter: ${scans[0]!['Rows Removed by Filter']}`);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
});

test.serial('the lease takes rows in the order they became due: a retry waiting for later comes after what is due now', async (t) => {
  const inbox = webhookInbox(database.pool);
  // Everything due so far is leased away first, so that the claims below see only this test's rows.
  await inbox.claimDue(1000, 60_000);
  const [first, second, third] = [`evt-${uuid()}`, `evt-${uuid()}`, `evt-${uuid()}`];
  await inbox.record(entry(first));
  const claimed = await claim(inbox, first, 30_000);
  // The first fails, with its retry due in a minute: it is not leased again before then; the two stored after it
  // are, one claim at a time in the order they came (a claim's rows come back in no particular order, so one each).
  t.true(await inbox.fail(first, claimed.attempts, { tenantId: null, error: 'NETWORK: reset', retryAt: new Date(Date.now() + 60_000) }));
  for (const eventId of [second, third]) await inbox.record(entry(eventId));
  t.deepEqual((await inbox.claimDue(1, 30_000)).map((r) => r.event_id), [second]);
  t.deepEqual((await inbox.claimDue(1, 30_000)).map((r) => r.event_id), [third]);
  t.deepEqual(await inbox.claimDue(1000, 30_000), [], 'the failed one waits for its retry time');
});

test.serial('a webhook that fails its whole batch (not the database) fails alone: the batch is decided again one webhook at a time', async (t) => {
  const inbox = webhookInbox(database.pool);
  const good = [`evt-${uuid()}`, `evt-${uuid()}`, `evt-${uuid()}`];
  const poison = `evt-${uuid()}`;
  await inbox.recordMany([entry(good[0]!), { ...entry(poison), rawBody: '{"poison":true}' }, entry(good[1]!), entry(good[2]!)]);
  const batches: number[] = [];
  const settled: string[] = [];
  const processor = new WebhookProcessor(
    inbox,
    {
      // As a stream that does not decode, or a bug one payment meets: the whole batch throws.
      async handleBatch(webhooks, commit) {
        batches.push(webhooks.length);
        if (webhooks.some((w) => w.rawBody.includes('poison'))) throw new Error('PointsCredited v9 at wallet-x revision 3 is newer than this code knows');
        const results: WebhookResult[] = webhooks.map(() => ({ ok: true, tenantId: null, result: { outcome: 'ignored', position: undefined } }));
        await commit?.([], results);
        return results;
      },
    },
    pino({ level: 'silent' }),
    async (_requests, settlements) => ({ position: undefined, settled: await inbox.completeMany(settlements) }),
    { pollIntervalMs: 20, batchSize: 10, onSettled: (eventId) => settled.push(eventId) },
  );
  processor.start();
  try {
    await until(async () => good.every((id) => settled.includes(id)), Boolean, { timeoutMs: 5_000, intervalMs: 10 });
    for (const id of good) t.like(await row(id), { processed: true, outcome: 'ignored', attempts: 1 }, 'settled at its first attempt');
    const failed = await eventually(() => row(poison), (r) => r.error !== null, { timeoutMs: 5_000, intervalMs: 10 });
    t.like(failed, { processed: false, attempts: 1 });
    t.regex(failed.error, /newer than this code knows/);
    t.is(batches[0], 4, 'one batch first');
    t.deepEqual(batches.slice(1, 5), [1, 1, 1, 1], 'then each webhook alone');
  } finally {
    await processor.stop();
  }
  await settle([...good, poison]);
});

test.serial('erasure empties a processed body at once, and one still waiting for a retry or being processed as it is settled', async (t) => {
  const inbox = webhookInbox(database.pool);
  const naming = (eventId: string) => ({ ...entry(eventId), rawBody: JSON.stringify({ buyer_email_address: 'Gone@Example.com', phone: '+1 (917) 555-0142' }) });
  const body = async (eventId: string) =>
    (await database.pool.query('SELECT raw_body, processed, body_redacted_at FROM pos_webhook_events_raw WHERE id = $1', [eventId])).rows[0];
  const [done, waiting, working, givenUp, other] = ['done', 'waiting', 'working', 'given-up', 'other'].map((n) => `evt-erase-${n}-${uuid()}`) as [string, string, string, string, string];
  for (const id of [done, waiting, working, givenUp]) await inbox.record(naming(id));
  await inbox.record(entry(other));
  const claimed = await inbox.claimDue(100, 30_000);
  const attempt = (id: string) => claimed.find((r) => r.event_id === id)!.attempts;
  t.true(await inbox.complete(done, attempt(done), { tenantId: null, outcome: 'stored_anonymous' }));
  // Square's customer look-ups fail: two wait for their retry; `working` is still leased by its worker.
  t.true(await inbox.fail(waiting, attempt(waiting), { tenantId: null, error: 'Square 500', retryAt: new Date(Date.now() - 1000) }));
  t.true(await inbox.fail(givenUp, attempt(givenUp), { tenantId: null, error: 'Square 500', retryAt: new Date(Date.now() + 60_000) }));

  t.deepEqual(await inbox.redactMentioning({ emails: ['gone@example.com'], phoneDigits: [] }), { emptied: 1, pending: 3 });
  t.like(await body(done), { raw_body: '' });
  t.regex((await body(waiting)).raw_body, /Gone@Example\.com/, 'its worker still needs it');

  // Each is emptied by the statement that settles it: a success, the batched settlement, and a last failure.
  t.true(await inbox.complete(working, attempt(working), { tenantId: null, outcome: 'stored_anonymous' }));
  const again = await claim(inbox, waiting, 30_000);
  t.deepEqual(await inbox.completeMany([{ eventId: waiting, attempt: again.attempts, tenantId: null, outcome: 'stored_anonymous' }]), new Set([waiting]));
  await database.pool.query('UPDATE pos_webhook_events_raw SET next_attempt_at = now() WHERE id = $1', [givenUp]);
  const last = await claim(inbox, givenUp, 30_000);
  t.true(await inbox.fail(givenUp, last.attempts, { tenantId: null, error: 'Square 500', retryAt: null }));
  for (const id of [working, waiting, givenUp]) {
    const settled = await body(id);
    t.like(settled, { raw_body: '', processed: true }, id);
    t.truthy(settled.body_redacted_at);
  }
  t.is(await inbox.retry(givenUp), 'emptied', 'nothing is left to re-drive');
  // A webhook naming nobody erased keeps its body when settled.
  t.true(await inbox.complete(other, attempt(other), { tenantId: null, outcome: 'ignored' }));
  t.is((await body(other)).raw_body, '{}');
});

test.serial('the failed gauge counts only the failures an operator can re-drive: not one whose body was emptied', async (t) => {
  const inbox = webhookInbox(database.pool);
  const before = (await inbox.reading()).failed;
  const id = `evt-failed-emptied-${uuid()}`;
  await inbox.record(entry(id));
  await database.pool.query(`UPDATE pos_webhook_events_raw SET processed = true, processed_at = now() - interval '40 days', outcome = 'failed' WHERE id = $1`, [id]);
  t.is((await inbox.reading()).failed, before + 1);
  t.true((await inbox.redactProcessedBefore(new Date(Date.now() - 30 * 86_400_000))) >= 1);
  t.is((await inbox.reading()).failed, before, 'emptied by retention, it cannot be re-driven');
  t.is(await inbox.retry(id), 'emptied');
});

/** `count` webhooks processed 400 days ago, their bodies not emptied yet. */
async function processedLongAgo(count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => `evt-old-${uuid()}`);
  await database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, headers, received_at, processed, processed_at, outcome)
     SELECT id, 'M-1', 'payment.updated', '{"buyer_email_address":"jane@example.com"}', '{}', now() - interval '401 days', true, now() - interval '400 days', 'ignored'
       FROM unnest($1::text[]) id`,
    [ids],
  );
  return ids;
}
const emptied = async (ids: string[]) =>
  Number((await database.pool.query<{ n: string }>(`SELECT count(*) AS n FROM pos_webhook_events_raw WHERE id = ANY($1) AND raw_body = ''`, [ids])).rows[0]!.n);
const LONG_AGO = () => new Date(Date.now() - 300 * 86_400_000);
const REDACTION = /^UPDATE pos_webhook_events_raw SET raw_body = ''/;

// Found in review (2026-12-08): one UPDATE over the whole backlog was a long writing transaction (the feed waits for
// it: pg_snapshot_xmin is cluster-wide), and shutdown waited for all of it.
test.serial('retention empties the bodies in slices, one short statement each, none over the slice', async (t) => {
  const ids = await processedLongAgo(7);
  const statements: number[] = [];
  const inbox = webhookInbox(watchedPool(database.pool, REDACTION, (rows) => void statements.push(rows)));
  t.is(await inbox.redactProcessedBefore(LONG_AGO(), 3), 7);
  t.deepEqual(statements, [3, 3, 1]);
  t.is(await emptied(ids), 7);
});

test.serial('a body retention stopped (shutdown) after a slice starts no other; the next run empties the rest', async (t) => {
  const ids = await processedLongAgo(7);
  const stopping = new AbortController();
  const inbox = webhookInbox(watchedPool(database.pool, REDACTION, () => stopping.abort()));
  t.is(await inbox.redactProcessedBefore(LONG_AGO(), 3, stopping.signal), 3);
  t.is(await emptied(ids), 3);
  t.is(await inbox.redactProcessedBefore(LONG_AGO(), 3), 4);
  t.is(await emptied(ids), 7);
});

test.serial('an erasure deadlocked with a worker settling two rows naming the person in another order tries again and empties both', async (t) => {
  const inbox = webhookInbox(database.pool);
  const naming = (eventId: string) => ({ ...entry(eventId), rawBody: JSON.stringify({ buyer_email_address: 'locked@example.com' }) });
  const [first, second] = [`evt-dl-a-${uuid()}`, `evt-dl-b-${uuid()}`];
  await inbox.record(naming(first));
  await inbox.record(naming(second));
  // The worker's settlement holds the row erasure meets last, then wants the one erasure already holds.
  const worker = new pg.Client({ connectionString: database.url });
  await worker.connect();
  t.teardown(() => worker.end());
  await worker.query('BEGIN');
  await worker.query('UPDATE pos_webhook_events_raw SET attempts = attempts WHERE id = $1', [second]);
  const erasure = inbox.redactMentioning({ emails: ['locked@example.com'], phoneDigits: [] });
  await eventually(
    async () => (await database.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].n,
    (n) => n >= 1,
    { timeoutMs: 5_000, intervalMs: 20 },
  );
  const settled = worker.query(`UPDATE pos_webhook_events_raw SET processed = true, processed_at = now(), outcome = 'stored_anonymous' WHERE id = $1`, [first]).then(
    () => worker.query(`UPDATE pos_webhook_events_raw SET processed = true, processed_at = now(), outcome = 'stored_anonymous' WHERE id = $1`, [second]),
  );
  // PostgreSQL aborts one of the two; whichever it is, the worker's transaction then ends as a worker's would.
  const workerOutcome = await settled.then(() => 'settled', (error: { code?: string }) => error.code);
  await worker.query(workerOutcome === 'settled' ? 'COMMIT' : 'ROLLBACK');
  const result = await erasure;
  t.is(result.emptied + result.pending, 2, JSON.stringify({ result, workerOutcome }));
  const bodies = (await database.pool.query('SELECT id, raw_body, body_erasure_pending FROM pos_webhook_events_raw WHERE id = ANY($1)', [[first, second]])).rows;
  for (const b of bodies) t.true(b.raw_body === '' || b.body_erasure_pending, JSON.stringify(b));
});

/** Runs the processor until it has handled a first batch (`batches()` counts them), then stops it. */
async function untilFirstBatch(processor: WebhookProcessor, batches: () => number): Promise<void> {
  processor.start();
  try {
    await until(async () => batches(), (n) => n >= 1, { timeoutMs: 5_000, intervalMs: 10 });
  } finally {
    await processor.stop();
  }
}

test.serial('an attempt whose lease ran out before it settled counts no outcome: the attempt that settles the webhook counts it, once', async (t) => {
  const inbox = webhookInbox(database.pool);
  const eventId = 'evt-lease-ran-out-counted';
  await inbox.recordMany([entry(eventId)]);
  const outcomes: string[] = [];
  let batches = 0;
  const processor = new WebhookProcessor(
    inbox,
    {
      async handleBatch(webhooks, commit) {
        batches++;
        const results: WebhookResult[] = webhooks.map(() => ({ ok: true, tenantId: null, result: { outcome: 'ignored', position: undefined } }));
        await commit?.([], results);
        return results;
      },
    },
    pino({ level: 'silent' }),
    // As when the lease ran out and a newer attempt holds the row: this attempt's settlement matches no row.
    async () => ({ position: undefined, settled: new Set<string>() }),
    { pollIntervalMs: 20, onOutcome: (outcome) => outcomes.push(outcome) },
  );
  await untilFirstBatch(processor, () => batches);
  t.deepEqual(outcomes, [], 'not counted by the attempt that did not settle it');
  await settle([eventId]);
});

test.serial('a failure whose lease ran out (the newer attempt holds the row) is not counted, and waiters are not told it', async (t) => {
  const inbox = webhookInbox(database.pool);
  const eventId = 'evt-lease-ran-out-failed';
  await inbox.recordMany([entry(eventId)]);
  const outcomes: string[] = [];
  const told: string[] = [];
  let batches = 0;
  const processor = new WebhookProcessor(
    // As when the lease ran out and a newer attempt holds the row: recording this attempt's failure matches no row.
    { ...inbox, fail: async () => false },
    {
      async handleBatch(webhooks) {
        batches++;
        return webhooks.map((): WebhookResult => ({ ok: false, tenantId: null, error: new Error('Square did not answer') }));
      },
    },
    pino({ level: 'silent' }),
    async (_requests, settlements) => ({ position: undefined, settled: await inbox.completeMany(settlements) }),
    { pollIntervalMs: 20, onOutcome: (outcome) => outcomes.push(outcome), onSettled: (id) => told.push(id) },
  );
  await untilFirstBatch(processor, () => batches);
  t.deepEqual(outcomes, [], 'not counted as failed');
  t.deepEqual(told, [], 'waiters wait for the attempt that settles it');
  await settle([eventId]);
});
