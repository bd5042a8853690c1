/**
 * migrations/0100 converts ledger rows written in the old shape (signed points, the kind of line in
 * `entry_type`) to the new one (unsigned points, `entry_type` credit/debit, `kind`), and what it makes is exactly
 * what the wallets projection writes for the same events: a rebuild and the migration agree, row for row.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { MIGRATIONS_DIR } from '../../adapters/postgres/migrate.ts';
import { walletBalanceEvents, walletEvents, type WalletEvent } from '../../domain/wallets/events.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { walletsProjection } from '../../projections/wallets.ts';
import { createTestEventStore } from '../support/database.ts';

const migration = readFileSync(`${MIGRATIONS_DIR}/0100_runbook-columns.sql`, 'utf8');
const up = migration.slice(migration.indexOf('-- Up Migration'), migration.indexOf('-- Down Migration'));
const down = migration.slice(migration.indexOf('-- Down Migration'));

test('the migration turns old ledger rows into exactly what a rebuild writes, and back', async (t) => {
  const { database, store, close } = await createTestEventStore();
  t.teardown(close);
  const owner = { walletId: uuid(), tenantId: 'tenant-migration', consumerId: uuid() };
  const credit = { paymentId: 'pay-1', ruleId: 'rule-1', ruleVersion: 1, basis: 'amount' as const, basisAmountMinor: 2500 };
  const history: WalletEvent[] = [
    { type: 'PointsCredited', data: { ...owner, ...credit, points: 25, via: 'purchase' } },
    { type: 'PointsCredited', data: { ...owner, ...credit, paymentId: 'pay-2', points: 7, via: 'claim' } },
    { type: 'PointsReversed', data: { ...owner, paymentId: 'pay-1', refundId: 'ref-1', points: 6, fromExpired: 0 } },
    { type: 'PointsRedeemed', data: { ...owner, points: 4, idempotencyKey: 'k-1', reference: 'cookie', redeemedBy: 'user-1' } },
    { type: 'PointsAdjusted', data: { ...owner, points: -3, reason: 'duplicate', adjustedBy: 'admin-1', adjustedAs: 'admin', idempotencyKey: null } },
    { type: 'PointsAdjusted', data: { ...owner, points: 5, reason: 'goodwill', adjustedBy: 'admin-1', adjustedAs: 'admin', idempotencyKey: null } },
  ];
  await store.append(walletStream(owner.walletId), history.map((e) => walletEvents.encode(e, uuid(), { actor: 'system:test' })), 'no_stream');
  const recorded = walletBalanceEvents.decodeHandled(await store.readStream(walletStream(owner.walletId)));
  await walletsProjection.apply(recorded, { db: database.pool, table: (name) => name });

  const ledger = async () => (await database.pool.query('SELECT * FROM wallet_ledger WHERE wallet_id = $1 ORDER BY revision', [owner.walletId])).rows;
  const wallet = async () => (await database.pool.query('SELECT * FROM wallets')).rows;
  const rebuilt = { ledger: await ledger(), wallet: await wallet() };
  t.deepEqual(
    rebuilt.ledger.map((l) => [l.entry_type, l.kind, Number(l.points), Number(l.balance_after)]),
    [
      ['credit', 'earn', 25, 25],
      ['credit', 'claim', 7, 32],
      ['debit', 'reversal', 6, 26],
      ['debit', 'redemption', 4, 22],
      ['debit', 'adjustment', 3, 19],
      ['credit', 'adjustment', 5, 24],
    ],
  );
  t.like(rebuilt.wallet[0], { id: owner.walletId, points_balance: '24', lifetime_earned: '26', lifetime_redeemed: '4' });

  // The rows as the code before this change wrote them.
  await database.pool.query(down);
  const old = await database.pool.query('SELECT entry_type, points FROM wallet_ledger WHERE wallet_id = $1 ORDER BY revision', [owner.walletId]);
  t.deepEqual(
    old.rows.map((l) => [l.entry_type, Number(l.points)]),
    [['credit', 25], ['claim', 7], ['reversal', -6], ['redemption', -4], ['adjustment', -3], ['adjustment', 5]],
    'the old shape: signed points, the kind of line in entry_type',
  );
  t.deepEqual((await database.pool.query('SELECT wallet_id FROM wallets')).rows, [{ wallet_id: owner.walletId }]);

  await database.pool.query(up);
  t.deepEqual({ ledger: await ledger(), wallet: await wallet() }, rebuilt, 'the migrated rows equal the rebuilt ones');
});
