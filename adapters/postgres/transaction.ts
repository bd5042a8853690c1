import type pg from 'pg';

const ignore = () => undefined;

/**
 * Checks a client out of the pool with `onError` already listening. pg-pool removes its own listener when it
 * hands a client out, and `await pool.connect()` resumes the caller only in a later microtask. When PostgreSQL
 * stops, its "terminating connection" message can arrive in the same socket read as the previous query's
 * completion, which hands the client straight to the next waiter: pg then emits 'error' on the client before
 * that microtask, with no listener, and the process crashes (seen in tests/faults/database-restart.test.ts).
 * The callback form of `connect` runs synchronously at hand-out, so nothing can come in between.
 */
export function checkOut(pool: pg.Pool, onError: (error: Error) => void = ignore): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    pool.connect((error, client) => {
      if (error || !client) return reject(error ?? new Error('the pool handed out no client'));
      client.on('error', onError);
      resolve(client);
    });
  });
}

/**
 * Runs `work` in one transaction on a client from the pool. A checked-out client has no error listener of
 * the pool's, so a connection dropped between two queries would crash the process: one is attached here
 * (from the moment of check-out), and a broken client is destroyed rather than returned to the pool.
 */
export async function withTransaction<T>(pool: pg.Pool, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const db = await checkOut(pool, ignore);
  let broken: Error | undefined;
  try {
    await db.query('BEGIN');
    const result = await work(db);
    await db.query('COMMIT');
    return result;
  } catch (error) {
    await db.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    db.off('error', ignore);
    db.release(broken);
  }
}
