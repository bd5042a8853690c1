import type pg from 'pg';

const ignore = () => undefined;

/**
 * Runs `work` in one transaction on a client from the pool. A checked-out client has no error listener of
 * the pool's, so a connection dropped between two queries would crash the process: one is attached here,
 * and a broken client is destroyed rather than returned to the pool.
 */
export async function withTransaction<T>(pool: pg.Pool, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  db.on('error', ignore);
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
