/**
 * The held-points projection (projections/held-points.ts) against real PostgreSQL: a batch holds its walk-ins'
 * purchases with one insert per table, and whatever else the batch does to a held purchase (a claim) happens after
 * the purchase was held, as one event at a time would have it.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import type { JsonObject, Position, RecordedEvent } from '../../domain/ports/event-store.ts';
import { heldPointsProjection } from '../../projections/held-points.ts';
import { withTransaction } from '../../adapters/postgres/transaction.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

const tenantId = uuid();
let revision = 0;
function recorded(type: string, schemaVersion: number, data: JsonObject): RecordedEvent {
  revision++;
  return { id: uuid(), type, data, metadata: { schemaVersion }, stream: `payment-${String(data.paymentId)}`, revision, position: `0.${revision}` as Position, recordedAt: new Date() };
}

const completedAt = '2026-11-10T12:00:05.000Z';
function walkIn(paymentId: string, customerId: string | null, identityHashes: string[]): RecordedEvent {
  return recorded('PurchaseCompleted', 5, {
    paymentId, tenantId, merchantId: 'M1', locationId: 'L1', amountMinor: 700, tipMinor: 0, totalMinor: 700, currency: 'USD', customerId, identityHashes,
    consumerId: null, walletId: null, outcome: 'stored_anonymous', points: 7, ruleId: uuid(), ruleVersion: 1, basis: 'amount', basisAmountMinor: 700,
    completedAt, source: `webhook:evt-${paymentId}`, paymentCreatedAt: completedAt, walletEffect: 'inline', orderId: null, refundBasis: 'amount', orderRead: false,
    contributions: [],
  });
}
const claimed = (paymentId: string, identityHash: string) =>
  recorded('HeldPointsClaimed', 1, { paymentId, tenantId, consumerId: uuid(), walletId: `${tenantId}:x`, points: 7, identityHash, claimedAt: completedAt });
const attached = (paymentId: string, customerId: string, identityHashes: string[]) =>
  recorded('PurchaseIdentityAttached', 1, { paymentId, tenantId, customerId, identityHashes, completedAt, attachedAt: completedAt, source: 'webhook:evt-c' });

const apply = (events: RecordedEvent[]) => withTransaction(database.pool, (db) => heldPointsProjection.apply(events, { db, table: (name) => name }));

test('one batch: purchases held, one claimed in the same batch after it was held, an identity attached later; applied again, the same rows', async (t) => {
  const [a, b, c] = ['pay-a', 'pay-b', 'pay-c'].map((p) => `${p}-${uuid().slice(0, 8)}`) as [string, string, string];
  const batch = [walkIn(a, 'cust-a', ['email:a', 'phone:a']), walkIn(b, 'cust-b', ['email:b']), claimed(a, 'email:a'), walkIn(c, null, []), attached(c, 'cust-c', ['email:c'])];
  const rows = async () => ({
    held: (await database.pool.query(`SELECT payment_id, identity_hash, claimed FROM held_points WHERE tenant_id = $1 ORDER BY payment_id, identity_hash`, [tenantId])).rows,
    byCustomer: (await database.pool.query(`SELECT payment_id, customer_id FROM held_purchases_by_customer WHERE tenant_id = $1 ORDER BY payment_id`, [tenantId])).rows,
  });
  await apply(batch);
  const expected = {
    held: [
      { payment_id: a, identity_hash: 'email:a', claimed: true },
      { payment_id: a, identity_hash: 'phone:a', claimed: true },
      { payment_id: b, identity_hash: 'email:b', claimed: false },
      { payment_id: c, identity_hash: 'email:c', claimed: false },
    ],
    // The claimed purchase is no longer held by its Square customer; a walk-in without a customer id never was.
    byCustomer: [{ payment_id: b, customer_id: 'cust-b' }],
  };
  t.deepEqual(await rows(), expected);
  await apply(batch);
  t.deepEqual(await rows(), expected, 'applied again (a crash before the checkpoint moved): nothing changes');
});
