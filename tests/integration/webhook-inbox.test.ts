/**
 * The webhook inbox's lease: a worker whose lease ran out while it worked (a slow Square call) may answer after
 * another worker claimed the row again. Its late answer must not undo the newer attempt's outcome.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { webhookInbox } from '../../adapters/postgres/webhook-inbox.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';

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
