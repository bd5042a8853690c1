/** The reward lifecycle and points expiry on the wallet decider: given(events).when(command).then(events). */
import test from 'ava';
import { fold } from '../../domain/shared/decider.ts';
import { availablePoints, walletDecider, walletSnapshots, type WalletCommand, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const spec = deciderSpec(walletDecider);
const owner = { walletId: 'w1', tenantId: 't1', consumerId: 'c1' };
const NOW = '2026-11-10T12:00:00.000Z';
const LATER = '2026-12-10T12:00:00.000Z';

const credited = (paymentId: string, points: number): WalletEvent => ({
  type: 'PointsCredited',
  data: { ...owner, paymentId, points, ruleId: 'r1', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' },
});
const coffee = { rewardId: 'rw-coffee', version: 1, name: 'Free coffee', points: 100 };
const issue = (issuedRewardId: string, idempotencyKey = `k-${issuedRewardId}`, reward = coffee): WalletCommand => ({
  type: 'IssueReward',
  walletId: 'w1',
  issuedRewardId,
  reward,
  idempotencyKey,
  by: 'cashier-1',
  now: NOW,
  expiresAt: LATER,
});
const issued = (issuedRewardId: string, idempotencyKey = `k-${issuedRewardId}`, reward = coffee): WalletEvent => ({
  type: 'RewardIssued',
  data: {
    ...owner,
    issuedRewardId,
    rewardId: reward.rewardId,
    rewardVersion: reward.version,
    rewardName: reward.name,
    points: reward.points,
    idempotencyKey,
    issuedBy: 'cashier-1',
    issuedAt: NOW,
    expiresAt: LATER,
  },
});
const redeemReward = (issuedRewardId: string, idempotencyKey = `r-${issuedRewardId}`, now = NOW): WalletCommand => ({
  type: 'RedeemReward',
  walletId: 'w1',
  issuedRewardId,
  idempotencyKey,
  by: 'cashier-2',
  now,
});
const rewardRedeemed = (issuedRewardId: string, idempotencyKey = `r-${issuedRewardId}`): WalletEvent => ({
  type: 'RewardRedeemed',
  data: { ...owner, issuedRewardId, rewardId: 'rw-coffee', points: 100, idempotencyKey, redeemedBy: 'cashier-2' },
});
const voided = (issuedRewardId: string): WalletEvent => ({
  type: 'RewardVoided',
  data: { ...owner, issuedRewardId, rewardId: 'rw-coffee', points: 100, voidedBy: 'cashier-1', reason: null },
});
const expirePoints = (points: number, atEventCount: number, period = '2027-11-10'): WalletCommand => ({
  type: 'ExpirePoints',
  walletId: 'w1',
  period,
  points,
  rule: 'earned',
  policyVersion: 1,
  asOf: `${period}T03:00:00.000Z`,
  atEventCount,
});

test('issuing a reward locks its points: the balance stays, available drops', (t) => {
  spec(t).given(credited('p1', 150)).when(issue('i1')).then([issued('i1')]);
  const state = fold(walletDecider, [credited('p1', 150), issued('i1')]);
  t.like(state, { balance: 150, locked: 100 });
  t.is(availablePoints(state), 50);
});

test('a reward the available points do not cover is refused, locked points included', (t) => {
  spec(t).given(credited('p1', 99)).when(issue('i1')).thenThrows('INSUFFICIENT_POINTS', /99 points; 100 were asked/);
  spec(t).given(credited('p1', 150), issued('i1')).when(issue('i2')).thenThrows('INSUFFICIENT_POINTS', /50 points available \(150 in the balance, 100 locked/);
  spec(t)
    .given(credited('p1', 150), issued('i1'))
    .when({ type: 'RedeemPoints', walletId: 'w1', points: 51, idempotencyKey: 'k9', reference: null, by: 'm' })
    .thenThrows('INSUFFICIENT_POINTS');
});

test('issuing with a used key answers as the first time; the same key for another reward is refused', (t) => {
  spec(t).given(credited('p1', 500), issued('i1', 'key-1')).when(issue('i2', 'key-1')).thenNothing();
  spec(t)
    .given(credited('p1', 500), issued('i1', 'key-1'))
    .when(issue('i2', 'key-1', { ...coffee, rewardId: 'rw-cake' }))
    .thenThrows('IDEMPOTENCY_KEY_REUSED');
});

test('redeeming spends the locked points once; a retried key is nothing new, another key is refused', (t) => {
  spec(t).given(credited('p1', 150), issued('i1')).when(redeemReward('i1')).then([rewardRedeemed('i1')]);
  const state = fold(walletDecider, [credited('p1', 150), issued('i1'), rewardRedeemed('i1')]);
  t.like(state, { balance: 50, locked: 0, lifetimeRedeemed: 100 });
  spec(t).given(credited('p1', 150), issued('i1'), rewardRedeemed('i1')).when(redeemReward('i1')).thenNothing();
  spec(t).given(credited('p1', 150), issued('i1'), rewardRedeemed('i1')).when(redeemReward('i1', 'other-key')).thenThrows('REWARD_NOT_ISSUED', /already redeemed/);
  spec(t).given(credited('p1', 150)).when(redeemReward('nope')).thenThrows('NOT_FOUND');
});

test('an issued reward past its time cannot be redeemed; the expiry gives its points back once', (t) => {
  spec(t).given(credited('p1', 150), issued('i1')).when(redeemReward('i1', 'k', LATER)).thenThrows('REWARD_EXPIRED');
  const expire = (now: string): WalletCommand => ({ type: 'ExpireReward', walletId: 'w1', issuedRewardId: 'i1', now });
  spec(t).given(credited('p1', 150), issued('i1')).when(expire(NOW)).thenNothing();
  const expired: WalletEvent = { type: 'RewardExpired', data: { ...owner, issuedRewardId: 'i1', rewardId: 'rw-coffee', points: 100, expiresAt: LATER, expiredAt: LATER } };
  spec(t).given(credited('p1', 150), issued('i1')).when(expire(LATER)).then([expired]);
  spec(t).given(credited('p1', 150), issued('i1'), expired).when(expire(LATER)).thenNothing();
  t.like(fold(walletDecider, [credited('p1', 150), issued('i1'), expired]), { balance: 150, locked: 0 });
});

test('voiding unlocks the points; voiding twice is one void; a redeemed reward cannot be voided', (t) => {
  const voidIt: WalletCommand = { type: 'VoidReward', walletId: 'w1', issuedRewardId: 'i1', reason: null, by: 'cashier-1' };
  spec(t).given(credited('p1', 150), issued('i1')).when(voidIt).then([voided('i1')]);
  t.like(fold(walletDecider, [credited('p1', 150), issued('i1'), voided('i1')]), { balance: 150, locked: 0 });
  spec(t).given(credited('p1', 150), issued('i1'), voided('i1')).when(voidIt).thenNothing();
  spec(t).given(credited('p1', 150), issued('i1'), rewardRedeemed('i1')).when(voidIt).thenThrows('REWARD_NOT_ISSUED', /already redeemed/);
  spec(t).given(credited('p1', 150), issued('i1'), voided('i1')).when(redeemReward('i1')).thenThrows('REWARD_NOT_ISSUED', /already voided/);
});

test('points expire once per period, never the locked ones, and only on the state they were computed from', (t) => {
  const expired = (points: number, period = '2027-11-10'): WalletEvent => ({
    type: 'PointsExpired',
    data: { ...owner, points, period, rule: 'earned', policyVersion: 1, asOf: `${period}T03:00:00.000Z` },
  });
  spec(t).given(credited('p1', 150)).when(expirePoints(150, 1)).then([expired(150)]);
  spec(t).given(credited('p1', 150), issued('i1')).when(expirePoints(150, 2)).then([expired(50)]);
  spec(t).given(credited('p1', 150), expired(20)).when(expirePoints(30, 2)).thenNothing();
  spec(t).given(credited('p1', 150), expired(20)).when(expirePoints(30, 2, '2027-11-11')).then([expired(30, '2027-11-11')]);
  spec(t).given(credited('p1', 150), credited('p2', 5)).when(expirePoints(150, 1)).thenThrows('STALE_DECISION');
  t.like(fold(walletDecider, [credited('p1', 150), expired(20)]), { balance: 130, lifetimeExpired: 20 });
});

test('a merchant adjusts within the workspace limit, recorded as a merchant; an admin has no limit', (t) => {
  const adjust = (points: number, as: 'admin' | 'merchant', limit: number | null): WalletCommand => ({
    type: 'AdjustPoints',
    walletId: 'w1',
    points,
    reason: 'forgot phone',
    by: 'u1',
    idempotencyKey: null,
    as,
    limit,
  });
  spec(t).given(credited('p1', 10)).when(adjust(1001, 'merchant', 1000)).thenThrows('ADJUSTMENT_ABOVE_LIMIT', /at most 1000 points/);
  spec(t).given(credited('p1', 10)).when(adjust(-1001, 'merchant', 1000)).thenThrows('ADJUSTMENT_ABOVE_LIMIT');
  spec(t)
    .given(credited('p1', 10))
    .when(adjust(1000, 'merchant', 1000))
    .then([{ type: 'PointsAdjusted', data: { ...owner, points: 1000, reason: 'forgot phone', adjustedBy: 'u1', adjustedAs: 'merchant', idempotencyKey: null } }]);
  spec(t)
    .given(credited('p1', 10))
    .when(adjust(5000, 'admin', null))
    .then([{ type: 'PointsAdjusted', data: { ...owner, points: 5000, reason: 'forgot phone', adjustedBy: 'u1', adjustedAs: 'admin', idempotencyKey: null } }]);
});

test('a snapshot keeps issued rewards, their settlements, expired periods and the event count', (t) => {
  const history = [credited('p1', 500), issued('i1'), issued('i2'), rewardRedeemed('i1'), voided('i2')];
  const state = fold(walletDecider, history);
  const restored = walletSnapshots.fromJson(JSON.parse(JSON.stringify(walletSnapshots.toJson(state))));
  t.deepEqual(walletSnapshots.toJson(restored), walletSnapshots.toJson(state));
  t.is(restored.eventCount, 5);
  t.throws(() => walletDecider.decide(redeemReward('i2', 'fresh'), restored), { message: /already voided/ }, 'the restored state decides as the folded one');
  t.deepEqual(walletDecider.decide(redeemReward('i1'), restored), [], 'a retried redemption is still recognised');
});
