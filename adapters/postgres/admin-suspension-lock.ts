/**
 * One suspension of an admin at a time across every instance: a session advisory lock on a key of its own
 * (`tally.admin-suspension`, a single 64-bit key like the poll run's), taken on a connection of its own for the
 * decision and its append. Not a pooled connection: requests waiting for the lock would otherwise hold the pool's
 * connections that the holder's append needs. PostgreSQL drops the lock when the connection closes, so a crashed
 * instance never leaves it held; a holder stuck longer than 10 s makes the next one give up (503, retry).
 */
import pg from 'pg';
import { DomainError } from '../../domain/shared/errors.ts';

const LOCK_SQL = `SELECT pg_advisory_lock(hashtextextended('tally.admin-suspension', 0))`;
const LOCK_WAIT_MS = 10_000;

export function adminSuspensionLock(connectionString: string) {
  return async <T>(work: () => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: LOCK_WAIT_MS, application_name: 'tally-admin-suspension' });
    // A connection lost meanwhile fails its next query (or nothing): never an unhandled 'error' event.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query(`SET lock_timeout = ${LOCK_WAIT_MS}`);
      await client.query(LOCK_SQL).catch((error: { code?: string }) => {
        if (error.code !== '55P03') throw error;
        throw new DomainError('STREAM_CONTENDED', "Another administrator's suspension is under way; retry in a moment");
      });
      return await work();
    } finally {
      // Closing the connection releases the lock.
      await client.end().catch(() => undefined);
    }
  };
}
