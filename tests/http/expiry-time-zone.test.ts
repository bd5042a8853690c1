/**
 * Expiry deadlines in the workspace's time zone over HTTP: the zone a new policy takes (the request's, else the
 * Square main location's, else the policy's own, UTC for a first one), a Square failure that does not stop the
 * policy, and `expiringSoon` at midnight in that zone. Serial: the tests move the one clock of the service.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { programStream } from '../../domain/program/program.ts';
import { expiresAfter } from '../../domain/wallets/expiry.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { scenario } from '../support/tenants.ts';
import { loyalty } from '../support/loyalty.ts';
import { squareEnv, startSquareServer, type SquareTestServer } from '../support/square-server.ts';

const ADMIN_EMAIL = 'ops@expiry-zone.test';
const LOS_ANGELES = 'America/Los_Angeles';
let square: SquareTestServer;
let service: TestService;
let world: ReturnType<typeof loyalty>;
let ahead = 0;
const clock = () => new Date(Date.now() + ahead);

test.before(async () => {
  square = await startSquareServer();
  service = await startTestService(
    { AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL, ...squareEnv(square, 'expiry-zone-webhook-key', 'https://api.tally.test') },
    { now: clock },
  );
  world = loyalty(service, ADMIN_EMAIL);
});
test.after.always(async () => {
  await service?.stop();
  await square?.stop();
});
test.afterEach.always(() => {
  ahead = 0;
});

/** A merchant whose workspace is connected to a Square merchant whose main location is in Los Angeles. */
async function connectedMerchant() {
  const m = await world.merchant();
  const merchantId = `M-${uuid().slice(0, 8)}`;
  square.addMerchant({ merchantId, businessName: m.businessName, locations: [{ id: `L-${merchantId}`, name: 'Main street', timezone: LOS_ANGELES }] });
  await scenario(service, square).connect(m, merchantId);
  return m;
}

test.serial("a new policy takes the Square main location's time zone, or the one the request names; an unknown one is a 400", async (t) => {
  const { call } = world;
  const m = await connectedMerchant();
  const unknown = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12, timeZone: 'Mars/Olympus_Mons' } });
  t.is(unknown.status, 400);
  t.regex(unknown.body.error.message, /timeZone "Mars\/Olympus_Mons" is not an IANA time zone/);
  t.deepEqual(await service.tally.store.readStream(programStream(m.tenantId)), [], 'nothing was recorded');

  const set = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12 } });
  t.like(set.body, { version: 1, timeZone: LOS_ANGELES, warnings: [] });
  t.like((await call('GET', '/api/v1/client/expiry-policy', { token: m.token })).body, { version: 1, timeZone: LOS_ANGELES });
  t.like((await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12 } })).body, { version: 1, position: null }, 'the same policy in the same zone: no change');

  const tokyo = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12, timeZone: 'Asia/Tokyo' } });
  t.like(tokyo.body, { version: 2, earnedMonths: 12, timeZone: 'Asia/Tokyo' }, 'a change of zone alone is a new version');
  t.like((await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12, timeZone: 'Asia/Tokyo' } })).body, { version: 2, position: null });
});

test.serial('Square failing does not stop a policy: it keeps its zone, and the answer says why', async (t) => {
  const { call } = world;
  const m = await connectedMerchant();
  t.like((await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 12, timeZone: 'Asia/Tokyo' } })).body, { version: 1, timeZone: 'Asia/Tokyo' });
  const clear = square.failUntilCleared('/v2/locations', { status: 400, code: 'BAD_REQUEST' });
  try {
    const answer = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 6 } });
    t.is(answer.status, 200);
    t.like(answer.body, { version: 2, earnedMonths: 6, timeZone: 'Asia/Tokyo' });
    t.regex(answer.body.warnings[0], /time zone could not be read from Square/);
  } finally {
    clear();
  }
  const unconnected = await world.merchant();
  t.like((await call('PUT', '/api/v1/client/expiry-policy', { token: unconnected.token, body: { earnedMonths: 12 } })).body, { version: 1, timeZone: 'UTC', warnings: [] }, 'no Square connection: UTC');
});

test.serial("a wallet's points expiring soon are due at midnight in the policy's zone", async (t) => {
  const { call } = world;
  const { merchant: m, walletId } = await world.walletWith(100, await connectedMerchant());
  const earnedAt = (await world.streamOf(walletId))[0]!.recordedAt;
  const policy = await call('PUT', '/api/v1/client/expiry-policy', { token: m.token, body: { earnedMonths: 1, applyToExistingPoints: true } });
  t.like(policy.body, { timeZone: LOS_ANGELES });
  await world.settled(policy.body.position);
  const due = expiresAfter(earnedAt, 1, LOS_ANGELES);
  t.not(due.getTime(), expiresAfter(earnedAt, 1, 'UTC').getTime());
  ahead = due.getTime() - 10 * 86_400_000 - Date.now();
  const wallet = await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token });
  t.deepEqual(wallet.body.expiringSoon, { points: 100, at: due.toISOString() });
});
