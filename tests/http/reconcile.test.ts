/** Reconciliation by replay finds a deliberately corrupted read model, and never repairs it silently. */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { runCommand } from '../support/command.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { reconciler, settleWallets } from '../../projections/ops/reconcile.ts';

let service: TestService;
let call: ReturnType<typeof api>;
let admin: string;

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: 'ops@recon.test' });
  call = api(service.url);
  admin = await tokenFor(uuid(), 'ops@recon.test');
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
});
test.after.always(async () => {
  await service?.stop();
});

async function walletWithHistory(tenantId: string) {
  const walletId = uuid();
  const base = { walletId, tenantId, consumerId: uuid() };
  const credit = (paymentId: string, points: number) => ({
    id: uuid(),
    type: 'PointsCredited',
    data: { ...base, paymentId, points, ruleId: 'r1', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' },
  });
  const result = await service.tally.store.append(
    walletStream(walletId),
    [
      credit('p1', 120),
      credit('p2', 30),
      { id: uuid(), type: 'PointsRedeemed', data: { ...base, points: 50, idempotencyKey: 'k1', reference: null, redeemedBy: 'm' } },
      { id: uuid(), type: 'PointsReversed', data: { ...base, paymentId: 'p2', refundId: 'r1', points: 30 } },
    ],
    'no_stream',
  );
  await service.tally.runner.waitForPosition(result.position, 10_000);
  return walletId;
}

test.serial('a consistent ledger reconciles clean; a corrupted balance and a missing ledger line are both found', async (t) => {
  const tenantId = `tenant-${uuid().slice(0, 8)}`;
  const good = await walletWithHistory(tenantId);
  const bad = await walletWithHistory(tenantId);
  const clean = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.is(clean.status, 200);
  t.like(clean.body, { walletsChecked: 2, eventsReplayed: 8, mismatches: [] });

  // Someone patches a balance directly, and a ledger line disappears: exactly what runbook 5 hunts for.
  await service.database.pool.query('UPDATE wallets SET points_balance = points_balance + 5 WHERE id = $1', [bad]);
  const lost = await service.database.pool.query<{ id: string }>(`SELECT id FROM wallet_ledger WHERE wallet_id = $1 AND kind = 'redemption'`, [bad]);
  await service.database.pool.query('DELETE FROM wallet_ledger WHERE id = $1', [lost.rows[0]!.id]);

  const found = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.is(found.body.mismatches.length, 1);
  t.like(found.body.mismatches[0], {
    walletId: bad,
    tenantId,
    projected: { balance: 75, ledgerLines: 3 },
    replayed: { balance: 70, lifetimeEarned: 120, lifetimeRedeemed: 50, locked: 0, lifetimeExpired: 0, ledgerLines: 4 },
    firstDifferingEvent: { id: lost.rows[0]!.id, type: 'PointsRedeemed', revision: 2 },
  });

  const one = await call('GET', `/api/v1/admin/wallets/${bad}/reconcile`, { token: admin });
  t.like(one.body, { walletId: bad, consistent: false, eventsReplayed: 4 });
  t.like((await call('GET', `/api/v1/admin/wallets/${good}/reconcile`, { token: admin })).body, { consistent: true });
  t.like((await call('GET', `/api/v1/admin/wallets/${bad.toUpperCase()}/reconcile`, { token: admin })).body, { walletId: bad, consistent: false }, 'the id in upper case is the same wallet');

  const after = await service.database.pool.query<{ points_balance: string }>('SELECT points_balance FROM wallets WHERE id = $1', [bad]);
  t.is(Number(after.rows[0]!.points_balance), 75, 'reconciliation reports; it does not repair');
});

/** A wallet credited `points` once per entry, projected; its ledger lines' ids in stream order. */
async function credited(tenantId: string, points: number[]) {
  const walletId = uuid();
  const base = { walletId, tenantId, consumerId: uuid() };
  const events = points.map((n, i) => ({
    id: uuid(),
    type: 'PointsCredited',
    data: { ...base, paymentId: `p${i}`, points: n, ruleId: 'r1', ruleVersion: 1, basis: 'amount', basisAmountMinor: n * 100, via: 'purchase' },
  }));
  const result = await service.tally.store.append(walletStream(walletId), events, 'no_stream');
  await service.tally.runner.waitForPosition(result.position, 10_000);
  return { walletId, lines: events.map((e) => e.id) };
}

test.serial('a ledger line that says other points or another kind than its event is found, though the totals and the line count agree', async (t) => {
  const tenantId = `tenant-${uuid().slice(0, 8)}`;
  const edited = await credited(tenantId, [10]);
  const swapped = await credited(tenantId, [10, 20]);
  const renamed = await credited(tenantId, [5]);
  t.like((await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } })).body, { walletsChecked: 3, mismatches: [] });

  // The credit of 10 says 7 in the ledger; the wallet's row still says 10, and there is still one line.
  await service.database.pool.query('UPDATE wallet_ledger SET points = 7, balance_after = 7 WHERE wallet_id = $1', [edited.walletId]);
  // Two lines' points swapped: the same count and the same sum.
  await service.database.pool.query('UPDATE wallet_ledger SET points = 30 - points WHERE wallet_id = $1', [swapped.walletId]);
  // A purchase's line shown as a claim.
  await service.database.pool.query(`UPDATE wallet_ledger SET kind = 'claim' WHERE wallet_id = $1`, [renamed.walletId]);

  const report = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.is(report.status, 200);
  const found = new Map((report.body.mismatches as Array<{ walletId: string }>).map((m) => [m.walletId, m]));
  t.is(found.size, 3);
  t.like(found.get(edited.walletId), {
    projected: { balance: 10, ledgerLines: 1, ledgerPoints: 7 },
    replayed: { balance: 10, ledgerLines: 1, ledgerPoints: 10 },
    firstDifferingEvent: { id: edited.lines[0], type: 'PointsCredited', revision: 0 },
  });
  t.like(found.get(swapped.walletId), {
    projected: { ledgerLines: 2, ledgerPoints: 30 },
    replayed: { ledgerLines: 2, ledgerPoints: 30 },
    firstDifferingEvent: { id: swapped.lines[0], revision: 0 },
  });
  t.like(found.get(renamed.walletId), { projected: { ledgerPoints: 5 }, replayed: { ledgerPoints: 5 }, firstDifferingEvent: { id: renamed.lines[0] } });

  for (const wallet of [edited, swapped, renamed]) {
    const one = await call('GET', `/api/v1/admin/wallets/${wallet.walletId}/reconcile`, { token: admin });
    t.like(one.body, { walletId: wallet.walletId, consistent: false, mismatches: [{ firstDifferingEvent: { id: wallet.lines[0] } }] });
  }
});

/** `npm run reconcile -- --tenant <id> --json` against the service's database, as a child process. */
const reconcileCommand = (tenantId: string) => runCommand('reconcile', ['--tenant', tenantId, '--json'], { DATABASE_URL: service.database.url });

test.serial('npm run reconcile settles as the service does: the newest event need not be a wallet event', async (t) => {
  const tenantId = `tenant-${uuid().slice(0, 8)}`;
  const wallet = await credited(tenantId, [10]);
  // The head of the log is almost always something else in production: a poll's record, a user's event.
  const poll = await service.tally.store.append(
    `square-poll-${tenantId}`,
    [{ id: uuid(), type: 'SquarePaymentsPolled', data: { tenantId, merchantId: 'MRECONCILE', cursor: null, polledAt: new Date().toISOString(), summary: {} } }],
    'any',
  );
  t.deepEqual(await service.tally.store.headPosition(), poll.position);

  const clean = await reconcileCommand(tenantId);
  t.is(clean.code, 0, clean.err);
  t.true(clean.ms < 20_000, `answered in ${clean.ms} ms: it must not wait out its bound`);
  t.like(JSON.parse(clean.out), { walletsChecked: 1, eventsReplayed: 1, mismatches: [] });

  // The command finds an edited ledger line too, and exits 1.
  await service.database.pool.query('UPDATE wallet_ledger SET points = 7, balance_after = 7 WHERE wallet_id = $1', [wallet.walletId]);
  const edited = await reconcileCommand(tenantId);
  t.is(edited.code, 1, edited.err);
  t.like(JSON.parse(edited.out), { mismatches: [{ walletId: wallet.walletId, projected: { ledgerPoints: 7 }, replayed: { ledgerPoints: 10 } }] });
});

test.serial('a wallet the projections never saw is reported as missing from the read model', async (t) => {
  const tenantId = `tenant-${uuid().slice(0, 8)}`;
  const walletId = await walletWithHistory(tenantId);
  await service.database.pool.query('DELETE FROM wallets WHERE id = $1', [walletId]);
  const report = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId } });
  t.like(report.body.mismatches[0], { walletId, projected: null, replayed: { balance: 70 } });
  const bad = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenant: 'x' } });
  t.is(bad.status, 400);
  // A mistyped tenant is not a clean result: 404 here, exit 2 from the command.
  const unknown = await call('POST', '/api/v1/admin/reconcile', { token: admin, body: { tenantId: 'no-such-tenant' } });
  t.is(unknown.status, 404);
  t.regex(unknown.body.error.message, /Workspace no-such-tenant not found/);
  const command = await reconcileCommand('no-such-tenant');
  t.is(command.code, 2);
  t.regex(command.err, /Workspace no-such-tenant not found/);
});

test.serial('a reconciliation taken while wallets are credited reports no wallet that moved past its head (checked again), and still the one that is wrong', async (t) => {
  const tenantId = `tenant-${uuid().slice(0, 8)}`;
  const moving = await credited(tenantId, [10]);
  const wrong = await credited(tenantId, [20]);
  await service.database.pool.query('UPDATE wallets SET points_balance = 21 WHERE id = $1', [wrong.walletId]);
  const settle = settleWallets(service.tally.runner);
  let first = true;
  const reconciliation = reconciler({
    pool: service.database.pool,
    store: service.tally.store,
    // Once the replay's head is taken, a payment credits one wallet and a new customer's first: both are projected
    // before the rows are read, and neither is in the replay.
    settle: async (position) => {
      if (first) {
        first = false;
        await credited(tenantId, [5]);
        const more = await service.tally.store.append(
          walletStream(moving.walletId),
          [{ id: uuid(), type: 'PointsCredited', data: { walletId: moving.walletId, tenantId, consumerId: uuid(), paymentId: 'p-later', points: 7, ruleId: 'r1', ruleVersion: 1, basis: 'amount', basisAmountMinor: 700, via: 'purchase' } }],
          0,
        );
        await service.tally.runner.waitForPosition(more.position, 10_000);
      }
      return settle(position);
    },
  });
  const report = await reconciliation.all({ tenantId });
  t.is(report.walletsChecked, 2, 'the replay stopped at its head');
  t.deepEqual(
    report.mismatches.map((m) => ({ walletId: m.walletId, projected: m.projected?.balance, replayed: m.replayed?.balance })),
    [{ walletId: wrong.walletId, projected: 21, replayed: 20 }],
  );
  const one = await reconciliation.wallet(moving.walletId);
  t.true(one.consistent);
});
