/**
 * The daily expiry run over the wallet and program services (an in-memory log): a wallet, or an issued reward,
 * that cannot be expired is counted, reported and passed over, and every other wallet of every workspace is still
 * expired in the same run.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { expiryRun, type ExpiryRunFailure } from '../../domain/program/expiry-run.ts';
import { programService } from '../../domain/program/service.ts';
import { programStream } from '../../domain/program/program.ts';
import { walletsService } from '../../domain/wallets/service.ts';
import { walletStream, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { walletEvents } from '../../domain/wallets/events.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';
import { ConnectionUnavailable } from '../../domain/connections/errors.ts';

const DAY = 86_400_000;
const notConnected = async (): Promise<never> => {
  throw ConnectionUnavailable.because('not_connected');
};

test('one wallet whose stream does not decode is reported and passed over: the other wallets, and the workspace after it, are still expired', async (t) => {
  const store = new InMemoryEventStore();
  const runtime = { now: () => new Date(), newId: uuid };
  const wallets = walletsService({ store, runtime, commands: testCommandPath() });
  const program = programService({ store, runtime, commands: testCommandPath(), merchantLocations: notConnected });
  const credit = async (tenantId: string, walletId: string, points: number) => {
    const event: WalletEvent = {
      type: 'PointsCredited',
      data: { walletId, tenantId, consumerId: `c-${walletId}`, paymentId: `pay-${walletId}`, points, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' },
    };
    await store.append(walletStream(walletId), [{ id: uuid(), ...event, metadata: {} }], 'any');
  };
  for (const tenantId of ['t1', 't2']) await program.setExpiryPolicy(tenantId, { earnedMonths: 1, inactivityMonths: null, applyToExistingPoints: true }, 'merchant', {});
  await credit('t1', 'w-a', 100);
  await credit('t1', 'w-b', 80);
  await credit('t1', 'w-c', 50);
  await credit('t2', 'w-d', 70);
  // Wallet b holds an event a later deployment renamed a field of: its stream no longer decodes.
  const renamed = { walletId: 'w-b', tenantId: 't1', consumerId: 'c-w-b', paymentId: 'pay-b2', pointz: 80, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 8000, via: 'purchase' };
  await store.append(walletStream('w-b'), [{ id: uuid(), type: 'PointsCredited', data: renamed, metadata: {} }], 'any');
  // Wallet a has an issued reward past its time (locking 40 of its points), and so has wallet b.
  const coffee = { rewardId: 'rw', version: 1, name: 'Coffee', points: 40 };
  const issued = await wallets.issueReward('t1', 'w-a', { reward: coffee, idempotencyKey: 'k-a', expiresAfterDays: 1 }, 'cashier', {});

  const failures: ExpiryRunFailure[] = [];
  const run = expiryRun({
    wallets,
    program,
    tenantsWithPolicy: async () => ['t1', 't2'],
    walletsWithPoints: async (tenantId, after) => (after !== null ? [] : tenantId === 't1' ? ['w-a', 'w-b', 'w-c'] : ['w-d']),
    rewardsDue: async (_asOf, after) => (after !== null ? [] : [{ walletId: 'w-b', issuedRewardId: 'ir-b' }, { walletId: 'w-a', issuedRewardId: issued.issuedReward.issuedRewardId }]),
    onFailure: (failure) => failures.push(failure),
  });
  const report = await run(new Date(Date.now() + 70 * DAY), {});

  t.like(report, { workspaces: 2, walletsChecked: 4, walletsExpired: 3, pointsExpired: 220, rewardsExpired: 1, walletsFailed: 1, rewardsFailed: 1 });
  t.deepEqual(report.failures, [
    { walletId: 'w-b', issuedRewardId: 'ir-b', code: 'EVENT_UNDECODABLE' },
    { walletId: 'w-b', issuedRewardId: null, code: 'EVENT_UNDECODABLE' },
  ]);
  t.deepEqual(failures, report.failures, 'each one is told to the wiring, which logs it');
  const expired = async (walletId: string) =>
    walletEvents.decodeHandled(await store.readStream(walletStream(walletId))).flatMap((e) => (e.type === 'PointsExpired' ? [e.data.points] : []));
  t.deepEqual(await expired('w-a'), [100], 'the reward expired first, so all of wallet a\'s points expired in the same run');
  t.deepEqual(await expired('w-c'), [50], 'the wallet after the broken one');
  t.deepEqual(await expired('w-d'), [70], 'the workspace after it');
  t.is((await store.readStream(walletStream('w-b'))).length, 2, 'nothing was appended to the broken wallet');
});

test('a workspace whose expiry policy cannot be read is reported and passed over: the workspaces after it are still expired', async (t) => {
  const store = new InMemoryEventStore();
  const runtime = { now: () => new Date(), newId: uuid };
  const wallets = walletsService({ store, runtime, commands: testCommandPath() });
  const program = programService({ store, runtime, commands: testCommandPath(), merchantLocations: notConnected });
  const credited: WalletEvent = {
    type: 'PointsCredited',
    data: { walletId: 'w-e', tenantId: 't2', consumerId: 'c-w-e', paymentId: 'pay-e', points: 60, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 6000, via: 'purchase' },
  };
  await store.append(walletStream('w-e'), [{ id: uuid(), ...credited, metadata: {} }], 'any');
  await program.setExpiryPolicy('t2', { earnedMonths: 1, inactivityMonths: null, applyToExistingPoints: true }, 'merchant', {});
  // Workspace t1's program stream holds an event that does not decode (a field renamed by a later deployment).
  await program.setExpiryPolicy('t1', { earnedMonths: 1, inactivityMonths: null, applyToExistingPoints: true }, 'merchant', {});
  const [first] = await store.readStream(programStream('t1'));
  await store.append(programStream('t1'), [{ id: uuid(), type: first!.type, data: { renamed: true }, metadata: {} }], 'any');
  const told: string[] = [];
  const run = expiryRun({
    wallets,
    program,
    tenantsWithPolicy: async () => ['t1', 't2'],
    walletsWithPoints: async (tenantId, after) => (after !== null || tenantId !== 't2' ? [] : ['w-e']),
    rewardsDue: async () => [],
    onWorkspaceFailure: (tenantId) => told.push(tenantId),
  });
  const report = await run(new Date(Date.now() + 70 * DAY), {});
  t.like(report, { workspaces: 1, walletsExpired: 1, pointsExpired: 60, workspacesFailed: 1 });
  t.deepEqual(report.workspaceFailures, [{ tenantId: 't1', code: 'EVENT_UNDECODABLE' }]);
  t.deepEqual(told, ['t1']);
});
