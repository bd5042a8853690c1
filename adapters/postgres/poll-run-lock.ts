/**
 * One payments poll run at a time across every instance: a session advisory lock on a key of its own, held on one
 * pooled connection for the run. The cron request may be cut by a proxy after ~60 s while its run goes on; the next
 * tick, on whichever instance, finds the lock held and polls nothing instead of starting a second run beside it.
 * The key is a single 64-bit one, like the projections' (`tally.projection:<name>`) and rebuilds'
 * (`tally.rebuild:<name>`), under its own name; the lease holders' two-key locks (class 31251) are another key space.
 * PostgreSQL drops the lock when the connection closes, so a crashed instance never leaves it held.
 */
import type pg from 'pg';

const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtextextended('tally.square-poll', 0)) AS locked`;
const UNLOCK_SQL = `SELECT pg_advisory_unlock(hashtextextended('tally.square-poll', 0))`;

/** Runs `run` if no other poll run holds the lock (`ran: false`, and nothing run, when one does). */
export async function exclusivePollRun<T>(pool: pg.Pool, run: () => Promise<T>): Promise<{ ran: true; result: T } | { ran: false }> {
  const client = await pool.connect();
  let locked: boolean;
  try {
    locked = (await client.query<{ locked: boolean }>(LOCK_SQL)).rows[0]?.locked === true;
  } catch (error) {
    client.release(true);
    throw error;
  }
  if (!locked) {
    client.release();
    return { ran: false };
  }
  try {
    return { ran: true, result: await run() };
  } finally {
    // A connection whose unlock failed is closed, not pooled: closing it is what releases the lock then.
    const unlocked = await client.query(UNLOCK_SQL).then(() => true, () => false);
    client.release(!unlocked);
  }
}
