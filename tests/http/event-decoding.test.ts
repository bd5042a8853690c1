/**
 * The renamed-field experiment of issue 13, over HTTP against the real service: a `PointsCredited` whose `points`
 * field was renamed in the event store. Before the codec it folded to a balance of NaN, a redemption was appended
 * on it and the projection stopped on a NOT NULL column with no word of which event. Now every reader stops at
 * that event and says which one: the redemption answers 500 and appends nothing, the projection reports it.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';

let service: TestService;
let call: ReturnType<typeof api>;
const ADMIN_EMAIL = 'ops@decoding.test';
/** The administrator (the first to register with ADMIN_EMAIL). */
let admin: { id: string; token: string };

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL });
  call = api(service.url);
  admin = await register('consumer', ADMIN_EMAIL);
});
test.after.always(async () => {
  await service?.stop();
});

async function register(role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) {
  const id = uuid();
  const token = await tokenFor(id, email);
  const response = await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
  if (response.status !== 201) throw new Error(`registration failed: ${JSON.stringify(response.body)}`);
  return { id, token };
}

/** An approved merchant's workspace and a wallet of a shopper's there, its stream written by hand (`credit`). */
async function walletOfShopper(name: string) {
  const merchant = await register('client', `owner-${name}@decoding.test`, { businessName: `${name} Cafe` });
  const approval = await call('PATCH', `/api/v1/admin/users/${merchant.id}/approve`, { token: admin.token });
  const tenantId = approval.body.user.tenantId as string;
  const shopper = await register('consumer', `shopper-${name}@decoding.test`);
  const walletId = uuid();
  const credit = (id: string, points: Record<string, number>) => ({
    id,
    type: 'PointsCredited',
    data: { walletId, tenantId, consumerId: shopper.id, paymentId: `pay-${id}`, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1000, via: 'purchase', ...points },
    metadata: { actor: 'system:test', schemaVersion: 1 },
  });
  return { merchant, walletId, stream: walletStream(walletId), credit };
}

test.serial('a stored PointsCredited with its points field renamed: a redemption answers 500 and appends nothing; the wallets projection stops at it, named', async (t) => {
  const { merchant, walletId, stream, credit } = await walletOfShopper('Decoding');
  await service.tally.store.append(stream, [credit(uuid(), { points: 10 })], 'no_stream');
  // As if an operator or a faulty migration had renamed the field in the stored row.
  const badId = uuid();
  const bad = await service.tally.store.append(stream, [credit(badId, { pointz: 40 })], 0);

  const redeem = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: merchant.token, body: { points: 5, idempotencyKey: uuid() } });
  t.is(redeem.status, 500);
  t.is(redeem.body.error.code, 'INTERNAL');
  t.notRegex(JSON.stringify(redeem.body), /pointz|PointsCredited/, 'a 500 says nothing of the internals');
  const stored = await service.tally.store.readStream(stream);
  t.deepEqual(stored.map((e) => e.revision), [0, 1], 'nothing was appended');
  const logged = service.logs.find((line) => line.includes('"EventDecodeFailed"') || line.includes('does not decode'));
  t.truthy(logged, 'the reason is logged');
  t.regex(logged ?? '', new RegExp(`${stream} revision 1 \\(position ${bad.position.replace(/[./]/g, '\\$&')}\\)`));

 const wallets = await eventually(
    async () => {
      const list = await call('GET', '/api/v1/admin/projections', { token: admin.token });
      return (list.body as { name: string; state: string; lastError: string | null; errorPosition: string | null }[]).find((p) => p.name === 'wallets');
    },
    (found) => found?.state === 'failed',
  );
  t.is(wallets?.state, 'failed', 'the wallets projection stops at the undecodable event');
  t.is(wallets?.errorPosition, bad.position);
  t.regex(wallets?.lastError ?? '', new RegExp(`PointsCredited v1 at ${stream} revision 1 .*points`));
  // The public readiness route says which projection failed, never the error's text (that is for administrators).
  const ready = await eventually(
    async () => (await fetch(`${service.url}/readyz`)).json() as Promise<{ status: string; checks: { projections: { detail: unknown } } }>,
    (body) => body.status === 'not_ready',
  );
  t.deepEqual(
    (ready.checks.projections.detail as { name: string; state: string }[]).find((p) => p.name === 'wallets'),
    { name: 'wallets', state: 'failed' },
  );
  t.notRegex(JSON.stringify(ready), /PointsCredited|revision \d|pointz|does not decode/);
  // It never folded into NaN: the balance read model still holds only the first credit.
  const row = await service.database.pool.query<{ points_balance: string }>('SELECT points_balance FROM wallets WHERE id = $1', [walletId]);
  t.is(row.rows[0]?.points_balance, '10');

  // Retry, for an administrator only, and only what has failed.
  t.is((await call('POST', '/api/v1/admin/projections/wallets/retry', { token: merchant.token })).status, 403);
  const unknown = await call('POST', '/api/v1/admin/projections/nonesuch/retry', { token: admin.token });
  t.is(unknown.status, 404);
  const running = await call('POST', '/api/v1/admin/projections/users/retry', { token: admin.token });
  t.is(running.status, 409);
  t.regex(running.body.error.message, /users has not failed/);
  // Still failed after a retry while the cause stands: it fails again on the same event.
  const early = await call('POST', '/api/v1/admin/projections/wallets/retry', { token: admin.token });
  t.is(early.status, 202);
  t.is(early.body.name, 'wallets');
  const again = await eventually(
    async () => (await call('GET', '/api/v1/admin/projections', { token: admin.token })).body.find((p: { name: string }) => p.name === 'wallets'),
    (found) => found?.state === 'failed',
  );
  t.is(again.errorPosition, bad.position, 'the same event fails again');

  // The operator mends the stored row (the field's old name back), then retries: fed from its checkpoint on.
  await service.database.pool.query(`UPDATE events SET data = (data - 'pointz') || '{"points": 40}' WHERE event_id = $1`, [badId]);
  const retried = await call('POST', '/api/v1/admin/projections/wallets/retry', { token: admin.token });
  t.is(retried.status, 202);
  t.is(retried.body.resumesAfter, again.checkpoint, 'fed again from its checkpoint, the event before the one it failed on');
  const mended = await eventually(
    async () => (await call('GET', '/api/v1/admin/projections', { token: admin.token })).body.find((p: { name: string }) => p.name === 'wallets'),
    (found) => found?.state === 'running' && found.upTo !== again.checkpoint,
  );
  t.is(mended.lastError, null);
  const balance = await eventually(
    async () => (await service.database.pool.query<{ points_balance: string }>('SELECT points_balance FROM wallets WHERE id = $1', [walletId])).rows[0]?.points_balance,
    (points) => points === '50',
  );
  t.is(balance, '50', 'the mended credit is applied');
});

// Serial, after the test above: each finds its own line in the service's log.
test.serial('a wallet stream holding an event of a type this code does not declare (a newer release wrote it): a redemption answers 500 and appends nothing', async (t) => {
  const { merchant, walletId, stream, credit } = await walletOfShopper('Newer');
  await service.tally.store.append(stream, [credit(uuid(), { points: 10 })], 'no_stream');
  await service.tally.store.append(stream, [{ id: uuid(), type: 'PointsGifted', data: { walletId, points: 40 }, metadata: { actor: 'system:test', schemaVersion: 1 } }], 0);

  const redeem = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: merchant.token, body: { points: 5, idempotencyKey: uuid() } });
  t.is(redeem.status, 500, 'nothing is decided on a stream this code cannot read whole');
  t.is(redeem.body.error.code, 'INTERNAL');
  t.notRegex(JSON.stringify(redeem.body), /PointsGifted/);
  t.deepEqual((await service.tally.store.readStream(stream)).map((e) => e.revision), [0, 1], 'nothing was appended');
  t.truthy(service.logs.find((line) => line.includes('PointsGifted') && line.includes(`${stream} revision 1`)), 'the reason is logged');
});
