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

/** What a unit of work may do with its connection: query. Transaction control and release stay with the caller. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * Like `withTransaction`, but the transaction begins only when `work` issues its first query, and `begin` runs
 * first inside it. Work that issues no query costs no connection, no round trip and no commit (`began: false`).
 * `finish` runs inside the transaction, after the work and before COMMIT, only if it began.
 */
export async function withLazyTransaction<T>(
  pool: pg.Pool,
  hooks: { begin(db: pg.PoolClient): Promise<void>; finish(db: pg.PoolClient): Promise<void> },
  work: (db: Queryable) => Promise<T>,
): Promise<{ value: T; began: boolean }> {
  let client: pg.PoolClient | undefined;
  let opening: Promise<pg.PoolClient> | undefined;
  const open = () =>
    (opening ??= (async () => {
      client = await checkOut(pool, ignore);
      await client.query('BEGIN');
      await hooks.begin(client);
      return client;
    })());
  const query = async (...args: unknown[]) => ((await open()).query as (...a: unknown[]) => Promise<unknown>)(...args);
  const db = { query } as unknown as Queryable;
  let broken: Error | undefined;
  try {
    const value = await work(db);
    if (!opening) return { value, began: false };
    const transaction = await opening;
    await hooks.finish(transaction);
    await transaction.query('COMMIT');
    return { value, began: true };
  } catch (error) {
    if (client) await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    if (client) {
      client.off('error', ignore);
      client.release(broken);
    }
  }
}
