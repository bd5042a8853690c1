/**
 * Retried wallet writes over HTTP: every write retried with its key (a redemption, an adjustment, a reward issued,
 * redeemed and voided) answers with exactly the bytes the first request got, on the instance that holds the
 * wallet's state and on another that reads it cold from its snapshot, the first requests before that snapshot.
 * (tests/integration/idempotent-replay-reads.test.ts shows what a replay reads: the first request's event alone.)
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import type { NewEvent } from '../../domain/ports/event-store.ts';
import { walletStream, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { loyalty } from '../support/loyalty.ts';
import { startSecondInstance, startTestService, type SecondInstance, type TestService } from '../support/service.ts';

const ADMIN_EMAIL = 'ops@idempotent-replay.test';
const ENV = { AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL };
let service: TestService;
let second: SecondInstance | undefined;
let world: ReturnType<typeof loyalty>;

test.before(async () => {
  service = await startTestService(ENV);
  world = loyalty(service, ADMIN_EMAIL);
});
test.after.always(async () => {
  await second?.stop();
  await service?.stop();
});

/** A POST answered as bytes: its status, its Idempotent-Replayed header and its body's text. */
async function post(baseUrl: string, path: string, token: string, body: unknown) {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, replayed: response.headers.get('idempotent-replayed'), text: await response.text() };
}

test('every wallet write retried with its key answers the first answer byte for byte, on the instance holding the wallet and on a cold one reading its snapshot', async (t) => {
  const { merchant: m, wallet, walletId } = await walletWith();
  const admin = await world.admin();
  const coffee = await world.reward(m, { name: 'Free coffee', points: 100 });
  const base = `/api/v1/client/wallets/${walletId}`;
  const issue = (key: string) => ({ path: `${base}/rewards`, token: m.token, body: { rewardId: coffee.rewardId, idempotencyKey: key } });
  const issued = JSON.parse((await post(service.url, issue('issue-1').path, m.token, issue('issue-1').body)).text);
  const toVoid = JSON.parse((await post(service.url, issue('issue-2').path, m.token, issue('issue-2').body)).text);
  const writes = {
    redeem: { path: `${base}/redeem`, token: m.token, body: { points: 30, idempotencyKey: 'redeem-1', reference: 'order-1' } },
    adjust: { path: `/api/v1/admin/wallets/${walletId}/adjust`, token: admin.token, body: { points: 5, reason: 'goodwill', idempotencyKey: 'adjust-1' } },
    redeemReward: { path: `${base}/rewards/${issued.issuedReward.issuedRewardId}/redeem`, token: m.token, body: { idempotencyKey: 'redeem-reward-1' } },
    voidReward: { path: `${base}/rewards/${toVoid.issuedReward.issuedRewardId}/void`, token: m.token, body: { reason: 'by mistake' } },
  };
  const first = new Map<string, { status: number; text: string }>();
  for (const [name, w] of Object.entries(writes)) {
    const answer = await post(service.url, w.path, w.token, w.body);
    t.is(answer.status, 200, `${name}: ${answer.text}`);
    t.is(answer.replayed, null);
    first.set(name, answer);
  }
  // The issue's first answer is a 201; its retry a 200 with the same body.
  const issueAgain = await post(service.url, issue('issue-1').path, m.token, issue('issue-1').body);
  t.deepEqual(JSON.parse(issueAgain.text), issued);
  first.set('issueReward', { status: 200, text: issueAgain.text });
  const all = { ...writes, issueReward: issue('issue-1') };

  // The wallet grows past its first snapshot's threshold; the next command writes one, after every first request.
  const credits: NewEvent[] = Array.from({ length: 150 }, () => {
    const event: WalletEvent = {
      type: 'PointsCredited',
      data: { ...wallet, paymentId: `pay-${uuid()}`, points: 1, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: 100, via: 'purchase' },
    };
    return { id: uuid(), ...event, metadata: { actor: 'system:test' } };
  });
  await service.tally.store.append(walletStream(walletId), credits, 'any');
  t.is((await post(service.url, `${base}/redeem`, m.token, { points: 1, idempotencyKey: 'after-1' })).status, 200);
  const snapshots = await service.database.pool.query<{ revision: string }>('SELECT revision FROM stream_snapshots WHERE stream = $1', [walletStream(walletId)]);
  t.true(snapshots.rows.length === 1 && Number(snapshots.rows[0]!.revision) > 150, 'a snapshot after the first requests');

  second = await startSecondInstance(service, ENV);
  for (const [label, url] of [['held', service.url], ['cold', second.url], ['held again', service.url]] as const) {
    for (const [name, w] of Object.entries(all)) {
      const again = await post(url, w.path, w.token, w.body);
      t.deepEqual({ status: again.status, replayed: again.replayed, text: again.text }, { ...first.get(name)!, replayed: 'true' }, `${label}: ${name}`);
    }
  }
});

/** A wallet of 1,000 points, projected. */
const walletWith = () => world.walletWith(1_000);
