/**
 * The reward catalog and the reward lifecycle over HTTP: merchants define and retire rewards, issue them to a
 * wallet (points locked), redeem (spent) or void (unlocked); idempotency keys; eight cashiers at once never
 * overdraw a wallet; every step is a ledger line; bad input is a clear 4xx with nothing recorded.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { rewardCatalogStream } from '../../domain/rewards/catalog.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { loyalty } from '../support/loyalty.ts';

let service: TestService;
let world: ReturnType<typeof loyalty>;
const ADMIN_EMAIL = 'ops@rewards.test';

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL });
  world = loyalty(service, ADMIN_EMAIL);
});
test.after.always(async () => {
  await service?.stop();
});

const after = (position: string) => ({ 'x-min-position': position });

test('a merchant defines rewards, lists them and retires one; versions count the catalog’s changes', async (t) => {
  const { call } = world;
  const m = await world.merchant();
  const coffee = await call('POST', '/api/v1/client/rewards', { token: m.token, body: { name: 'Free coffee', points: 100, description: 'Any size' } });
  t.is(coffee.status, 201);
  t.like(coffee.body, { name: 'Free coffee', points: 100, description: 'Any size', status: 'active', version: 1, issuedRewardExpiresAfterDays: 30 });
  const cake = await call('POST', '/api/v1/client/rewards', { token: m.token, body: { name: 'Cake', points: 250, issuedRewardExpiresAfterDays: 7 } });
  t.like(cake.body, { version: 2, issuedRewardExpiresAfterDays: 7, description: null });

  const retired = await call('POST', `/api/v1/client/rewards/${cake.body.rewardId}/retire`, { token: m.token });
  t.is(retired.status, 200);
  t.like(retired.body, { status: 'retired' });
  const again = await call('POST', `/api/v1/client/rewards/${cake.body.rewardId}/retire`, { token: m.token });
  t.is(again.status, 200, 'retiring twice is one retirement');
  t.is(again.body.position, null);

  const all = await call('GET', '/api/v1/client/rewards', { token: m.token });
  t.is(all.body.version, 3);
  t.deepEqual(all.body.rewards.map((r: { name: string; status: string }) => [r.name, r.status]), [['Free coffee', 'active'], ['Cake', 'retired']]);
  const active = await call('GET', '/api/v1/client/rewards?status=active', { token: m.token });
  t.deepEqual(active.body.rewards.map((r: { name: string }) => r.name), ['Free coffee']);

  const other = await world.merchant();
  t.deepEqual((await call('GET', '/api/v1/client/rewards', { token: other.token })).body, { version: 0, rewards: [] }, 'each workspace has its own catalog');
  t.is((await call('POST', `/api/v1/client/rewards/${coffee.body.rewardId}/retire`, { token: other.token })).status, 404, "another workspace's reward is not found");
});

test('bad rewards are refused with what to fix, and nothing is recorded', async (t) => {
  const { call } = world;
  const m = await world.merchant();
  const cases: [unknown, RegExp][] = [
    [{ name: 'Free', points: 0 }, /points must be at least 1/],
    [{ name: 'Free', points: 1_000_000_001 }, /points must be at most 1000000000/],
    [{ name: 'Free', points: 2.5 }, /points must be a whole number/],
    [{ name: 'x'.repeat(101), points: 10 }, /name must be at most 100 characters/],
    [{ name: '   ', points: 10 }, /name must not be empty/],
    [{ points: 10 }, /name is required/],
    [{ name: 'Free', points: 10, issuedRewardExpiresAfterDays: 0 }, /issuedRewardExpiresAfterDays must be at least 1/],
    [{ name: 'Free', points: 10, colour: 'red' }, /colour/],
  ];
  for (const [body, message] of cases) {
    const response = await call('POST', '/api/v1/client/rewards', { token: m.token, body });
    t.is(response.status, 400, JSON.stringify(body));
    t.regex(response.body.error.message, message, JSON.stringify(body));
  }
  t.is((await call('POST', `/api/v1/client/rewards/not-a-uuid/retire`, { token: m.token })).status, 400);
  t.is((await call('POST', `/api/v1/client/rewards/${uuid()}/retire`, { token: m.token })).status, 404);
  t.deepEqual(await service.tally.store.readStream(rewardCatalogStream(m.tenantId)), [], 'nothing was recorded');
});

test('defining a reward under an idempotency key: a retry is one reward and the same answer; another body is a 422', async (t) => {
  const { call } = world;
  const m = await world.merchant();
  const body = { name: 'Free coffee', points: 100, idempotencyKey: 'define-coffee-1' };
  const first = await call('POST', '/api/v1/client/rewards', { token: m.token, body });
  t.is(first.status, 201);
  t.is(first.headers.get('idempotent-replayed'), null);
  const retry = await call('POST', '/api/v1/client/rewards', { token: m.token, body });
  t.is(retry.status, 200);
  t.is(retry.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(retry.body, first.body, 'the retry answers what the first call answered, position included');

  // The header alone is the same key (it was ignored: every retry defined another reward).
  const headers = { 'idempotency-key': 'define-cake-1' };
  const cake = await call('POST', '/api/v1/client/rewards', { token: m.token, body: { name: 'Cake', points: 250 }, headers });
  const cakeAgain = await call('POST', '/api/v1/client/rewards', { token: m.token, body: { name: 'Cake', points: 250 }, headers });
  t.is(cake.status, 201);
  t.is(cakeAgain.status, 200);
  t.is(cakeAgain.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(cakeAgain.body, cake.body);

  const reused = await call('POST', '/api/v1/client/rewards', { token: m.token, body: { ...body, points: 120 } });
  t.is(reused.status, 422);
  t.is(reused.body.error.code, 'IDEMPOTENCY_KEY_REUSED');

  // Retired since, a retry still answers what the first call did; the same key in another workspace is its own.
  await call('POST', `/api/v1/client/rewards/${first.body.rewardId}/retire`, { token: m.token });
  t.like((await call('POST', '/api/v1/client/rewards', { token: m.token, body })).body, { rewardId: first.body.rewardId, status: 'active', position: first.body.position });
  const other = await world.merchant();
  const theirs = await call('POST', '/api/v1/client/rewards', { token: other.token, body });
  t.is(theirs.status, 201);
  t.not(theirs.body.rewardId, first.body.rewardId);

  const all = await call('GET', '/api/v1/client/rewards', { token: m.token });
  t.deepEqual(all.body.rewards.map((r: { name: string }) => r.name), ['Free coffee', 'Cake'], 'one reward per key');
  const withoutKey = [await call('POST', '/api/v1/client/rewards', { token: m.token, body: { name: 'Tea', points: 50 } }), await call('POST', '/api/v1/client/rewards', { token: m.token, body: { name: 'Tea', points: 50 } })];
  t.deepEqual(withoutKey.map((r) => r.status), [201, 201], 'without a key, each call defines a reward, as before');
});

test('issue locks points, redeem spends them, void unlocks them; every step is a ledger line with its reward', async (t) => {
  const { call } = world;
  const { merchant: m, consumer: c, walletId } = await world.walletWith(300);
  const coffee = await world.reward(m, { name: 'Free coffee', points: 100 });
  const cake = await world.reward(m, { name: 'Cake', points: 250 });

  const mine = await call('GET', `/api/v1/me/wallets/${walletId}/rewards`, { token: c.token });
  t.is(mine.status, 200);
  t.deepEqual(mine.body.rewards.map((r: { name: string; affordable: boolean }) => [r.name, r.affordable]), [['Free coffee', true], ['Cake', true]]);

  const key = uuid();
  const issued = await call('POST', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: key } });
  t.is(issued.status, 201);
  t.like(issued.body, { walletId, balance: 300, available: 200, locked: 100, issuedReward: { rewardId: coffee.rewardId, name: 'Free coffee', points: 100, status: 'issued' } });
  const replay = await call('POST', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: key } });
  t.is(replay.status, 200);
  t.is(replay.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(replay.body, issued.body, 'a retried issue answers as the first time');
  const reused = await call('POST', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token, body: { rewardId: cake.rewardId, idempotencyKey: key } });
  t.is(reused.status, 422);
  t.is(reused.body.error.code, 'IDEMPOTENCY_KEY_REUSED');

  const afterIssue = await call('GET', `/api/v1/me/wallets/${walletId}/rewards`, { token: c.token, headers: after(issued.body.position) });
  t.deepEqual(afterIssue.body.rewards.map((r: { name: string; affordable: boolean }) => [r.name, r.affordable]), [['Free coffee', true], ['Cake', false]], 'the locked points no longer afford the cake');
  t.like(afterIssue.body.issued[0], { issuedRewardId: issued.body.issuedReward.issuedRewardId, status: 'issued' });
  const wallet = await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token });
  t.like(wallet.body, { balance: 300, available: 200, locked: 100 });

  const tooMuch = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body: { points: 201, idempotencyKey: uuid() } });
  t.is(tooMuch.status, 409, 'a plain redemption draws on the available points only');
  t.like(tooMuch.body.error, { code: 'INSUFFICIENT_POINTS', details: { available: 200, locked: 100 } });

  const issuedRewardId = issued.body.issuedReward.issuedRewardId as string;
  const redeemKey = uuid();
  const redeemed = await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${issuedRewardId}/redeem`, { token: m.token, body: { idempotencyKey: redeemKey } });
  t.is(redeemed.status, 200);
  t.like(redeemed.body, { balance: 200, available: 200, locked: 0 });
  const redeemedAgain = await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${issuedRewardId}/redeem`, { token: m.token, body: { idempotencyKey: redeemKey } });
  t.deepEqual(redeemedAgain.body, redeemed.body);
  const otherKey = await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${issuedRewardId}/redeem`, { token: m.token, body: { idempotencyKey: uuid() } });
  t.is(otherKey.status, 409);
  t.is(otherKey.body.error.code, 'REWARD_NOT_ISSUED');
  t.is((await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${issuedRewardId}/void`, { token: m.token, body: {} })).status, 409, 'a redeemed reward cannot be voided');

  const second = await call('POST', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: uuid() } });
  const voided = await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${second.body.issuedReward.issuedRewardId}/void`, { token: m.token, body: { reason: 'wrong customer' } });
  t.is(voided.status, 200);
  t.like(voided.body, { balance: 200, available: 200, locked: 0 });

  const ledger = await call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: m.token, headers: after(voided.body.position) });
  t.deepEqual(
    ledger.body.items.map((i: { kind: string; points: number; lockedChange: number; rewardId: string | null }) => [i.kind, i.points, i.lockedChange, i.rewardId]),
    [
      ['reward_voided', 0, -100, coffee.rewardId],
      ['reward_issued', 0, 100, coffee.rewardId],
      ['reward_redeemed', -100, -100, coffee.rewardId],
      ['reward_issued', 0, 100, coffee.rewardId],
      ['earn', 300, 0, null],
    ],
  );
  t.like(ledger.body.items[0], { reason: 'wrong customer', issuedRewardId: second.body.issuedReward.issuedRewardId });
  const merchantView = await call('GET', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token });
  t.deepEqual(merchantView.body.issued.map((i: { status: string }) => i.status).sort(), ['redeemed', 'voided']);
  t.like(await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token }).then((r) => r.body), { lifetimeRedeemed: 100 });
});

test('eight cashiers issuing rewards on one wallet at once never overdraw it; eight retries of one key issue one reward', async (t) => {
  const { call } = world;
  const { merchant: m, walletId } = await world.walletWith(350);
  const coffee = await world.reward(m, { name: 'Free coffee', points: 100 });
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => call('POST', `/api/v1/client/wallets/${walletId}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: uuid() } })),
  );
  t.deepEqual(answers.map((a) => a.status).sort(), [201, 201, 201, 409, 409, 409, 409, 409]);
  for (const refused of answers.filter((a) => a.status === 409)) t.is(refused.body.error.code, 'INSUFFICIENT_POINTS');
  const stream = await world.streamOf(walletId);
  t.is(stream.filter((e) => e.type === 'RewardIssued').length, 3);

  const plain = await Promise.all(
    Array.from({ length: 8 }, () => call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body: { points: 20, idempotencyKey: uuid() } })),
  );
  t.is(plain.filter((a) => a.status === 200).length, 2, 'the 50 available points cover two redemptions of 20');

  const { walletId: other } = await world.walletWith(1000, m);
  const key = uuid();
  const retries = await Promise.all(
    Array.from({ length: 8 }, () => call('POST', `/api/v1/client/wallets/${other}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: key } })),
  );
  t.true(retries.every((r) => r.status === 200 || r.status === 201));
  t.is(new Set(retries.map((r) => r.body.issuedReward.issuedRewardId)).size, 1, 'every retry names the one reward');
  t.is((await world.streamOf(other)).filter((e) => e.type === 'RewardIssued').length, 1);
  // Retired meanwhile: the retry of that issue still answers as the first time; a new issue is refused.
  t.is((await call('POST', `/api/v1/client/rewards/${coffee.rewardId}/retire`, { token: m.token })).status, 200);
  const late = await call('POST', `/api/v1/client/wallets/${other}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: key } });
  t.is(late.status, 200, 'a replay after the reward was retired');
  t.is(late.body.issuedReward.issuedRewardId, retries[0]!.body.issuedReward.issuedRewardId);
  const fresh = await call('POST', `/api/v1/client/wallets/${other}/rewards`, { token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: uuid() } });
  t.is(fresh.body.error?.code, 'REWARD_RETIRED');
});

test("a retired reward, another workspace's reward or wallet, and bad bodies issue nothing", async (t) => {
  const { call } = world;
  const { merchant: m, walletId } = await world.walletWith(500);
  const coffee = await world.reward(m, { name: 'Free coffee', points: 100 });
  const old = await world.reward(m, { name: 'Old mug', points: 100 });
  await call('POST', `/api/v1/client/rewards/${old.rewardId}/retire`, { token: m.token });
  const issue = (body: unknown, token = m.token, wallet = walletId) => call('POST', `/api/v1/client/wallets/${wallet}/rewards`, { token, body });

  const retired = await issue({ rewardId: old.rewardId, idempotencyKey: uuid() });
  t.is(retired.status, 409);
  t.is(retired.body.error.code, 'REWARD_RETIRED');
  t.regex(retired.body.error.message, /Old mug.*can no longer be issued/);

  const other = await world.merchant();
  const foreign = await world.reward(other, { name: 'Their coffee', points: 10 });
  t.is((await issue({ rewardId: foreign.rewardId, idempotencyKey: uuid() })).status, 404, "another workspace's reward");
  t.is((await issue({ rewardId: coffee.rewardId, idempotencyKey: uuid() }, other.token)).status, 404, "another workspace's wallet");
  t.is((await call('GET', `/api/v1/client/wallets/${walletId}/rewards`, { token: other.token })).status, 404);
  for (const [body, message] of [
    [{ rewardId: coffee.rewardId }, /idempotencyKey is required/],
    [{ idempotencyKey: 'k' }, /rewardId is required/],
    [{ rewardId: 'coffee', idempotencyKey: 'k' }, /rewardId is required: the id of an active reward/],
  ] as const) {
    const response = await issue(body);
    t.is(response.status, 400);
    t.regex(response.body.error.message, message);
  }
  t.is((await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${uuid()}/redeem`, { token: m.token, body: { idempotencyKey: 'k' } })).status, 404, 'an unknown issued reward');
  t.is((await call('POST', `/api/v1/client/wallets/${walletId}/rewards/${uuid()}/void`, { token: m.token, body: {} })).status, 404);
  t.deepEqual((await world.streamOf(walletId)).map((e) => e.type), ['PointsCredited'], 'nothing was recorded on the wallet');
});
