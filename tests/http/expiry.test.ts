/**
 * Points expiry and issued-reward expiry over HTTP, with the service's clock moved forward: the policy and
 * its validation, no retroactive expiry without the merchant's flag, `expiringSoon` on wallet answers, the
 * cron run twice and concurrently expiring once, and the log replayed and rebuilt giving the same balances.
 * Serial: the tests move the one clock of the service.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { programStream } from '../../domain/program/program.ts';
import { addMonths, expiresAfter } from '../../domain/wallets/expiry.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import { walletDecider, walletStream, type WalletCommand, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { testCommandPath } from '../support/command-path.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { loyalty } from '../support/loyalty.ts';

let service: TestService;
let world: ReturnType<typeof loyalty>;
const ADMIN_EMAIL = 'ops@expiry.test';
const CRON_SECRET = 'cron-secret-for-expiry-tests';
/** The service's clock runs this far ahead of the real one (the log's recorded times stay real). */
let ahead = 0;
const clock = () => new Date(Date.now() + ahead);
const DAY = 86_400_000;
const moveClockTo = (instant: Date) => {
  ahead = instant.getTime() - Date.now();
};

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL, CRON_SECRET }, { now: clock });
  world = loyalty(service, ADMIN_EMAIL);
});
test.after.always(async () => {
  await service?.stop();
});
test.afterEach.always(() => {
  ahead = 0;
});

const cron = () => world.call('POST', '/api/v1/internal/cron/expire-points', { headers: { 'x-cron-secret': CRON_SECRET } });
const settleHead = async () => {
  const head = await service.tally.store.headPosition();
  if (head) await world.settled(head);
};

test.serial('a merchant sets the expiry policy; bad policies are refused with what to fix and nothing is recorded', async (t) => {
  const { call } = world;
  const m = await world.merchant();
  const none = await call('GET', '/api/v1/client/expiry-policy', { token: m.token });
  t.deepEqual(none.body, { version: 0, earnedMonths: null, inactivityMonths: null, appliesToExistingPoints: false, effectiveFrom: null, timeZone: 'UTC', expires: false });
  const cases: [unknown, RegExp][] = [
    [{ earnedMonths: 0 }, /earnedMonths must be at least 1 month/],
    [{ earnedMonths: 61 }, /earnedMonths must be at most 60 months/],
    [{ inactivityMonths: 1.5 }, /inactivityMonths must be a whole number of months/],
    [{ earnedMonths: '12' }, /earnedMonths must be a whole number of months from 1 to 60/],
    [{ earnedMonths: 12, applyToExistingPoints: 'yes' }, /applyToExistingPoints must be true or false/],
    [{ earnedMonths: 12, months: 3 }, /months/],
  ];
  for (const [body, message] of cases) {
    const response = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body });
    t.is(response.status, 400, JSON.stringify(body));
    t.regex(response.body.error.message, message, JSON.stringify(body));
  }
  t.deepEqual(await service.tally.store.readStream(programStream(m.tenantId)), [], 'nothing was recorded');
  const set = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12, inactivityMonths: 24 } });
  t.is(set.status, 200);
  t.like(set.body, { version: 1, earnedMonths: 12, inactivityMonths: 24, appliesToExistingPoints: false, expires: true });
  const same = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12, inactivityMonths: 24 } });
  t.like(same.body, { version: 1, position: null }, 'the same policy again changes nothing');
  t.like((await call('GET', '/api/v1/client/expiry-policy', { token: m.token })).body, { version: 1 });
  const off = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: {} });
  t.like(off.body, { version: 2, expires: false }, 'both rules off: points never expire');
});

test.serial('changing the policy never expires points retroactively unless the merchant confirms it', async (t) => {
  const { call } = world;
  const { merchant: m, consumer: c, walletId } = await world.walletWith(100);
  const earned = new Date();
  // Two months later the merchant adopts "points expire 1 month after they were earned".
  moveClockTo(addMonths(earned, 2));
  const policy = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 1 } });
  await world.settled(policy.body.position);
  const first = await cron();
  t.is(first.status, 200);
  t.like(first.body, { pointsExpired: 0 }, 'without the flag the points count from the change, not from when they were earned');
  t.true(first.body.walletsChecked >= 1);

  // Counted from the change, they are valid through the end of the month after it (as in Square Loyalty). Ten days
  // before that, they are due within the next 30 days: the wallet answers say how many and when.
  const due = expiresAfter(new Date(policy.body.effectiveFrom), 1, 'UTC');
  moveClockTo(new Date(due.getTime() - 10 * DAY));
  const soon = await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token });
  t.is(soon.body.expiringSoon.points, 100);
  t.is(soon.body.expiringSoon.at, due.toISOString());
  t.like((await cron()).body, { pointsExpired: 0 }, 'not yet due');
  const mine = await call('GET', '/api/v1/me/wallets', { token: c.token });
  t.deepEqual(mine.body[0].expiringSoon, soon.body.expiringSoon, 'the consumer sees it too');

  // Confirmed: the policy applies to existing points from when they were earned, and the run takes them.
  const confirmed = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 1, applyToExistingPoints: true } });
  t.like(confirmed.body, { version: 2, appliesToExistingPoints: true });
  await world.settled(confirmed.body.position);
  const second = await cron();
  t.true(second.body.pointsExpired >= 100);
  await settleHead();
  const wallet = await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token });
  t.like(wallet.body, { balance: 0, available: 0, lifetimeExpired: 100, expiringSoon: { points: 0, at: null } });
  const ledger = await call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: m.token });
  t.like(ledger.body.items[0], { kind: 'points_expired', points: -100, balanceAfter: 0 });
});

test.serial('the cron run twice, or twice at once, expires once per wallet and day; locked points never expire', async (t) => {
  const { call } = world;
  const m = await world.merchant();
  const { walletId } = await world.walletWith(300, m);
  const { walletId: lockedWallet } = await world.walletWith(300, m);
  const coffee = await world.reward(m, { name: 'Free coffee', points: 200, issuedRewardExpiresAfterDays: 366 });
  const issued = await call('POST', `/api/v1/client/wallets/${lockedWallet}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: uuid() } });
  t.is(issued.status, 201);
  const policy = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 3, applyToExistingPoints: true } });
  await world.settled(policy.body.position);
  moveClockTo(new Date(expiresAfter(new Date(), 3, 'UTC').getTime() + DAY));

  const [a, b] = await Promise.all([cron(), cron()]);
  t.is(a.status, 200);
  t.is(b.status, 200);
  t.like(a.body, { walletsFailed: 0, rewardsFailed: 0, failures: [] });
  const expiries = async (id: string) => (await world.streamOf(id)).filter((e) => e.type === 'PointsExpired');
  t.is((await expiries(walletId)).length, 1, 'two runs at once expire once');
  t.like((await expiries(walletId))[0]?.data, { points: 300, rule: 'earned' });
  t.like((await expiries(lockedWallet))[0]?.data, { points: 100 }, 'the 200 points locked in the issued reward stay');
  const third = await cron();
  t.is((await expiries(walletId)).length, 1, 'a third run the same day expires nothing more');
  t.is(third.body.pointsExpired, 0);
  await settleHead();
  const locked = await call('GET', `/api/v1/client/wallets/${lockedWallet}`, { token: m.token });
  t.like(locked.body, { balance: 200, available: 0, locked: 200 });

  // The log replayed gives the same balances: reconciliation covers locked and expired points.
  const admin = await world.admin();
  for (const id of [walletId, lockedWallet]) {
    const report = await call('GET', `/api/v1/admin/wallets/${id}/reconcile`, { token: admin.token });
    t.like(report.body, { consistent: true }, id);
  }
});

test.serial('a refund after its purchase\'s points expired leaves the newer purchase\'s points; ledger, summary and replay agree', async (t) => {
  const { call } = world;
  const m = await world.merchant();
  const c = await world.consumer();
  const wallet = { walletId: uuid(), tenantId: m.tenantId, consumerId: c.id };
  const store = service.tally.store;
  const credited = (paymentId: string): WalletEvent => ({
    type: 'PointsCredited',
    data: { ...wallet, paymentId, points: 100, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: 10_000, via: 'purchase' },
  });
  await store.append(walletStream(wallet.walletId), [{ id: uuid(), ...credited('pay-old'), metadata: { actor: 'system:test' } }], 'any');
  const policy = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 3, applyToExistingPoints: true } });
  await world.settled(policy.body.position);
  moveClockTo(new Date(expiresAfter(new Date(), 3, 'UTC').getTime() + DAY));
  t.true((await cron()).body.pointsExpired >= 100);
  // A newer purchase, then the old one is returned: the refund's 100 points had already expired.
  await store.append(walletStream(wallet.walletId), [{ id: uuid(), ...credited('pay-new'), metadata: { actor: 'system:test' } }], 'any');
  const refund: WalletCommand = { type: 'ReversePoints', ...wallet, paymentId: 'pay-old', refundId: 'refund-old', points: 100 };
  const reversal = await handleCommand(store, walletStream(wallet.walletId), walletDecider, refund, { newId: uuid, metadata: { actor: 'system:test' }, path: testCommandPath() });
  t.like(reversal.events[0], { type: 'PointsReversed', data: { points: 100, fromExpired: 100 } });
  await settleHead();
  const answer = await call('GET', `/api/v1/client/wallets/${wallet.walletId}`, { token: m.token });
  t.like(answer.body, { balance: 100, available: 100, lifetimeEarned: 200, lifetimeExpired: 100 }, 'the new purchase\'s points are still there');
  const ledger = await call('GET', `/api/v1/client/wallets/${wallet.walletId}/ledger`, { token: m.token });
  t.like(ledger.body.items[0], { kind: 'reversal', points: 0, balanceAfter: 100, paymentId: 'pay-old' });
  t.regex(ledger.body.items[0].reason, /100 of the 100 points refunded had expired/);
  const days = await service.tally.pool.query('SELECT sum(earned)::int AS earned, sum(expired)::int AS expired, sum(net)::int AS net FROM program_days WHERE tenant_id = $1', [m.tenantId]);
  t.deepEqual(days.rows[0], { earned: 200, expired: 100, net: 100 }, 'the summary counts the expired points once, and the net change is the balance');
  const admin = await world.admin();
  t.like((await call('GET', `/api/v1/admin/wallets/${wallet.walletId}/reconcile`, { token: admin.token })).body, { consistent: true });
});

test.serial('an issued reward not redeemed in time cannot be redeemed, and the run gives its points back', async (t) => {
  const { call } = world;
  const { merchant: m, walletId } = await world.walletWith(100);
  const cake = await world.reward(m, { name: 'Cake', points: 80, issuedRewardExpiresAfterDays: 1 });
  const issued = await call('POST', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token, body: { rewardId: cake.rewardId, idempotencyKey: uuid() } });
  t.like(issued.body, { available: 20, locked: 80 });
  const issuedRewardId = issued.body.issuedReward.issuedRewardId as string;
  await world.settled(issued.body.position);
  moveClockTo(new Date(Date.now() + 2 * DAY));
  const late = await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${issuedRewardId}/redeem`, { token: m.token, body: { idempotencyKey: uuid() } });
  t.is(late.status, 409);
  t.is(late.body.error.code, 'REWARD_EXPIRED');
  const run = await cron();
  t.true(run.body.rewardsExpired >= 1);
  await settleHead();
  t.like((await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token })).body, { balance: 100, available: 100, locked: 0 });
  const rewards = await call('GET', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token });
  t.like(rewards.body.issued[0], { issuedRewardId, status: 'expired' });
  t.is((await cron()).body.rewardsExpired, 0, 'expired once');
  const ledger = await call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: m.token });
  t.like(ledger.body.items[0], { kind: 'reward_expired', points: 0, lockedChange: -80 });
});

test.serial('the cron needs its secret; a rebuild of the read models gives the same balances and summary', async (t) => {
  const { call } = world;
  const refused = await call('POST', '/api/v1/internal/cron/expire-points', { headers: { 'x-cron-secret': 'wrong' } });
  t.is(refused.status, 401);
  await settleHead();
  const snapshot = async () => ({
    wallets: (await service.tally.pool.query('SELECT id, points_balance, locked_points, lifetime_expired, lifetime_redeemed FROM wallets ORDER BY id')).rows,
    days: (await service.tally.pool.query('SELECT * FROM program_days ORDER BY tenant_id, day')).rows,
    rewards: (await service.tally.pool.query('SELECT issued_reward_id, status FROM issued_rewards ORDER BY issued_reward_id')).rows,
  });
  const before = await snapshot();
  t.true(before.wallets.some((w: { lifetime_expired: string }) => Number(w.lifetime_expired) > 0), 'expired points are among the balances');
  const admin = await world.admin();
  for (const name of ['wallets', 'program_summary', 'program']) {
    const started = await call('POST', `/api/v1/admin/projections/${name}/rebuild`, { token: admin.token });
    t.is(started.status, 202, name);
    const job = await eventually(
      () => call('GET', `/api/v1/admin/jobs/${started.body.jobId}`, { token: admin.token }),
      (r) => r.body.state === 'completed' || r.body.state === 'failed',
    );
    t.is(job.body.state, 'completed', name);
  }
  t.deepEqual(await snapshot(), before);
});
