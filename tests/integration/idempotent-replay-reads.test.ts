/**
 * A retried wallet write (the same idempotency key) answers as the first request did without reading the
 * wallet's history: it reads the one event of the first request, for its position, whatever the stream's length,
 * and whether the first request came before the wallet's snapshot, after it, or in this process's held state.
 * (Until 2026-12-08 a replay read and folded the whole stream, an issued reward's twice: on a wallet of 10,000
 * events a retry took 30 times a new request's time.)
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { provideCommandPath } from '../../adapters/commands/path.ts';
import type { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { NewEvent } from '../../domain/ports/event-store.ts';
import { walletsService, type IssuedRewardResult, type WalletsService, type WalletWriteResult } from '../../domain/wallets/service.ts';
import { walletStream, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { countingReads } from '../support/counting-store.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';
import { seedWallet, type WalletOwner } from '../support/hot-wallet.ts';

let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

/** The store, counting the events each read returns. */
const counting = () => countingReads(store);

/** `count` credits of 1 point, each its own payment, appended in one go. */
async function credits(owner: WalletOwner, count: number) {
  const events: NewEvent[] = Array.from({ length: count }, () => {
    const event: WalletEvent = {
      type: 'PointsCredited',
      data: { ...owner, paymentId: `pay-${uuid()}`, points: 1, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 100, via: 'purchase' },
    };
    return { id: uuid(), ...event, metadata: { actor: 'system:test' } };
  });
  await store.append(walletStream(owner.walletId), events, 'any');
}

const runtime = { now: () => new Date(), newId: uuid };
const snapshotRevisions = async (stream: string) =>
  (await database.pool.query<{ revision: string }>('SELECT revision FROM stream_snapshots WHERE stream = $1', [stream])).rows.map((r) => Number(r.revision));
const headRevision = async (stream: string) => (await store.readStream(stream, { direction: 'backwards', limit: 1 }))[0]!.revision;

/** A round of writes under keys of its own; the rewards it redeems and voids are known once it has issued them. */
interface Round {
  label: string;
  issued?: string;
  voided?: string;
}

/** The wallet writes of a round, through `wallets`: called once, the first request; called again, its replay. */
function writes(wallets: WalletsService, owner: WalletOwner, r: Round): Record<string, () => Promise<WalletWriteResult>> {
  const { tenantId, walletId } = owner;
  return {
    redeem: () => wallets.redeem(tenantId, walletId, { points: 30, idempotencyKey: `redeem-${r.label}`, reference: 'order-1' }, 'clerk', {}),
    adjust: () => wallets.adjust(walletId, { points: 5, reason: 'goodwill', idempotencyKey: `adjust-${r.label}` }, 'admin', {}),
    adjustAsMerchant: () => wallets.adjustAsMerchant(tenantId, walletId, { points: -3, reason: 'typo', idempotencyKey: `merchant-${r.label}` }, 50, 'merchant', {}),
    issueReward: () => wallets.issueReward(tenantId, walletId, { reward, idempotencyKey: `issue-${r.label}`, expiresAfterDays: 30 }, 'clerk', {}),
    redeemReward: () => wallets.redeemReward(tenantId, walletId, r.issued!, `redeem-reward-${r.label}`, 'clerk', {}),
    voidReward: () => wallets.voidReward(tenantId, walletId, r.voided!, 'by mistake', 'clerk', {}),
  };
}
const reward = { rewardId: uuid(), version: 1, name: 'Free coffee', points: 100 };

test('a replay of any wallet write reads one event, on a long wallet, its first answer before or after the snapshot, held or cold', async (t) => {
  const owner = { walletId: uuid(), tenantId: uuid(), consumerId: uuid() };
  const stream = walletStream(owner.walletId);
  await seedWallet(store, owner, 3_000, 1_000);
  const reads = counting();
  const wallets = walletsService({ store: reads.store, runtime, commands: provideCommandPath(database.pool) });

  const firstAnswers = async (r: Round) => {
    const answers = new Map<string, WalletWriteResult>();
    for (const [name, write] of Object.entries(writes(wallets, owner, r))) {
      const answer = await write();
      t.false(answer.replayed, `${r.label}: ${name} is a first request`);
      answers.set(name, answer);
      if (name === 'issueReward') {
        r.issued = (answer as IssuedRewardResult).issuedReward.issuedRewardId;
        r.voided = (await wallets.issueReward(owner.tenantId, owner.walletId, { reward, idempotencyKey: `to-void-${r.label}`, expiresAfterDays: 30 }, 'clerk', {})).issuedReward
          .issuedRewardId;
      }
    }
    return answers;
  };
  const before: Round = { label: 'before' };
  const beforeAnswers = await firstAnswers(before);
  t.deepEqual(await snapshotRevisions(stream), [3_000], 'the first command on the long wallet wrote its snapshot');
  // Past the snapshot by more than a tenth of the stream: the next command (the next round's first) writes a newer one.
  await credits(owner, 400);
  const after: Round = { label: 'after' };
  const afterAnswers = await firstAnswers(after);
  const [snapshotAt] = await snapshotRevisions(stream);
  t.true(snapshotAt! > 3_000 + 400, 'a newer snapshot, holding the first round and not all of the second');
  t.true((await headRevision(stream)) > snapshotAt!);
  await credits(owner, 20); // events the process has not folded yet

  /** Replays every write of both rounds through `service`: each answers its first answer and reads its one event. */
  const replays = async (label: string, service: WalletsService, unread: number) => {
    reads.read();
    for (const [r, answers] of [[before, beforeAnswers], [after, afterAnswers]] as const) {
      for (const [name, replay] of Object.entries(writes(service, owner, r))) {
        t.deepEqual(await replay(), { ...answers.get(name)!, replayed: true }, `${label}, ${r.label}: ${name} answers as the first time, position included`);
        t.is(reads.read(), unread + 1, `${label}, ${r.label}: ${name}'s replay read its one event (and, the first, the ${unread} the process had not folded)`);
        unread = 0;
      }
    }
  };
  await replays('held', wallets, 20);
  const head = await headRevision(stream);
  await replays('cold', walletsService({ store: reads.store, runtime, commands: provideCommandPath(database.pool) }), head - snapshotAt!);
  t.is(await headRevision(stream), head, 'the replays appended nothing');
});
