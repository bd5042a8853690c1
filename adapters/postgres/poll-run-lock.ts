/**
 * One payments poll run at a time across every instance: a session advisory lock on a key of its own, held on one
 * pooled connection for the run. The cron request may be cut by a proxy after ~60 s while its run goes on; the next
 * tick, on whichever instance, finds the lock held and polls nothing instead of starting a second run beside it.
 * The key is a single 64-bit one, like the projections' (`tally.projection:<name>`) and rebuilds'
 * (`tally.rebuild:<name>`), under its own name; the lease holders' two-key locks (class 31251) are another key space.
 * PostgreSQL drops the lock when the connection closes, so a crashed instance never leaves it held.
 */
import type pg from 'pg';
import { checkOut } from './transaction.ts';

const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtextextended('tally.square-poll', 0)) AS locked`;
const UNLOCK_SQL = `SELECT pg_advisory_unlock(hashtextextended('tally.square-poll', 0))`;

/**
 * Runs `run` if no other poll run holds the lock (`ran: false`, and nothing run, when one does). The lock's
 * connection sits idle through the run: if it is lost (a database restart, `pg_terminate_backend`, an
 * `idle_session_timeout`), the lock goes with it; `onLost` is told, the run goes on to its end, and the connection
 * is closed after (an error on a checked-out connection with no listener would end the process).
 */
export async function exclusivePollRun<T>(pool: pg.Pool, run: () => Promise<T>, onLost: (error: Error) => void = () => undefined): Promise<{ ran: true; result: T } | { ran: false }> {
  let lost: Error | undefined;
  const lose = (error: Error) => {
    if (lost) return;
    lost = error;
    onLost(error);
  };
  const client = await checkOut(pool, lose);
  const release = (destroy: boolean) => {
    client.off('error', lose);
    client.release(destroy || lost !== undefined);
  };
  let locked: boolean;
  try {
    locked = (await client.query<{ locked: boolean }>(LOCK_SQL)).rows[0]?.locked === true;
  } catch (error) {
    release(true);
    throw error;
  }
  if (!locked) {
    release(false);
    return { ran: false };
  }
  try {
    return { ran: true, result: await run() };
  } finally {
    // A connection whose unlock failed is closed, not pooled: closing it is what releases the lock then.
    const unlocked = lost ? false : await client.query(UNLOCK_SQL).then(() => true, () => false);
    release(!unlocked);
  }
}
