/**
 * The wallets projection's replay (projections/wallets.ts `walletsReplay`, issue 16 item 3): a rebuild folds
 * balances in memory and writes ledger rows in big batches, and must still end with exactly the rows the live
 * projection's `apply` writes, column for column, also when it is cancelled and resumed, and when a batch rolls back.
 */
import test from 'ava';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import type { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { withTransaction } from '../../adapters/postgres/transaction.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { walletBalanceEvents } from '../../domain/wallets/events.ts';
import type { NewEvent, Position, RecordedEvent } from '../../domain/ports/event-store.ts';
import { ProjectionRebuilds } from '../../projections/rebuild.ts';
import { walletsProjection, walletsReplay } from '../../projections/wallets.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';

const silent = pino({ level: 'silent' });
let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
const tenantId = 'tenant-replay';
const wallets = Array.from({ length: 23 }, () => uuid());
const EVENTS = 1_150;

/** Every balance-changing kind, in an order that takes balances up and down, appended in transactions of 1 to 5 events. */
function walletEvent(walletId: string, i: number): NewEvent {
  const owner = { walletId, tenantId, consumerId: `consumer-${walletId}` };
  switch (i % 5) {
    case 0:
    case 1:
      return { id: uuid(), type: 'PointsCredited', data: { ...owner, paymentId: `p${i}`, points: 10 + (i % 13), ruleId: 'r', ruleVersion: 1, basis: 'amount', basisAmountMinor: 1000, via: i % 10 === 1 ? 'claim' : 'purchase' } };
    case 2:
      return { id: uuid(), type: 'PointsReversed', data: { ...owner, paymentId: `p${i - 2}`, refundId: `r${i}`, points: 3 } };
    case 3:
      return { id: uuid(), type: 'PointsRedeemed', data: { ...owner, points: 4, idempotencyKey: `k${i}`, reference: i % 2 ? `ref${i}` : null, redeemedBy: 'merchant' } };
    default:
      return { id: uuid(), type: 'PointsAdjusted', data: { ...owner, points: i % 3 ? 7 : -2, reason: 'goodwill', adjustedBy: 'admin-1', idempotencyKey: i % 2 ? null : `a${i}` } };
  }
}

const LEDGER = `SELECT id, wallet_id, tenant_id, entry_type, kind, points::int, balance_after::int, payment_id, refund_id, admin_id, reason, reference,
  idempotency_key, position, revision::int, created_at FROM TABLE ORDER BY id`;
const WALLETS = `SELECT id, tenant_id, consumer_id, points_balance::int, lifetime_earned::int, lifetime_redeemed::int, created_at, updated_at
  FROM TABLE ORDER BY id`;
const rows = async (sql: string, table: string) => (await database.pool.query(sql.replace('TABLE', table))).rows;

/** What the live projection writes: `apply` over the whole feed in batches of 97. */
let reference: { ledger: unknown[]; wallets: unknown[] };
let all: RecordedEvent[];
let head: Position;

test.before(async () => {
  ({ database, store, close } = await createTestEventStore());
  let i = 0;
  while (i < EVENTS) {
    const walletId = wallets[i % wallets.length]!;
    const size = 1 + (i % 5);
    await store.append(walletStream(walletId), Array.from({ length: size }, (_, k) => walletEvent(walletId, i + k)), 'any');
    i += size;
  }
  all = await store.readAll({ filter: { eventTypes: walletBalanceEvents.types } });
  head = all.at(-1)!.position;
  for (let at = 0; at < all.length; at += 97) {
    await withTransaction(database.pool, (db) => walletsProjection.apply(all.slice(at, at + 97), { db, table: (name) => name }));
  }
  await database.pool.query(`INSERT INTO projection_checkpoints (name, position, events_applied, status) VALUES ('wallets', $1, $2, 'running')`, [head, all.length]);
  reference = { ledger: await rows(LEDGER, 'wallet_ledger'), wallets: await rows(WALLETS, 'wallets') };
});
test.after.always(async () => close?.());

test.serial('a rebuild through the replay, cancelled half-way and resumed, ends with the rows apply writes, column for column', async (t) => {
  t.is(reference.ledger.length, all.length);
  let cancelling: Promise<unknown> | undefined;
  const rebuilds: ProjectionRebuilds = new ProjectionRebuilds(database.pool, { connectionString: database.url }, store, [walletsProjection], silent, uuid, {
    maxBatch: 100,
    onProgress: ({ jobId, eventsApplied }) => {
      if (eventsApplied >= 400 && !cancelling) cancelling = rebuilds.cancel(jobId);
    },
  });
  const job = await rebuilds.start('wallets');
  await rebuilds.wait(job.jobId);
  await cancelling;
  const cancelled = await rebuilds.get(job.jobId);
  t.is(cancelled?.state, 'cancelled', 'cancelled after some batches');
  t.true(cancelled!.eventsApplied >= 400 && cancelled!.eventsApplied < all.length);

  // Resumed by another instance (nothing in memory): the replay starts again from the fresh tables' ledger.
  const resumer = new ProjectionRebuilds(database.pool, { connectionString: database.url }, store, [walletsProjection], silent, uuid, { maxBatch: 100 });
  const resumed = await resumer.start('wallets');
  t.is(resumed.jobId, job.jobId, 'the cancelled job is resumed');
  const done = await resumer.wait(job.jobId);
  t.is(done?.state, 'completed');
  t.is(done?.eventsApplied, all.length, 'every event applied once');

  t.deepEqual(await rows(LEDGER, 'wallet_ledger'), reference.ledger, 'ledger rows, balances after each line included');
  t.deepEqual(await rows(WALLETS, 'wallets'), reference.wallets, 'wallets: balances, lifetime totals, first and last times');
});

test.serial('a replay batch that rolls back leaves nothing in memory: applied again, the figures are those of apply', async (t) => {
  const suffix = uuid().slice(0, 8);
  const table = (name: string) => `${name}__replay_${suffix}`;
  for (const name of ['wallets', 'wallet_ledger']) await database.pool.query(`CREATE TABLE ${table(name)} (LIKE ${name} INCLUDING ALL)`);
  const replay = walletsReplay();
  const decoded = walletBalanceEvents.decodeHandled(all);
  const batches = [decoded.slice(0, 300), decoded.slice(300, 700), decoded.slice(700)];

  await withTransaction(database.pool, (db) => replay.apply(batches[0]!, { db, table }));
  replay.committed();
  // The second batch fails after the replay staged it (its transaction rolls back), and the feed applies it again.
  await t.throwsAsync(
    withTransaction(database.pool, async (db) => {
      await replay.apply(batches[1]!, { db, table });
      throw new Error('the batch transaction failed');
    }),
    { message: 'the batch transaction failed' },
  );
  // A settle attempt that rolls back does not count as settled either.
  await t.throwsAsync(
    withTransaction(database.pool, async (db) => {
      await replay.settle({ db, table });
      throw new Error('the settle failed');
    }),
  );
  for (const batch of batches.slice(1)) {
    await withTransaction(database.pool, (db) => replay.apply(batch, { db, table }));
    replay.committed();
  }
  await withTransaction(database.pool, (db) => replay.settle({ db, table }));
  replay.committed();

  t.deepEqual(await rows(LEDGER, table('wallet_ledger')), reference.ledger);
  t.deepEqual(await rows(WALLETS, table('wallets')), reference.wallets);
});

/** Fresh copies of the two tables, as a rebuild makes them. */
async function freshTables() {
  const suffix = uuid().slice(0, 8);
  const table = (name: string) => `${name}__replay_${suffix}`;
  for (const name of ['wallets', 'wallet_ledger']) await database.pool.query(`CREATE TABLE ${table(name)} (LIKE ${name} INCLUDING ALL)`);
  return table;
}

test.serial('a replay holds at most its limit of wallets (plus one batch’s): past it a batch first writes them to their rows, with the same result', async (t) => {
  const table = await freshTables();
  const replay = walletsReplay({ held: 5 });
  const decoded = walletBalanceEvents.decodeHandled(all);
  let most = 0;
  for (let at = 0; at < decoded.length; at += 20) {
    const batch = decoded.slice(at, at + 20);
    await withTransaction(database.pool, (db) => replay.apply(batch, { db, table }));
    replay.committed();
    const inBatch = new Set(batch.map((e) => (e.data as { walletId: string }).walletId)).size;
    t.true(replay.holding() <= 5 + inBatch, `holding ${replay.holding()} after a batch of ${inBatch} wallets`);
    most = Math.max(most, replay.holding());
  }
  t.true(most < wallets.length, `never every wallet (${most} of ${wallets.length})`);
  await withTransaction(database.pool, (db) => replay.settle({ db, table }));
  replay.committed();
  t.is(replay.holding(), 0);
  t.deepEqual(await rows(LEDGER, table('wallet_ledger')), reference.ledger);
  t.deepEqual(await rows(WALLETS, table('wallets')), reference.wallets);
});

test.serial('a replay resumed with nothing left to apply still settles the rows a crash left behind the ledger', async (t) => {
  const table = await freshTables();
  const crashed = walletsReplay();
  const decoded = walletBalanceEvents.decodeHandled(all);
  for (const batch of [decoded.slice(0, 200), decoded.slice(200)]) {
    await withTransaction(database.pool, (db) => crashed.apply(batch, { db, table }));
    crashed.committed();
  }
  // The process died before settling: the rows hold their first batch's figures, the ledger is complete.
  t.notDeepEqual(await rows(WALLETS, table('wallets')), reference.wallets);
  const resumed = walletsReplay();
  await withTransaction(database.pool, (db) => resumed.settle({ db, table }));
  resumed.committed();
  t.deepEqual(await rows(WALLETS, table('wallets')), reference.wallets);
});
