/** Points expiry, pure: first earned, first spent; locked points never expire; no retroactive expiry unless confirmed. */
import test from 'ava';
import fc from 'fast-check';
import { addMonths, expiresAfter, expiringBy, expiryDue, lessReversals, remainingLots, timelineOf, type ExpiryPolicy, type WalletTimeline } from '../../domain/wallets/expiry.ts';
import { fold } from '../../domain/shared/decider.ts';
import { localMidnight, wallClock } from '../../domain/shared/time-zone.ts';
import { walletDecider, type WalletCommand, type WalletEvent } from '../../domain/wallets/wallet.ts';

const d = (iso: string) => new Date(iso);
const policy = (over: Partial<ExpiryPolicy> = {}): ExpiryPolicy => ({
  version: 1,
  earnedMonths: 12,
  inactivityMonths: null,
  effectiveFrom: '2025-01-01T00:00:00.000Z',
  retroactive: false,
  timeZone: 'UTC',
  ...over,
});
const timeline = (over: Partial<WalletTimeline> = {}): WalletTimeline => ({
  credits: [
    { at: d('2025-02-01T10:00:00Z'), points: 100 },
    { at: d('2025-06-01T10:00:00Z'), points: 50 },
  ],
  balance: 150,
  locked: 0,
  lastActivityAt: d('2025-06-01T10:00:00Z'),
  ...over,
});

test('months are calendar months in UTC; the 31st lands on the last day of a shorter month', (t) => {
  t.is(addMonths(d('2025-01-31T08:00:00Z'), 1).toISOString(), '2025-02-28T08:00:00.000Z');
  t.is(addMonths(d('2024-02-29T00:00:00Z'), 12).toISOString(), '2025-02-28T00:00:00.000Z');
  t.is(addMonths(d('2025-11-15T00:00:00Z'), 3).toISOString(), '2026-02-15T00:00:00.000Z');
});

test('points are valid through the last day of the month they expire in, as in Square Loyalty', (t) => {
  // Square's own example: earned on July 6, 2020 with P12M, they expire on August 1, 2021.
  t.is(expiresAfter(d('2020-07-06T15:00:00Z'), 12, 'UTC').toISOString(), '2021-08-01T00:00:00.000Z');
  t.is(expiresAfter(d('2025-12-31T23:00:00Z'), 1, 'UTC').toISOString(), '2026-02-01T00:00:00.000Z');
});

test("deadlines follow the workspace's calendar: 00:00 local time on the first day of the month after, daylight saving included", (t) => {
  const NEW_YORK = 'America/New_York';
  // Summer time (UTC−4): earned 10 May with 2 months, valid through 31 July, gone at midnight in New York.
  t.is(expiresAfter(d('2026-05-10T15:00:00Z'), 2, NEW_YORK).toISOString(), '2026-08-01T04:00:00.000Z');
  // Winter time (UTC−5): earned 10 October with 2 months, valid through 31 December.
  t.is(expiresAfter(d('2026-10-10T12:00:00Z'), 2, NEW_YORK).toISOString(), '2027-01-01T05:00:00.000Z');
  // 22:00 on 30 June in New York is 1 July in UTC: the local date counts (June plus 1 month: valid through July).
  t.is(expiresAfter(d('2026-07-01T02:00:00Z'), 1, NEW_YORK).toISOString(), '2026-08-01T04:00:00.000Z');
  // 01:00 on 1 February in Tokyo (UTC+9) is still 31 January in UTC: valid through March, gone at midnight in Tokyo.
  t.is(expiresAfter(d('2026-01-31T16:00:00Z'), 1, 'Asia/Tokyo').toISOString(), '2026-03-31T15:00:00.000Z');
  // The 31st of January plus 1 month is the last day of February: gone on 1 March.
  t.is(expiresAfter(d('2026-01-31T12:00:00Z'), 1, NEW_YORK).toISOString(), '2026-03-01T05:00:00.000Z');
});

test('where daylight saving skips the midnight, points expire at the first instant after it', (t) => {
  // Havana, 1 April 2012: 23:59:59 on 31 March (UTC−5), then 01:00 (UTC−4). Node's time-zone database says so:
  t.is(new Intl.DateTimeFormat('en-GB', { timeZone: 'America/Havana', timeStyle: 'medium' }).format(d('2012-04-01T04:59:59Z')), '23:59:59');
  t.is(new Intl.DateTimeFormat('en-GB', { timeZone: 'America/Havana', timeStyle: 'medium' }).format(d('2012-04-01T05:00:00Z')), '01:00:00');
  t.is(expiresAfter(d('2012-02-15T12:00:00Z'), 1, 'America/Havana').toISOString(), '2012-04-01T05:00:00.000Z');
});

test('UTC deadlines are what they were, whichever way the zone is named', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.date({ min: d('2000-01-01T00:00:00Z'), max: d('2090-12-31T23:59:59Z'), noInvalidDate: true }), fc.integer({ min: 1, max: 60 }), (start, months) => {
        const before = addMonths(start, months);
        const expected = Date.UTC(before.getUTCFullYear(), before.getUTCMonth() + 1, 1);
        return expiresAfter(start, months, 'UTC').getTime() === expected && expiresAfter(start, months, 'Etc/UTC').getTime() === expected;
      }),
    ),
  );
});

test('property: a deadline is midnight on the first of the month after the local month of the start plus the months, in every zone', (t) => {
  const zones = ['America/New_York', 'Asia/Tokyo', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/Havana', 'Australia/Lord_Howe', 'Asia/Kathmandu'];
  t.notThrows(() =>
    fc.assert(
      fc.property(
        fc.date({ min: d('1990-01-01T00:00:00Z'), max: d('2060-12-31T23:59:59Z'), noInvalidDate: true }),
        fc.integer({ min: 1, max: 60 }),
        fc.constantFrom(...zones),
        (start, months, zone) => {
          const local = wallClock(start, zone);
          return expiresAfter(start, months, zone).getTime() === localMidnight(local.year, local.month + months + 1, 1, zone).getTime();
        },
      ),
      { numRuns: 2000 },
    ),
  );
});

test("a wallet's points are due at the policy's local midnight, not UTC's", (t) => {
  const ny = policy({ earnedMonths: 1, retroactive: true, timeZone: 'America/New_York' });
  const wallet = timeline({ credits: [{ at: d('2026-06-10T15:00:00Z'), points: 100 }], balance: 100, lastActivityAt: null });
  t.like(expiryDue(wallet, ny, d('2026-08-01T00:00:00Z')), { points: 0 }, '20:00 on 31 July in New York: still valid');
  t.like(expiryDue(wallet, ny, d('2026-08-01T04:00:00Z')), { points: 100 }, 'midnight in New York');
  t.like(expiryDue(wallet, policy({ earnedMonths: 1, retroactive: true }), d('2026-08-01T00:00:00Z')), { points: 100 }, 'a UTC policy: midnight UTC');
});

test('what remains is the newest credits covering the balance: spending took the oldest first', (t) => {
  const credits = timeline().credits;
  t.deepEqual(remainingLots(credits, 150).map((l) => l.points), [100, 50]);
  t.deepEqual(remainingLots(credits, 80).map((l) => l.points), [30, 50]);
  t.deepEqual(remainingLots(credits, 20).map((l) => l.points), [20]);
  t.deepEqual(remainingLots(credits, 0), []);
  t.deepEqual(remainingLots(credits, -5), []);
});

test('points expire the given months after they were earned, at the end of that month', (t) => {
  t.like(expiryDue(timeline(), policy(), d('2026-02-28T23:59:59Z')), { points: 0 });
  t.like(expiryDue(timeline(), policy(), d('2026-03-01T00:00:00Z')), { points: 100, rule: 'earned' });
  t.like(expiryDue(timeline({ balance: 80 }), policy(), d('2026-03-01T00:00:00Z')), { points: 30 }, 'only what is left of the old credit');
  t.like(expiryDue(timeline(), policy(), d('2026-07-01T00:00:00Z')), { points: 150 });
});

test('points locked in an issued reward never expire while locked', (t) => {
  t.like(expiryDue(timeline({ locked: 120 }), policy(), d('2026-07-02T00:00:00Z')), { points: 30 });
  t.like(expiryDue(timeline({ locked: 150 }), policy(), d('2026-07-02T00:00:00Z')), { points: 0 });
  // The locked points are the oldest (redeeming the reward spends the oldest first): when only the oldest credit is
  // due, a reward locking it leaves nothing to expire, whether the run comes before the redemption or after.
  t.like(expiryDue(timeline({ locked: 100 }), policy(), d('2026-03-01T00:00:00Z')), { points: 0, dueSince: null });
  t.like(expiryDue(timeline({ locked: 60 }), policy(), d('2026-03-01T00:00:00Z')), { points: 40 }, 'the unlocked part of the oldest credit');
  t.like(expiryDue(timeline({ locked: 100 }), policy(), d('2026-07-01T00:00:00Z')), { points: 50 });
});

test('a policy counts existing points from when it was set, unless the merchant confirmed applying it to them', (t) => {
  const setLater = policy({ effectiveFrom: '2025-09-01T00:00:00.000Z' });
  t.like(expiryDue(timeline(), setLater, d('2026-09-30T00:00:00Z')), { points: 0 }, 'nothing expires before the policy is 12 months old');
  t.like(expiryDue(timeline(), setLater, d('2026-10-01T00:00:00Z')), { points: 150 });
  t.like(expiryDue(timeline(), { ...setLater, retroactive: true }, d('2026-03-01T00:00:00Z')), { points: 100 }, 'confirmed: from the earn date');
});

test('the inactivity rule expires everything after the months without earning or spending', (t) => {
  const inactive = policy({ earnedMonths: null, inactivityMonths: 6 });
  t.like(expiryDue(timeline(), inactive, d('2025-12-31T00:00:00Z')), { points: 0 });
  t.like(expiryDue(timeline(), inactive, d('2026-01-01T00:00:00Z')), { points: 150, rule: 'inactivity' });
  const both = policy({ earnedMonths: 12, inactivityMonths: 24 });
  t.like(expiryDue(timeline(), both, d('2026-03-01T00:00:00Z')), { points: 100, rule: 'earned' }, 'whichever comes first');
});

test('expiringSoon: the points due by the end of the window, and the earliest date', (t) => {
  t.deepEqual(expiringBy(timeline(), policy(), d('2026-03-15T00:00:00Z')), { points: 100, at: '2026-03-01T00:00:00.000Z' });
  t.deepEqual(expiringBy(timeline(), policy(), d('2026-02-15T00:00:00Z')), { points: 0, at: null });
  t.deepEqual(expiringBy(timeline(), null, d('2030-01-01T00:00:00Z')), { points: 0, at: null });
  t.deepEqual(expiringBy(timeline(), policy(), d('2026-03-15T00:00:00Z'), [], d('2026-03-10T00:00:00Z')), { points: 100, at: '2026-03-10T00:00:00.000Z' }, 'already due (a reward voided after they came due): taken by the next run, not in the past');
});

test('expiringSoon counts the points a reward locks when the reward\'s time runs out in the window: the run that expires it takes them', (t) => {
  const owner = { walletId: 'w1', tenantId: 't1', consumerId: 'c1' };
  const strict = policy({ effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true });
  const history: { event: WalletEvent; at: Date }[] = [];
  const decideAt = (command: WalletCommand, at: Date) => {
    for (const event of walletDecider.decide(command, fold(walletDecider, history.map((h) => h.event)))) history.push({ event, at });
  };
  decideAt({ type: 'CreditPoints', ...owner, paymentId: 'old', points: 100, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 10_000, via: 'purchase' }, d('2025-01-10T12:00:00Z'));
  // A reward issued on 2026-01-15 locks the 100 points (due 2026-02-01) until it expires on 2026-02-10.
  const reward = { rewardId: 'rw', version: 1, name: 'Coffee', points: 100 };
  decideAt({ type: 'IssueReward', walletId: 'w1', issuedRewardId: 'i1', reward, idempotencyKey: 'k', by: 'm', now: '2026-01-15T00:00:00.000Z', expiresAt: '2026-02-10T00:00:00.000Z' }, d('2026-01-15T00:00:00Z'));
  const state = fold(walletDecider, history.map((h) => h.event));
  const locking = state.issuedRewards.entries().filter(([id]) => !state.settledRewards.has(id)).map(([, r]) => r);
  const soon = expiringBy(timelineOf(history), strict, d('2026-03-07T00:00:00Z'), locking);
  t.deepEqual(soon, { points: 100, at: '2026-02-10T00:00:00.000Z' }, 'on 2026-02-05: 100 points, taken when the reward expires (their own date is past)');
  t.deepEqual(expiringBy(timelineOf(history), strict, d('2026-02-09T00:00:00Z'), locking), { points: 0, at: null }, 'while the reward still locks them, nothing is taken');
  // The run of 2026-02-10 expires the reward first, then the points: what the wallet answer announced.
  const asOf = d('2026-02-10T03:00:00Z');
  decideAt({ type: 'ExpireReward', walletId: 'w1', issuedRewardId: 'i1', now: asOf.toISOString() }, asOf);
  t.is(expiryDue(timelineOf(history), strict, asOf).points, soon.points);
  // Points due only after the reward expires keep their own date.
  t.deepEqual(
    expiringBy({ credits: [{ at: d('2025-02-20T00:00:00Z'), points: 100 }], balance: 100, locked: 100, lastActivityAt: null }, strict, d('2026-03-15T00:00:00Z'), [{ points: 100, expiresAt: '2026-02-10T00:00:00.000Z' }]),
    { points: 100, at: '2026-03-01T00:00:00.000Z' },
  );
});

test('the timeline of a wallet: credits and positive adjustments earn, every debit spends, rewards lock', (t) => {
  const owner = { walletId: 'w', tenantId: 't', consumerId: 'c' };
  const at = (iso: string) => d(iso);
  const events: { event: WalletEvent; at: Date }[] = [
    { at: at('2025-01-01T00:00:00Z'), event: { type: 'PointsCredited', data: { ...owner, paymentId: 'p', points: 100, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1, via: 'purchase' } } },
    { at: at('2025-02-01T00:00:00Z'), event: { type: 'PointsAdjusted', data: { ...owner, points: 20, reason: 'x', adjustedBy: 'a', adjustedAs: 'merchant', idempotencyKey: null } } },
    { at: at('2025-03-01T00:00:00Z'), event: { type: 'RewardIssued', data: { ...owner, issuedRewardId: 'i', rewardId: 'r', points: 50, rewardVersion: 1, rewardName: 'n', idempotencyKey: 'k', issuedBy: 'u', issuedAt: '', expiresAt: '' } } },
    { at: at('2025-04-01T00:00:00Z'), event: { type: 'PointsAdjusted', data: { ...owner, points: -10, reason: 'x', adjustedBy: 'a', adjustedAs: 'admin', idempotencyKey: null } } },
  ];
  const result = timelineOf(events);
  t.deepEqual(result.credits.map((c) => c.points), [100, 20]);
  t.like(result, { balance: 110, locked: 50 });
  t.is(result.lastActivityAt?.toISOString(), '2025-02-01T00:00:00.000Z', 'neither a reward issued nor a correction that removes points is activity');
  const added = timelineOf([...events, { at: at('2025-05-01T00:00:00Z'), event: { type: 'PointsAdjusted', data: { ...owner, points: 25, reason: 'visit, no phone', adjustedBy: 'a', adjustedAs: 'merchant', idempotencyKey: null } } }]);
  t.is(added.lastActivityAt?.toISOString(), '2025-05-01T00:00:00.000Z', 'points added by an adjustment are activity: the inactivity clock starts again');
  // Under a 12-month inactivity rule, the points added today are not taken tonight with the old ones.
  const inactive = policy({ earnedMonths: null, inactivityMonths: 12, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true });
  t.like(expiryDue(added, inactive, d('2026-04-30T23:00:00Z')), { points: 0 });
  t.like(expiryDue(result, inactive, d('2026-04-30T23:00:00Z')), { points: 60, rule: 'inactivity' }, 'without it, all of it is due');
});

test('issuing a reward is not activity: issued and voided, it keeps no point alive; redeeming one is spending, and is', (t) => {
  const owner = { walletId: 'w1', tenantId: 't1', consumerId: 'c1' };
  const inactive = policy({ earnedMonths: null, inactivityMonths: 6, effectiveFrom: '2024-01-01T00:00:00.000Z', retroactive: true });
  const history: { event: WalletEvent; at: Date }[] = [];
  const decideAt = (command: WalletCommand, at: string) => {
    for (const event of walletDecider.decide(command, fold(walletDecider, history.map((h) => h.event)))) history.push({ event, at: d(at) });
  };
  decideAt({ type: 'CreditPoints', ...owner, paymentId: 'p1', points: 150, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1, via: 'purchase' }, '2025-01-15T12:00:00Z');
  const reward = { rewardId: 'rw', version: 1, name: 'Coffee', points: 10 };
  const issue = (issuedRewardId: string, at: string) =>
    decideAt({ type: 'IssueReward', walletId: 'w1', issuedRewardId, reward, idempotencyKey: `k-${issuedRewardId}`, by: 'm', now: at, expiresAt: '2026-01-01T00:00:00.000Z' }, at);
  issue('i1', '2025-06-20T12:00:00.000Z');
  decideAt({ type: 'VoidReward', walletId: 'w1', issuedRewardId: 'i1', reason: null, by: 'm' }, '2025-06-25T12:00:00Z');
  // Nothing earned or spent since 15 January: with 6 months, valid through July, every point expires on 1 August.
  t.is(timelineOf(history).lastActivityAt?.toISOString(), '2025-01-15T12:00:00.000Z');
  t.like(expiryDue(timelineOf(history), inactive, d('2025-08-01T00:00:00Z')), { points: 150, rule: 'inactivity' });
  // Issued and redeemed: the customer spent 10 points on 10 July; the rest are valid through January 2026.
  issue('i2', '2025-07-05T12:00:00.000Z');
  decideAt({ type: 'RedeemReward', walletId: 'w1', issuedRewardId: 'i2', idempotencyKey: 'k-redeem', by: 'm', now: '2025-07-10T12:00:00.000Z' }, '2025-07-10T12:00:00Z');
  t.is(timelineOf(history).lastActivityAt?.toISOString(), '2025-07-10T12:00:00.000Z');
  t.like(expiryDue(timelineOf(history), inactive, d('2026-01-31T00:00:00Z')), { points: 0 });
  t.like(expiryDue(timelineOf(history), inactive, d('2026-02-01T00:00:00Z')), { points: 140, rule: 'inactivity' });
});

test('a refund takes back its own purchase\'s points, not the oldest: buying and returning does not push old points\' expiry back', (t) => {
  const at = d('2025-01-01T00:00:00Z');
  const credits = [
    { at, points: 100, paymentId: 'a' },
    { at, points: 60, paymentId: 'b' },
    { at, points: 30, paymentId: null },
  ];
  t.deepEqual(lessReversals(credits, new Map([['b', 25]])).map((c) => c.points), [100, 35, 30]);
  t.deepEqual(lessReversals(credits, new Map([['b', 80]])).map((c) => c.points), [100, 0, 30], 'never below 0');
  t.deepEqual(lessReversals(credits, new Map()).map((c) => c.points), [100, 60, 30]);

  const owner = { walletId: 'w', tenantId: 't', consumerId: 'c' };
  const credit = (paymentId: string, points: number): WalletEvent => ({
    type: 'PointsCredited',
    data: { ...owner, paymentId, points, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1, via: 'purchase' },
  });
  const events: { event: WalletEvent; at: Date }[] = [
    { at: d('2025-01-10T00:00:00Z'), event: credit('old', 100) },
    { at: d('2026-02-10T00:00:00Z'), event: credit('new', 100) },
    { at: d('2026-02-12T00:00:00Z'), event: { type: 'PointsReversed', data: { ...owner, paymentId: 'new', refundId: 'r1', points: 100, fromExpired: 0 } } },
  ];
  const result = timelineOf(events);
  t.deepEqual(result.credits.map((c) => c.points), [100, 0]);
  t.is(result.balance, 100);
  // The old purchase's 100 points, earned 2025-01-10, expire on 2026-02-01: due at the run of 2026-03-02.
  t.like(expiryDue(result, policy({ effectiveFrom: '2024-01-01T00:00:00.000Z' }), d('2026-03-02T00:00:00Z')), { points: 100 });
});

test('property: expiry never takes more than the available points nor more than was earned before the cut', (t) => {
  t.notThrows(() =>
  fc.assert(
    fc.property(
      fc.array(fc.record({ day: fc.integer({ min: 0, max: 900 }), points: fc.integer({ min: 1, max: 500 }) }), { maxLength: 20 }),
      fc.integer({ min: -200, max: 4000 }),
      fc.integer({ min: 0, max: 3000 }),
      fc.integer({ min: 1, max: 24 }),
      fc.integer({ min: 0, max: 1200 }),
      (raw, balance, locked, months, asOfDay) => {
        const base = Date.UTC(2025, 0, 1);
        const credits = raw.map((c) => ({ at: new Date(base + c.day * 86_400_000), points: c.points })).sort((a, b) => a.at.getTime() - b.at.getTime());
        const asOf = new Date(base + asOfDay * 86_400_000);
        const due = expiryDue({ credits, balance, locked, lastActivityAt: null }, policy({ earnedMonths: months, retroactive: true }), asOf);
        const earnedBeforeCut = credits.filter((c) => expiresAfter(c.at, months, 'UTC').getTime() <= asOf.getTime()).reduce((s, c) => s + c.points, 0);
        return due.points >= 0 && due.points <= Math.max(0, balance - locked) && due.points <= earnedBeforeCut;
      },
    ),
    { numRuns: 500 },
  ),
  );
});
