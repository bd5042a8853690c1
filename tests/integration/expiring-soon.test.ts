/**
 * `expiringSoon` on wallet answers (projections/read/wallets.ts), read from the ledger the wallets projection
 * wrote: a refund takes back its own purchase's points, so the old points it leaves are the ones that expire,
 * as the expiry run (domain/wallets/expiry.ts `timelineOf`) counts them.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { walletBalanceEvents, walletEvents, type WalletEvent } from '../../domain/wallets/events.ts';
import { expiryDue, timelineOf, type ExpiryPolicy } from '../../domain/wallets/expiry.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { findTenantWallet, withExpiringSoon } from '../../projections/read/wallets.ts';
import { walletsProjection } from '../../projections/wallets.ts';
import { programProjection } from '../../projections/program.ts';
import { createTestEventStore } from '../support/database.ts';

test('a refunded purchase leaves the older points, which expire on their own date, in the wallet answer and in the run alike', async (t) => {
  const { database, store, close } = await createTestEventStore();
  t.teardown(close);
  const owner = { walletId: uuid(), tenantId: `tenant-${uuid()}`, consumerId: uuid() };
  const credit = (paymentId: string, points: number): WalletEvent => ({
    type: 'PointsCredited',
    data: { ...owner, paymentId, points, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' },
  });
  // An old purchase, a new one, the new one refunded in full: what is left is the old purchase's 100 points.
  const history: [WalletEvent, string][] = [
    [credit('pay-old', 100), '2025-01-10T12:00:00.000Z'],
    [credit('pay-new', 100), '2026-02-10T12:00:00.000Z'],
    [{ type: 'PointsReversed', data: { ...owner, paymentId: 'pay-new', refundId: 'refund-1', points: 100, fromExpired: 0 } }, '2026-02-12T12:00:00.000Z'],
  ];
  await store.append(walletStream(owner.walletId), history.map(([e]) => walletEvents.encode(e, uuid(), { actor: 'system:test' })), 'no_stream');
  // Recorded at the times above (the log records now; the ledger and the run read these).
  const recorded = walletBalanceEvents.decodeHandled(await store.readStream(walletStream(owner.walletId))).map((e, i) => ({ ...e, recordedAt: new Date(history[i]![1]) }));
  await walletsProjection.apply(recorded, { db: database.pool, table: (name) => name });

  const policy: ExpiryPolicy = { version: 1, earnedMonths: 12, inactivityMonths: null, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: false, timeZone: 'UTC' };
  const now = new Date('2026-01-20T00:00:00.000Z');
  const wallet = (await findTenantWallet(database.pool, owner.tenantId, owner.walletId))!;
  t.is(wallet.balance, 100);
  const [answered] = await withExpiringSoon(database.pool, [wallet], now, new Map([[owner.tenantId, policy]]));
  // Earned 2025-01-10 with 12 months: valid through January 2026, expiring on 2026-02-01, within 30 days of now.
  t.deepEqual(answered!.expiringSoon, { points: 100, at: '2026-02-01T00:00:00.000Z' });

  const timeline = timelineOf(recorded.map((event) => ({ event, at: event.recordedAt })));
  t.like(expiryDue(timeline, policy, new Date('2026-03-02T00:00:00.000Z')), { points: 100 }, 'the run takes the old points once due');
});

test('a reward expiring within the window no longer hides the points it locks: the wallet answer announces what its run takes', async (t) => {
  const { database, store, close } = await createTestEventStore();
  t.teardown(close);
  const owner = { walletId: uuid(), tenantId: `tenant-${uuid()}`, consumerId: uuid() };
  const history: [WalletEvent, string][] = [
    [
      { type: 'PointsCredited', data: { ...owner, paymentId: 'pay-old', points: 100, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: 10_000, via: 'purchase' } },
      '2025-01-10T12:00:00.000Z',
    ],
    [
      {
        type: 'RewardIssued',
        data: { ...owner, issuedRewardId: `ir-${uuid()}`, rewardId: 'rw', rewardVersion: 1, rewardName: 'Coffee', points: 100, idempotencyKey: 'k', issuedBy: 'm', issuedAt: '2026-01-15T00:00:00.000Z', expiresAt: '2026-02-10T00:00:00.000Z' },
      },
      '2026-01-15T00:00:00.000Z',
    ],
  ];
  await store.append(walletStream(owner.walletId), history.map(([e]) => walletEvents.encode(e, uuid(), { actor: 'system:test' })), 'no_stream');
  const stored = (await store.readStream(walletStream(owner.walletId))).map((e, i) => ({ ...e, recordedAt: new Date(history[i]![1]) }));
  const recorded = walletBalanceEvents.decodeHandled(stored);
  await walletsProjection.apply(recorded, { db: database.pool, table: (name) => name });
  // The issued reward as the program projection records it (`issued_rewards`); it passes over the other events.
  await programProjection.apply(stored, { db: database.pool, table: (name) => name });

  const policy: ExpiryPolicy = { version: 1, earnedMonths: 12, inactivityMonths: null, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true, timeZone: 'UTC' };
  const wallet = (await findTenantWallet(database.pool, owner.tenantId, owner.walletId))!;
  t.like(wallet, { balance: 100, locked: 100 });
  const [answered] = await withExpiringSoon(database.pool, [wallet], new Date('2026-02-05T00:00:00.000Z'), new Map([[owner.tenantId, policy]]));
  t.deepEqual(answered!.expiringSoon, { points: 100, at: '2026-02-10T00:00:00.000Z' }, 'due since 2026-02-01, taken by the run that expires the reward');
  const [later] = await withExpiringSoon(database.pool, [wallet], new Date('2026-01-05T00:00:00.000Z'), new Map([[owner.tenantId, policy]]));
  t.deepEqual(later!.expiringSoon, { points: 0, at: null }, 'a reward expiring after the window still keeps them');
});

test('a reward issued and voided is not activity: the wallet answer, like the run, counts the inactivity from the last purchase', async (t) => {
  const { database, store, close } = await createTestEventStore();
  t.teardown(close);
  const owner = { walletId: uuid(), tenantId: `tenant-${uuid()}`, consumerId: uuid() };
  const reward = { ...owner, issuedRewardId: `ir-${uuid()}`, rewardId: 'rw', points: 10 };
  const history: [WalletEvent, string][] = [
    [{ type: 'PointsCredited', data: { ...owner, paymentId: 'pay-1', points: 150, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: 15_000, via: 'purchase' } }, '2025-01-15T12:00:00.000Z'],
    [
      { type: 'RewardIssued', data: { ...reward, rewardVersion: 1, rewardName: 'Coffee', idempotencyKey: 'k', issuedBy: 'm', issuedAt: '2025-06-20T12:00:00.000Z', expiresAt: '2026-01-01T00:00:00.000Z' } },
      '2025-06-20T12:00:00.000Z',
    ],
    [{ type: 'RewardVoided', data: { ...reward, voidedBy: 'm', reason: null } }, '2025-06-25T12:00:00.000Z'],
  ];
  await store.append(walletStream(owner.walletId), history.map(([e]) => walletEvents.encode(e, uuid(), { actor: 'system:test' })), 'no_stream');
  const recorded = walletBalanceEvents.decodeHandled(await store.readStream(walletStream(owner.walletId))).map((e, i) => ({ ...e, recordedAt: new Date(history[i]![1]) }));
  await walletsProjection.apply(recorded, { db: database.pool, table: (name) => name });

  const policy: ExpiryPolicy = { version: 1, earnedMonths: null, inactivityMonths: 6, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true, timeZone: 'UTC' };
  const wallet = (await findTenantWallet(database.pool, owner.tenantId, owner.walletId))!;
  t.like(wallet, { balance: 150, locked: 0 });
  const [answered] = await withExpiringSoon(database.pool, [wallet], new Date('2025-07-10T00:00:00.000Z'), new Map([[owner.tenantId, policy]]));
  // Nothing earned or spent since 15 January: with 6 months, valid through July, every point expires on 1 August.
  t.deepEqual(answered!.expiringSoon, { points: 150, at: '2025-08-01T00:00:00.000Z' });
  const timeline = timelineOf(recorded.map((event) => ({ event, at: event.recordedAt })));
  t.like(expiryDue(timeline, policy, new Date('2025-08-01T00:00:00.000Z')), { points: 150, rule: 'inactivity' }, 'what the run takes');
});
