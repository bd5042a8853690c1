/**
 * Events written before issue 15 keep replaying: a log holding purchases, refunds and connections in the shapes the
 * code wrote until now (`PurchaseCompleted` v1 and v3, `RefundApplied` v2, `RefundHeld` v1, `SquareConnectionAuthorized`
 * v1) is projected, then the wallets and held-points projections are rebuilt, and the balances come out the same.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { v4 as uuid } from 'uuid';
import type { JsonObject, NewEvent } from '../../domain/ports/event-store.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { eventually } from '../support/eventually.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';

const FIXTURES = new URL('../fixtures/events/', import.meta.url);
const fixture = (type: string, version: number): { type: string; schemaVersion: number; data: JsonObject } =>
  JSON.parse(readFileSync(new URL(`${type}.v${version}.json`, FIXTURES), 'utf8'));

let service: TestService;
let call: ReturnType<typeof api>;
let admin: string;

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: 'ops@old-events.test' });
  call = api(service.url);
  admin = await tokenFor(uuid(), 'ops@old-events.test');
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
});
test.after.always(async () => {
  await service?.stop();
});

/** An event exactly as an older deployment stored it: its data as then, stamped with the version it was written in. */
function stored(type: string, version: number, data: JsonObject): NewEvent {
  return { id: uuid(), type, data, metadata: { schemaVersion: version, actor: 'system:old-deployment' } };
}

test('a log in the shapes written before issue 15 projects, and rebuilds, to the same balances', async (t) => {
  const tenantId = uuid();
  const consumerId = uuid();
  const walletId = uuid();
  const owner = { tenantId, consumerId, walletId };
  const store = service.tally.store;

  // A connection recorded without currency or country.
  await store.append(`square-connection-${tenantId}`, [stored('SquareConnectionAuthorized', 1, { ...fixture('SquareConnectionAuthorized', 1).data, tenantId })], 'any');

  // Purchase A (v3, batched ingestion): 10 points credited inline, then a refund reversing 3 inline.
  const payA = `pay-old-a-${uuid()}`;
  const completedA = { ...fixture('PurchaseCompleted', 3).data, ...owner, paymentId: payA, walletEffect: 'inline' };
  const refundA = { ...fixture('RefundApplied', 2).data, ...owner, paymentId: payA, walletEffect: 'inline' };
  const credit = { ...owner, paymentId: payA, points: 10, ruleId: 'rule-old', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1099, via: 'purchase' };
  await store.appendMany([
    { stream: `payment-${payA}`, events: [stored('PurchaseCompleted', 3, completedA)], expected: 'no_stream' },
    { stream: `wallet-${walletId}`, events: [stored('PointsCredited', 1, credit)], expected: 'any' },
  ]);
  await store.appendMany([
    { stream: `payment-${payA}`, events: [stored('RefundApplied', 2, refundA)], expected: 0 },
    { stream: `wallet-${walletId}`, events: [stored('PointsReversed', 1, { ...owner, paymentId: payA, refundId: 'ref_1', points: 3 })], expected: 'any' },
  ]);

  // Purchase B (v1, before batching): a refund held first (RefundHeld v1), then the completion; the wallet-credits
  // reactor appends the credit (25) and the held refund's reversal (floor(25 × 500 / 2600) = 4).
  const payB = `pay-old-b-${uuid()}`;
  const completedB = { ...fixture('PurchaseCompleted', 1).data, ...owner, paymentId: payB, points: 25, amountMinor: 2500, tipMinor: 100, totalMinor: 2600, basisAmountMinor: 2500 };
  await store.append(`payment-${payB}`, [stored('RefundHeld', 1, { ...fixture('RefundHeld', 1).data, tenantId, paymentId: payB, refundId: 'ref-old-b', amountMinor: 500 })], 'no_stream');
  await store.append(
    `payment-${payB}`,
    [
      stored('PurchaseCompleted', 1, completedB),
      stored('RefundApplied', 1, { paymentId: payB, tenantId, refundId: 'ref-old-b', amountMinor: 500, pointsReversed: 4, walletId, consumerId, source: 'webhook:old' }),
    ],
    0,
  );
  // And a redemption.
  const last = await store.append(`wallet-${walletId}`, [stored('PointsRedeemed', 1, { ...owner, points: 2, idempotencyKey: 'old-1', reference: null, redeemedBy: 'user:old' })], 'any');

  // One statement, so one snapshot: the wallet row and its ledger lines are written together, and two separate reads
  // could see a reversal in the ledger but not yet in the balance.
  const balance = async () => {
    const { rows } = await service.database.pool.query<{ wallet: Record<string, string> | null; ledger: string[] | null }>(
      `SELECT (SELECT json_build_object('points_balance', points_balance::text, 'lifetime_earned', lifetime_earned::text,
                                        'lifetime_redeemed', lifetime_redeemed::text)
                 FROM wallets WHERE id = $1) AS wallet,
              (SELECT json_agg(entry_type || ' ' || kind || ' ' || points ORDER BY revision)
                 FROM wallet_ledger WHERE wallet_id = $1) AS ledger`,
      [walletId],
    );
    return { wallet: rows[0]!.wallet ?? undefined, ledger: rows[0]!.ledger ?? [] };
  };
  const settled = await eventually(
    async () => {
      const head = await store.headPosition();
      if (head) await service.tally.runner.waitForPosition(head, 10_000);
      return balance();
    },
    (b) => b.ledger.length === 5,
    { timeoutMs: 15_000, intervalMs: 50 },
  );
  t.true(await service.tally.runner.waitForPosition(last.position!, 10_000));
  t.deepEqual(settled.wallet, { points_balance: '26', lifetime_earned: '28', lifetime_redeemed: '2' }, '10 − 3 + 25 − 4 − 2');
  // The reactor's lines for purchase B land after the redemption or before it: compare them as a set.
  t.deepEqual([...settled.ledger].sort(), ['credit earn 10', 'credit earn 25', 'debit redemption 2', 'debit reversal 3', 'debit reversal 4']);

  for (const projection of ['wallets', 'held_points']) {
    const started = await call('POST', `/api/v1/admin/projections/${projection}/rebuild`, { token: admin });
    t.is(started.status, 202, projection);
    const job = await eventually(() => call('GET', `/api/v1/admin/jobs/${started.body.jobId}`, { token: admin }), (r) => r.body?.state === 'completed', { timeoutMs: 30_000, intervalMs: 50 });
    t.is(job.body.state, 'completed', `${projection} rebuilt from the old shapes`);
  }
  t.deepEqual(await balance(), settled, 'the rebuild gives the same balance and ledger');
  const reconcile = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.deepEqual(reconcile.body.mismatches, []);
  const connection = await service.database.pool.query('SELECT merchant_id, currency, country FROM pos_connections WHERE tenant_id = $1', [tenantId]);
  t.like(connection.rows[0], { currency: null, country: null }, 'a connection recorded before currency and country shows them unknown');
});
