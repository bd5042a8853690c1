import test from 'ava';
import fc from 'fast-check';
import { fold } from '../../domain/shared/decider.ts';
import { MAX_BALANCE_POINTS, MAX_CREDIT_POINTS, pointsDelta, walletDecider, walletSnapshots, type WalletCommand, type WalletEvent, type WalletState } from '../../domain/wallets/wallet.ts';
import { expiringBy, expiryDue, periodOf, timelineOf, type ExpiryPolicy } from '../../domain/wallets/expiry.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const spec = deciderSpec(walletDecider);
const owner = { walletId: 'w1', tenantId: 't1', consumerId: 'c1' };

const credited = (paymentId: string, points: number, via: 'purchase' | 'claim' = 'purchase'): WalletEvent => ({
  type: 'PointsCredited',
  data: { ...owner, paymentId, points, ruleId: 'r1', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via },
});
const credit = (paymentId: string, points: number): WalletCommand => {
  const { data } = credited(paymentId, points) as Extract<WalletEvent, { type: 'PointsCredited' }>;
  return { type: 'CreditPoints', ...data };
};
const reversed = (refundId: string, points: number, fromExpired = 0, paymentId = 'p1'): WalletEvent => ({
  type: 'PointsReversed',
  data: { ...owner, paymentId, refundId, points, fromExpired },
});
const expired = (points: number, period = '2026-02-01'): WalletEvent => ({
  type: 'PointsExpired',
  data: { ...owner, points, period, rule: 'earned', policyVersion: 1, asOf: `${period}T03:00:00.000Z` },
});
const reverse = (paymentId: string, refundId: string, points: number): WalletCommand => ({ type: 'ReversePoints', ...owner, paymentId, refundId, points });
const redeem = (points: number, idempotencyKey = 'k1', reference: string | null = null): WalletCommand => ({
  type: 'RedeemPoints',
  walletId: 'w1',
  points,
  idempotencyKey,
  reference,
  by: 'merchant-1',
});
const redeemed = (points: number, idempotencyKey = 'k1', reference: string | null = null): WalletEvent => ({
  type: 'PointsRedeemed',
  data: { ...owner, points, idempotencyKey, reference, redeemedBy: 'merchant-1' },
});
const adjust = (points: number, idempotencyKey: string | null = null, reason = 'goodwill'): WalletCommand => ({
  type: 'AdjustPoints',
  walletId: 'w1',
  points,
  reason,
  by: 'admin-1',
  idempotencyKey,
});
const adjusted = (points: number, idempotencyKey: string | null = null, reason = 'goodwill'): WalletEvent => ({
  type: 'PointsAdjusted',
  data: { ...owner, points, reason, adjustedBy: 'admin-1', adjustedAs: 'admin', idempotencyKey },
});

test('a payment is credited once, however often it is delivered', (t) => {
  spec(t).given().when(credit('p1', 40)).then([credited('p1', 40)]);
  spec(t).given(credited('p1', 40)).when(credit('p1', 40)).thenNothing();
  spec(t).given(credited('p1', 40)).when(credit('p2', 5)).then([credited('p2', 5)]);
});

test('a refund is reversed once, and may take the balance below zero', (t) => {
  const reverse: WalletCommand = { type: 'ReversePoints', ...owner, paymentId: 'p1', refundId: 'rf1', points: 40 };
  spec(t).given(credited('p1', 40), redeemed(30)).when(reverse).then([reversed('rf1', 40)]);
  spec(t).given(credited('p1', 40), reversed('rf1', 40)).when(reverse).thenNothing();
  t.is(fold(walletDecider, [credited('p1', 40), redeemed(30), reversed('rf1', 40)]).balance, -30);
});

test('a redemption takes points while the balance covers them, never more', (t) => {
  spec(t).given(credited('p1', 100)).when(redeem(100, 'k1', 'order 7')).then([redeemed(100, 'k1', 'order 7')]);
  spec(t).given(credited('p1', 100)).when(redeem(101)).thenThrows('INSUFFICIENT_POINTS', /has 100 points; 101 were asked/);
  spec(t).given(credited('p1', 100), redeemed(60)).when(redeem(50, 'k2')).thenThrows('INSUFFICIENT_POINTS');
  spec(t).given(credited('p1', 40), redeemed(30), reversed('rf1', 40)).when(redeem(1, 'k2')).thenThrows('INSUFFICIENT_POINTS', /has -30 points/);
});

test('a wallet with no history cannot be redeemed from or adjusted', (t) => {
  spec(t).given().when(redeem(1)).thenThrows('NOT_FOUND');
  spec(t).given().when(adjust(10)).thenThrows('NOT_FOUND');
});

test('a repeated idempotency key changes nothing; with another request it is refused', (t) => {
  spec(t).given(credited('p1', 100), redeemed(10)).when(redeem(10)).thenNothing();
  spec(t).given(credited('p1', 100), redeemed(10)).when(redeem(11)).thenThrows('IDEMPOTENCY_KEY_REUSED', /new key/);
  spec(t).given(credited('p1', 100), redeemed(10, 'k1', 'a')).when(redeem(10, 'k1', 'b')).thenThrows('IDEMPOTENCY_KEY_REUSED');
  spec(t).given(credited('p1', 100), redeemed(10)).when(adjust(10, 'k1')).thenThrows('IDEMPOTENCY_KEY_REUSED', /another|different/);
  spec(t).given(credited('p1', 100), adjusted(-5, 'k9')).when(adjust(-5, 'k9')).thenNothing();
  spec(t).given(credited('p1', 100), adjusted(-5, 'k9')).when(adjust(-5, 'k9', 'other reason')).thenThrows('IDEMPOTENCY_KEY_REUSED');
  spec(t).given(credited('p1', 100), adjusted(-5, 'k9')).when(redeem(5, 'k9')).thenThrows('IDEMPOTENCY_KEY_REUSED');
});

test('a replayed redemption is answered even when the balance is now short', (t) => {
  spec(t).given(credited('p1', 10), redeemed(10)).when(redeem(10)).thenNothing();
});

test('an adjustment records the admin and the reason; without a key each one counts', (t) => {
  spec(t).given(credited('p1', 10)).when(adjust(-25, null, 'duplicate credit')).then([adjusted(-25, null, 'duplicate credit')]);
  spec(t).given(credited('p1', 10), adjusted(5)).when(adjust(5)).then([adjusted(5)]);
});

test('the state folds balances and lifetime totals; pointsDelta signs each event', (t) => {
  const history = [credited('p1', 100), credited('p2', 20, 'claim'), redeemed(30), reversed('rf1', 20), adjusted(-5)];
  const state = fold(walletDecider, history);
  t.like(state, { ...owner, balance: 65, lifetimeEarned: 100, lifetimeRedeemed: 30 });
  t.deepEqual(history.map(pointsDelta), [100, 20, -30, -20, -5]);
  t.is(history.map(pointsDelta).reduce((a, b) => a + b, 0), state.balance, 'the balance is the sum of the signed deltas');
});

test('bounds: a credit above 10^9 or one taking the balance past 10^12 is recorded as refused and not applied', (t) => {
  const refused = (paymentId: string, points: number, reason: 'credit_above_limit' | 'balance_above_limit', limit: number): WalletEvent => ({
    type: 'PointsCreditRefused',
    data: { ...owner, paymentId, points, reason, limit },
  });
  spec(t).given().when(credit('p-big', MAX_CREDIT_POINTS + 1)).then([refused('p-big', MAX_CREDIT_POINTS + 1, 'credit_above_limit', MAX_CREDIT_POINTS)]);
  spec(t).given().when(credit('p-max', MAX_CREDIT_POINTS)).then([credited('p-max', MAX_CREDIT_POINTS)]);
  spec(t).given().when(credit('p-huge', 5e15 + 1)).then([refused('p-huge', 5e15 + 1, 'credit_above_limit', MAX_CREDIT_POINTS)]);
  const nearlyFull: WalletEvent = { type: 'PointsAdjusted', data: { ...owner, points: MAX_BALANCE_POINTS - 10, reason: 'x', adjustedBy: 'a', adjustedAs: 'admin', idempotencyKey: null } };
  spec(t).given(credited('p0', 1), nearlyFull).when(credit('p1', 10)).then([refused('p1', 10, 'balance_above_limit', MAX_BALANCE_POINTS)]);
  spec(t).given(credited('p0', 1), nearlyFull, refused('p1', 10, 'balance_above_limit', MAX_BALANCE_POINTS)).when(credit('p1', 10)).thenNothing();
  const state = fold(walletDecider, [credited('p0', 1), refused('p-big', MAX_CREDIT_POINTS + 1, 'credit_above_limit', MAX_CREDIT_POINTS)]);
  t.is(state.balance, 1, 'a refused credit changes no balance');
  // Its payment refunded: none of its points were added, so none are taken back.
  const refund: WalletCommand = { type: 'ReversePoints', ...owner, paymentId: 'p-big', refundId: 'rf-big', points: MAX_CREDIT_POINTS + 1 };
  spec(t).given(credited('p0', 1), refused('p-big', MAX_CREDIT_POINTS + 1, 'credit_above_limit', MAX_CREDIT_POINTS)).when(refund).thenNothing();
  spec(t).given(credited('p0', 1), nearlyFull).when(adjust(10)).thenThrows('UNPROCESSABLE', /within ±1000000000000/);
  spec(t).given(credited('p0', 1)).when(adjust(-MAX_BALANCE_POINTS - 2)).thenThrows('UNPROCESSABLE');
});

/** A wallet's history as the log records it: each event with when it was recorded. */
function decideAt(history: { event: WalletEvent; at: Date }[], command: WalletCommand, at: Date): void {
  const state = history.reduce<WalletState>((s, h) => walletDecider.evolve(s, h.event), walletDecider.initialState);
  for (const event of walletDecider.decide(command, state)) history.push({ event, at });
}

test('a refund after its purchase\'s points expired takes them from the expired points, not a second time from newer points', (t) => {
  const policy: ExpiryPolicy = { version: 1, earnedMonths: 12, inactivityMonths: null, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true, timeZone: 'UTC' };
  const history: { event: WalletEvent; at: Date }[] = [];
  decideAt(history, credit('old', 100), new Date('2025-01-10T12:00:00Z'));
  decideAt(history, credit('new', 100), new Date('2026-01-20T12:00:00Z'));
  // The run of 2026-02-01 takes the old purchase's 100 points (earned January 2025, 12 months).
  const asOf = new Date('2026-02-01T03:00:00Z');
  const due = expiryDue(timelineOf(history), policy, asOf);
  t.is(due.points, 100);
  const expire: WalletCommand = { type: 'ExpirePoints', walletId: 'w1', period: periodOf(asOf), points: due.points, rule: due.rule, policyVersion: 1, asOf: asOf.toISOString(), atEventCount: history.length };
  decideAt(history, expire, asOf);
  // Then the old purchase is returned: its 100 points had already gone, the new purchase's stay.
  decideAt(history, reverse('old', 'rf1', 100), new Date('2026-02-05T12:00:00Z'));
  t.like(history.at(-1)?.event, { type: 'PointsReversed', data: { paymentId: 'old', points: 100, fromExpired: 100 } });
  const state = fold(walletDecider, history.map((h) => h.event));
  t.like(state, { balance: 100, lifetimeEarned: 200, lifetimeExpired: 100 }, 'the expired points stay counted as earned and expired; nothing more left the balance');
  t.is(history.map((h) => pointsDelta(h.event)).reduce((a, b) => a + b, 0), state.balance, 'the ledger\'s deltas explain the balance');
  // And the new purchase's points keep their own date: nothing of them is due before January 2027 ends.
  t.is(expiryDue(timelineOf(history), policy, new Date('2027-01-31T03:00:00Z')).points, 0);
  t.is(expiryDue(timelineOf(history), policy, new Date('2027-02-01T03:00:00Z')).points, 100);
});

test('a refund takes its purchase\'s expired points first and the rest from the balance; a second refund finds none left to absorb', (t) => {
  // 100 earned, 30 of them expired (the oldest held are this purchase's): a refund of 50 absorbs the 30, takes 20.
  spec(t).given(credited('p1', 100), expired(30)).when(reverse('p1', 'rf1', 50)).then([reversed('rf1', 50, 30)]);
  const after = fold(walletDecider, [credited('p1', 100), expired(30), reversed('rf1', 50, 30)]);
  t.like(after, { balance: 50, lifetimeEarned: 80, lifetimeExpired: 30 });
  spec(t).given(credited('p1', 100), expired(30), reversed('rf1', 50, 30)).when(reverse('p1', 'rf2', 50)).then([reversed('rf2', 50, 0)]);
  // Spent points are not expired points: a refund after a redemption still takes them from the balance, below zero.
  spec(t).given(credited('p1', 100), redeemed(60), expired(40)).when(reverse('p1', 'rf1', 100)).then([reversed('rf1', 100, 40)]);
  t.is(fold(walletDecider, [credited('p1', 100), redeemed(60), expired(40), reversed('rf1', 100, 40)]).balance, -60);
  // Another purchase's expired points are not this one's; points added by an adjustment belong to no purchase.
  spec(t).given(credited('p1', 100), credited('p2', 100), expired(100)).when(reverse('p2', 'rf1', 100)).then([reversed('rf1', 100, 0, 'p2')]);
  spec(t).given(adjusted(50), credited('p1', 100), expired(80)).when(reverse('p1', 'rf1', 100)).then([reversed('rf1', 100, 30)]);
});

test('a wallet snapshot keeps which payments\' points expired: the state read back from it decides a refund the same', (t) => {
  const history = [credited('p1', 100), adjusted(10), credited('p2', 50), expired(120), reversed('rf0', 20, 0, 'p2')];
  const state = fold(walletDecider, history);
  const restored = walletSnapshots.fromJson(JSON.parse(JSON.stringify(walletSnapshots.toJson(state))));
  for (const payment of ['p1', 'p2']) {
    t.deepEqual(walletDecider.decide(reverse(payment, 'rf9', 100), restored), walletDecider.decide(reverse(payment, 'rf9', 100), state), payment);
  }
  t.like(walletDecider.decide(reverse('p1', 'rf9', 100), state)[0], { data: { fromExpired: 100 } });
  t.like(walletDecider.decide(reverse('p2', 'rf9', 100), state)[0], { data: { fromExpired: 10 } });
  t.deepEqual(restored.expiredEverByLot.entries(), [[0, 100], [1, 10], [2, 10]], 'the adjustment’s expired points too');
});

/** A 100-point reward issued at `now` (it locks the oldest 100 points until redeemed, voided or expired). */
const issueCoffee = (now: string, expiresAt: string, points = 100, issuedRewardId = 'ir1', idempotencyKey = 'k-issue'): WalletCommand => ({
  type: 'IssueReward', walletId: 'w1', issuedRewardId, reward: { rewardId: 'rw', version: 1, name: 'Coffee', points },
  idempotencyKey, by: 'merchant-1', now, expiresAt,
});

test('an expiry while a reward locks the oldest points is put on the points it took: each refund then takes back what it should', (t) => {
  const policy: ExpiryPolicy = { version: 1, earnedMonths: 12, inactivityMonths: null, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true, timeZone: 'UTC' };
  const history: { event: WalletEvent; at: Date }[] = [];
  decideAt(history, credit('p0', 100), new Date('2025-01-10T12:00:00Z'));
  decideAt(history, credit('p1', 100), new Date('2025-02-10T12:00:00Z'));
  decideAt(history, credit('p2', 100), new Date('2026-01-10T12:00:00Z'));
  // A 100-point reward locks the oldest points (p0's), which never expire while locked.
  decideAt(history, issueCoffee('2026-02-15T12:00:00.000Z', '2027-02-15T12:00:00.000Z'), new Date('2026-02-15T12:00:00Z'));
  // The run of 2026-03-02 finds p1's 100 points due (p0's are locked) and expires them.
  const asOf = new Date('2026-03-02T03:00:00Z');
  const due = expiryDue(timelineOf(history), policy, asOf);
  t.is(due.points, 100);
  const expire: WalletCommand = { type: 'ExpirePoints', walletId: 'w1', period: periodOf(asOf), points: due.points, rule: due.rule, policyVersion: 1, asOf: asOf.toISOString(), atEventCount: history.length };
  decideAt(history, expire, asOf);
  const state = fold(walletDecider, history.map((h) => h.event));
  t.is(state.expiredByPayment.get('p1'), 100, 'the expiry took p1’s points');
  t.is(state.expiredByPayment.get('p0'), 0, 'not the locked ones');
  // p0 returned: its points are still in the balance (locked), so the refund takes them from it.
  const p0 = walletDecider.decide(reverse('p0', 'rf0', 100), state);
  t.like(p0[0], { type: 'PointsReversed', data: { paymentId: 'p0', points: 100, fromExpired: 0 } });
  // p1 returned: its points had expired, so nothing more leaves the balance.
  const p1 = walletDecider.decide(reverse('p1', 'rf1', 100), state);
  t.like(p1[0], { type: 'PointsReversed', data: { paymentId: 'p1', points: 100, fromExpired: 100 } });
});

/**
 * The daily run at `at` as domain/program/expiry-run.ts makes it: the issued rewards past their time first, then the
 * points due under `policy`; answers the points expired.
 */
function runExpiry(history: { event: WalletEvent; at: Date }[], policy: ExpiryPolicy, at: string): number {
  const asOf = new Date(at);
  const state = fold(walletDecider, history.map((h) => h.event));
  for (const [issuedRewardId] of state.issuedRewards.entries()) decideAt(history, { type: 'ExpireReward', walletId: 'w1', issuedRewardId, now: at }, asOf);
  const due = expiryDue(timelineOf(history), policy, asOf);
  if (due.points > 0) {
    decideAt(history, { type: 'ExpirePoints', walletId: 'w1', period: periodOf(asOf), points: due.points, rule: due.rule, policyVersion: 1, asOf: asOf.toISOString(), atEventCount: history.length }, asOf);
  }
  return due.points;
}

test('after an expiry took points behind a reward’s, the reward voided: the next expiry takes the reward’s purchase, and its refund nothing more', (t) => {
  const policy: ExpiryPolicy = { version: 1, earnedMonths: 12, inactivityMonths: null, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true, timeZone: 'UTC' };
  const history: { event: WalletEvent; at: Date }[] = [];
  const run = (at: string) => runExpiry(history, policy, at);
  decideAt(history, credit('a', 100), new Date('2025-01-10T12:00:00Z'));
  decideAt(history, credit('b', 100), new Date('2025-03-10T12:00:00Z'));
  decideAt(history, issueCoffee('2025-12-01T12:00:00.000Z', '2027-12-01T12:00:00.000Z'), new Date('2025-12-01T12:00:00Z'));
  decideAt(history, credit('c', 100), new Date('2026-03-20T12:00:00Z'));
  t.is(run('2026-04-01T03:00:00Z'), 100, 'b’s points (a’s are locked)');
  decideAt(history, { type: 'VoidReward', walletId: 'w1', issuedRewardId: 'ir1', reason: null, by: 'merchant-1' }, new Date('2026-04-05T12:00:00Z'));
  t.is(run('2026-04-06T03:00:00Z'), 100, 'a’s points, unlocked and long due');
  const state = fold(walletDecider, history.map((h) => h.event));
  t.is(state.expiredByPayment.get('a'), 100);
  t.is(state.expiredByPayment.get('b'), 100, 'b only ever earned 100');
  t.is(state.balance, 100, 'c’s points');
  t.like(walletDecider.decide(reverse('a', 'rf-a', 100), state)[0], { data: { fromExpired: 100 } }, 'refunding a leaves c’s points');
  // c's points keep their own date.
  t.is(expiryDue(timelineOf(history), policy, new Date('2027-03-31T03:00:00Z')).points, 0);
  t.is(expiryDue(timelineOf(history), policy, new Date('2027-04-01T03:00:00Z')).points, 100);
});

test('an adjustment’s expired points are put on its own lot: a purchase a reward locked, expired after it, is refunded from the expired points', (t) => {
  const policy: ExpiryPolicy = { version: 1, earnedMonths: 12, inactivityMonths: null, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true, timeZone: 'UTC' };
  const history: { event: WalletEvent; at: Date }[] = [];
  decideAt(history, credit('p1', 100), new Date('2025-01-10T12:00:00Z'));
  decideAt(history, adjust(100, 'k-visit', 'visit without the phone'), new Date('2025-02-10T12:00:00Z'));
  decideAt(history, credit('p3', 100), new Date('2026-01-10T12:00:00Z'));
  // A 100-point reward locks the oldest points (p1's, due 2026-02-01) until 2026-03-31.
  decideAt(history, issueCoffee('2026-01-15T12:00:00.000Z', '2026-03-31T12:00:00.000Z'), new Date('2026-01-15T12:00:00Z'));
  t.is(runExpiry(history, policy, '2026-03-02T00:00:00.000Z'), 100, 'the adjustment’s points (p1’s are locked)');
  let state = fold(walletDecider, history.map((h) => h.event));
  t.like(state, { balance: 200, locked: 100 });
  t.deepEqual(state.expiredEverByLot.entries(), [[1, 100]], 'put on the adjustment’s lot');
  // What the customer is told is coming: p1's points, taken when the reward's time runs out.
  const locking = state.issuedRewards.entries().map(([, reward]) => reward);
  t.deepEqual(expiringBy(timelineOf(history), policy, new Date('2026-04-01T00:00:00Z'), locking, new Date('2026-03-02T00:00:00Z')), { points: 100, at: '2026-03-31T12:00:00.000Z' });
  t.is(runExpiry(history, policy, '2026-04-02T00:00:00.000Z'), 100, 'the reward expired, then p1’s points');
  state = fold(walletDecider, history.map((h) => h.event));
  t.like(state, { balance: 100, locked: 0 });
  t.is(state.expiredByPayment.get('p1'), 100, 'p1’s points expired (until 2026-12-08 the expiry was put on the adjustment again)');
  decideAt(history, reverse('p1', 'rf1', 100), new Date('2026-04-05T00:00:00Z'));
  t.like(history.at(-1)?.event, { type: 'PointsReversed', data: { paymentId: 'p1', points: 100, fromExpired: 100 } });
  t.is(fold(walletDecider, history.map((h) => h.event)).balance, 100, 'p3’s points stay');
  // p3's points keep their own date.
  t.is(expiryDue(timelineOf(history), policy, new Date('2027-01-31T00:00:00Z')).points, 0);
  t.is(expiryDue(timelineOf(history), policy, new Date('2027-02-01T00:00:00Z')).points, 100);
});

test('property: an expiry takes the oldest points held after the locked ones, each lot’s own, and a refund then never takes them twice', (t) => {
  // Nothing is spent (no redemption, no correction): the points held of each lot are its points less what expired of
  // it, rewards lock the oldest of them, and an expiry takes the oldest after those. The model below says so of each
  // lot, purchase or adjustment; the wallet must put each expiry on the same purchases.
  // Amounts in steps of 50, so that a reward covers whole lots and an expiry whole lots after it as often as not.
  const points = fc.integer({ min: 1, max: 4 }).map((n) => n * 50);
  const op = fc.oneof(
    fc.record({ type: fc.constant('credit' as const), points }),
    fc.record({ type: fc.constant('adjust' as const), points }),
    fc.record({ type: fc.constant('issue' as const), points, reward: fc.integer({ min: 0, max: 1 }) }),
    fc.record({ type: fc.constant('void' as const), reward: fc.integer({ min: 0, max: 1 }) }),
    fc.record({ type: fc.constant('expire' as const), points }),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(op, { maxLength: 14 }), (ops) => {
        let state = fold(walletDecider, [credited('p0', 50)]);
        const lots = [{ paymentId: 'p0' as string | null, points: 50, expired: 0 }];
        const apply = (command: WalletCommand) => {
          try {
            state = walletDecider.decide(command, state).reduce(walletDecider.evolve, state);
          } catch (error) {
            if (!['INSUFFICIENT_POINTS', 'NOT_FOUND', 'REWARD_NOT_ISSUED', 'CONFLICT'].includes((error as { code?: string }).code ?? '')) throw error;
          }
        };
        ops.forEach((o, i) => {
          if (o.type === 'credit' || o.type === 'adjust') {
            lots.push({ paymentId: o.type === 'credit' ? `p${i + 1}` : null, points: o.points, expired: 0 });
            apply(o.type === 'credit' ? credit(`p${i + 1}`, o.points) : adjust(o.points, `k${i}`));
          } else if (o.type === 'issue') apply(issueCoffee('2026-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', o.points, `ir${o.reward}`, `k${i}`));
          else if (o.type === 'void') apply({ type: 'VoidReward', walletId: 'w1', issuedRewardId: `ir${o.reward}`, reason: null, by: 'm' });
          else {
            const { locked, lifetimeExpired } = state;
            apply({ type: 'ExpirePoints', walletId: 'w1', period: `run-${i}`, points: o.points, rule: 'earned', policyVersion: 1, asOf: '2026-06-01T00:00:00.000Z', atEventCount: state.eventCount });
            let skip = locked;
            let left = state.lifetimeExpired - lifetimeExpired;
            for (const lot of lots) {
              const kept = Math.min(lot.points - lot.expired, skip);
              const took = Math.min(lot.points - lot.expired - kept, left);
              skip -= kept;
              left -= took;
              lot.expired += took;
            }
          }
        });
        lots.forEach((lot, key) => {
          if (state.expiredEverByLot.get(key) !== lot.expired) throw new Error(`lot ${key}: ${lot.expired} expired, the wallet says ${state.expiredEverByLot.get(key)}`);
          if (lot.paymentId && state.expiredByPayment.get(lot.paymentId) !== lot.expired) throw new Error(`${lot.paymentId}: ${lot.expired} expired, the wallet says ${state.expiredByPayment.get(lot.paymentId)}`);
        });
        for (const lot of lots) if (lot.paymentId) apply(reverse(lot.paymentId, `rf-${lot.paymentId}`, lot.points));
        const adjustmentsHeld = lots.filter((lot) => !lot.paymentId).reduce((sum, lot) => sum + lot.points - lot.expired, 0);
        if (state.balance !== adjustmentsHeld) throw new Error(`refunding every purchase left ${state.balance}, not the adjustments’ ${adjustmentsHeld}`);
      }),
      { numRuns: 3_000 },
    ),
  );
});
