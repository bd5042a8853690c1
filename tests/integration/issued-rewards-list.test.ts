/**
 * A wallet's list of issued rewards (`issuedRewardsOf`, behind GET …/wallets/:walletId/rewards): every reward still
 * issued, however old, and the newest settled ones. It was the newest 100 of all: a reward issued before 100 others
 * were settled, still to be redeemed with its points locked, was not listed.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { issuedRewardsOf, SETTLED_REWARDS_LISTED } from '../../projections/read/program.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

test('every reward still issued is listed, however old, with the newest settled ones', async (t) => {
  const walletId = uuid();
  const insert = (id: string, status: string, issuedAt: Date) =>
    database.pool.query(
      `INSERT INTO issued_rewards (issued_reward_id, wallet_id, tenant_id, reward_id, reward_name, points, status, issued_at, expires_at, settled_at)
       VALUES ($1, $2, 't', 'rw', 'Coffee', 10, $3, $4, $4::timestamptz + interval '1 year', CASE WHEN $3 = 'issued' THEN NULL ELSE $4::timestamptz END)`,
      [id, walletId, status, issuedAt],
    );
  const day = (n: number) => new Date(Date.UTC(2026, 0, 1) + n * 86_400_000);
  await insert('old-issued', 'issued', day(0));
  for (let i = 1; i <= SETTLED_REWARDS_LISTED + 20; i++) await insert(`settled-${String(i).padStart(3, '0')}`, i % 2 ? 'redeemed' : 'voided', day(i));
  await insert('new-issued', 'issued', day(200));

  const listed = await issuedRewardsOf(database.pool, walletId);
  const ids = listed.map((r) => r.issuedRewardId);
  t.is(listed.length, SETTLED_REWARDS_LISTED + 2);
  t.is(ids[0], 'new-issued', 'newest first');
  t.is(ids.at(-1), 'old-issued', 'the old reward still issued is listed, last');
  t.is(ids[1], `settled-${SETTLED_REWARDS_LISTED + 20}`, 'then the newest settled ones');
  t.false(ids.includes('settled-001'), 'the oldest settled ones are left out');
});
