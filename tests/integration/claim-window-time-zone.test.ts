/**
 * The claim window's edge as SQL reads it, with the PostgreSQL session in a time zone that changes to summer time
 * within the window (a server whose `TimeZone` is its host's, America/New_York): `timestamptz - interval '90 days'`
 * counts calendar days there, an hour short across the change, and a purchase held for exactly the window (as the
 * decider counts it: 90 × 24 hours) was not listed, so a verified identity never claimed it.
 */
import test from 'ava';
import pg from 'pg';
import { CLAIM_WINDOW_DAYS } from '../../domain/payments/payment.ts';
import { heldPurchasesOf } from '../../projections/read/held-purchases.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let newYork: pg.Pool;
test.before(async () => {
  database = await createTestDatabase();
  newYork = new pg.Pool({ connectionString: database.url, options: '-c timezone=America/New_York' });
  // Ended before the database is dropped, its last backend may still be closing when the drop terminates it: an
  // idle client's error with no listener ended the whole test file (CI, 2026-12-08).
  newYork.on('error', () => undefined);
});
test.after.always(async () => {
  await newYork?.end();
  await database?.drop();
});

test('a purchase completed exactly the claim window ago, across a change to summer time, is still listed', async (t) => {
  const now = new Date('2027-06-01T16:00:00Z');
  const completedAt = new Date(now.getTime() - CLAIM_WINDOW_DAYS * 86_400_000); // 2027-03-03, before the change of 03-14
  await database.pool.query(`INSERT INTO held_purchases_by_customer (tenant_id, customer_id, payment_id, completed_at) VALUES ('t', 'cust', 'pay-edge', $1)`, [completedAt]);
  t.is((await newYork.query<{ TimeZone: string }>('SHOW timezone')).rows[0]!.TimeZone, 'America/New_York');
  t.deepEqual(await heldPurchasesOf(newYork, 't', 'cust', now, CLAIM_WINDOW_DAYS), ['pay-edge']);
});
