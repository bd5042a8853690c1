/**
 * Snapshots of long streams on PostgreSQL: a cold process reads a wallet's snapshot and only the events after
 * it, decides exactly as a full fold would, and deleting every snapshot changes nothing but what is read.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { provideCommandPath } from '../../adapters/commands/path.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { EventStore, NewEvent } from '../../domain/ports/event-store.ts';
import { handleCommand, loadWithSnapshot } from '../../domain/shared/command-handler.ts';
import type { CommandPath } from '../../domain/shared/command-path.ts';
import { DomainError } from '../../domain/shared/errors.ts';
import { walletDecider, walletSnapshots, walletStream, type WalletCommand, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { countingReads } from '../support/counting-store.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

/** A wallet of `size` events: credits of 10 (payment `pay-i`) and, every fifth event, a redemption of 5 (key `key-i`). */
async function longWallet(size: number) {
  const owner = { walletId: uuid(), tenantId: uuid(), consumerId: uuid() };
  const events: NewEvent[] = Array.from({ length: size }, (_, i) => {
    const event: WalletEvent =
      i % 5 === 4
        ? { type: 'PointsRedeemed', data: { ...owner, points: 5, idempotencyKey: `key-${i}`, reference: null, redeemedBy: 'clerk' } }
        : {
            type: 'PointsCredited',
            data: { ...owner, paymentId: `pay-${i}`, points: 10, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1000, via: 'purchase' },
          };
    return { id: uuid(), ...event, metadata: { actor: 'system:test' } };
  });
  for (let from = 0; from < size; from += 500) await store.append(walletStream(owner.walletId), events.slice(from, from + 500), 'any');
  return owner;
}

/** The store, counting the events each read returns. */
const counting = () => countingReads(store);

const context = (path: CommandPath) => ({ newId: uuid, metadata: {}, path });
const snapshotRows = async (stream: string) =>
  (await database.pool.query<{ revision: string }>('SELECT revision FROM stream_snapshots WHERE stream = $1', [stream])).rows.map((r) => Number(r.revision));

/** What the wallet decides on a few probing commands, as outcomes a user would see. */
async function decisions(events: EventStore, path: CommandPath, walletId: string) {
  const probe = async (command: WalletCommand) => {
    const loaded = await loadWithSnapshot(events, path, walletStream(walletId), walletDecider);
    try {
      return walletDecider.decide(command, loaded.state).map((e) => e.type);
    } catch (error) {
      return error instanceof DomainError ? error.code : 'unexpected';
    }
  };
  const owner = { walletId, tenantId: '', consumerId: '' };
  return {
    creditAgain: await probe({ type: 'CreditPoints', ...owner, paymentId: 'pay-3', points: 10, ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1000, via: 'purchase' }),
    redeemReplayed: await probe({ type: 'RedeemPoints', walletId, points: 5, idempotencyKey: 'key-9', reference: null, by: 'clerk' }),
    keyReused: await probe({ type: 'RedeemPoints', walletId, points: 6, idempotencyKey: 'key-9', reference: null, by: 'clerk' }),
    tooMuch: await probe({ type: 'RedeemPoints', walletId, points: 1_000_000, idempotencyKey: uuid(), reference: null, by: 'clerk' }),
  };
}

test('a command on a long wallet writes its snapshot; a cold process then reads only the events after it and decides the same', async (t) => {
  const owner = await longWallet(1_000);
  const stream = walletStream(owner.walletId);
  const warm = provideCommandPath(database.pool);
  await handleCommand(store, stream, walletDecider, { type: 'RedeemPoints', walletId: owner.walletId, points: 1, idempotencyKey: uuid(), reference: null, by: 'clerk' }, context(warm));
  t.deepEqual(await snapshotRows(stream), [1_000], 'the stream had grown past 100 events with no snapshot: one is written at the new revision');

  const reads = counting();
  const cold = provideCommandPath(database.pool);
  const fromSnapshot = await loadWithSnapshot(reads.store, cold, stream, walletDecider);
  t.is(reads.read(), 0, 'nothing after the snapshot to read');
  t.is(fromSnapshot.state.balance, 800 * 10 - 200 * 5 - 1);
  t.deepEqual(await decisions(store, provideCommandPath(database.pool), owner.walletId), {
    creditAgain: [],
    redeemReplayed: [],
    keyReused: 'IDEMPOTENCY_KEY_REUSED',
    tooMuch: 'INSUFFICIENT_POINTS',
  });
});

test('snapshots are a cache: deleting a stream\'s snapshots changes no state and no decision, only how much is read', async (t) => {
  const owner = await longWallet(1_200);
  const stream = walletStream(owner.walletId);
  const path = provideCommandPath(database.pool);
  for (let i = 0; i < 3; i++) {
    await handleCommand(store, stream, walletDecider, { type: 'AdjustPoints', walletId: owner.walletId, points: 1, reason: 'goodwill', by: 'admin', idempotencyKey: null }, context(path));
  }
  t.deepEqual(await snapshotRows(stream), [1_200]);
  const reads = counting();
  const withSnapshot = await loadWithSnapshot(reads.store, provideCommandPath(database.pool), stream, walletDecider);
  t.is(reads.read(), 2, 'the snapshot, then the two events after it');
  const withDecisions = await decisions(store, provideCommandPath(database.pool), owner.walletId);

  // Only this wallet's: the file's tests run at once, and another reads its own snapshot meanwhile.
  await database.pool.query('DELETE FROM stream_snapshots WHERE stream = $1', [stream]);
  const withoutSnapshot = await loadWithSnapshot(reads.store, provideCommandPath(database.pool), stream, walletDecider);
  t.is(reads.read(), 1_203, 'the whole stream');
  t.deepEqual(walletSnapshots.toJson(withoutSnapshot.state), walletSnapshots.toJson(withSnapshot.state));
  t.is(withoutSnapshot.revision, withSnapshot.revision);
  t.deepEqual(await decisions(store, provideCommandPath(database.pool), owner.walletId), withDecisions);
});

test('a snapshot written by another version of the decider is never read', async (t) => {
  const owner = await longWallet(300);
  const stream = walletStream(owner.walletId);
  await handleCommand(store, stream, walletDecider, { type: 'AdjustPoints', walletId: owner.walletId, points: 1, reason: 'goodwill', by: 'admin', idempotencyKey: null }, context(provideCommandPath(database.pool)));
  t.deepEqual(await snapshotRows(stream), [300]);
  const changed = { ...walletDecider, snapshots: { ...walletSnapshots, version: walletSnapshots.version + 1 } };
  const reads = counting();
  const loaded = await loadWithSnapshot(reads.store, provideCommandPath(database.pool), stream, changed);
  t.is(reads.read(), 301, 'folded from the start');
  t.is(loaded.state.balance, 240 * 10 - 60 * 5 + 1);
});

test('a snapshot that no longer parses is a cache miss: the stream is folded from its start and the error is reported', async (t) => {
  const owner = await longWallet(150);
  const stream = walletStream(owner.walletId);
  const reported: string[] = [];
  const path = () => provideCommandPath(database.pool, { onSnapshotError: (s) => void reported.push(s) });
  await handleCommand(store, stream, walletDecider, { type: 'AdjustPoints', walletId: owner.walletId, points: 1, reason: 'goodwill', by: 'admin', idempotencyKey: null }, context(path()));
  await database.pool.query(`UPDATE stream_snapshots SET state = jsonb_set(state, '{balance}', '"many"') WHERE stream = $1`, [stream]);
  const loaded = await loadWithSnapshot(store, path(), stream, walletDecider);
  t.is(loaded.state.balance, 120 * 10 - 30 * 5 + 1);
  t.deepEqual(reported, [stream]);
});
