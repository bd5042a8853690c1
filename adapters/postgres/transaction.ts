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
export function withTransaction<T>(pool: pg.Pool, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  return transact(pool, (db) => db.query('BEGIN'), (db) => db.query('COMMIT'), work);
}

async function transact<T>(pool: pg.Pool, open: (db: pg.PoolClient) => Promise<unknown>, close: (db: pg.PoolClient) => Promise<unknown>, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const db = await checkOut(pool, ignore);
  let broken: Error | undefined;
  try {
    await open(db);
    const result = await work(db);
    await close(db);
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
 * The two ends of a transaction, each sent in the round trip of its BEGIN or COMMIT: a simple query (no parameters:
 * values inlined as literals, `pg.escapeLiteral`) that PostgreSQL runs statement by statement. A projection batch's
 * checkpoint lock and advance ride so: two round trips a batch instead of four (a loop of such transactions at
 * concurrency 8 on this machine's PostgreSQL: 237–370 µs of the machine's CPU a transaction against 293–460, and 66–171
 * µs of the client's against 114–256). A failure in either leaves the transaction aborted: it is rolled back as any.
 */
export interface TransactionEnds {
  /** Statements run right after BEGIN; the rows of the last one go to `opened` (which may throw to roll back). */
  afterBegin: string;
  opened(rows: pg.QueryResultRow[]): void;
  /** Run after the work, before the COMMIT's round trip (queries of their own). */
  beforeCommit?(db: pg.PoolClient): Promise<void>;
  /** Statements run right before COMMIT, in its round trip. */
  beforeCommitText(): string;
}

/** Opens the transaction on `db` with `ends.afterBegin` in the same round trip. */
async function begin(db: pg.PoolClient, ends: TransactionEnds): Promise<void> {
  const results = (await db.query(`BEGIN; ${ends.afterBegin}`)) as unknown as pg.QueryResult[];
  ends.opened(results[results.length - 1]?.rows ?? []);
}

/** Commits the transaction on `db` with `ends.beforeCommitText()` in the same round trip. */
async function commit(db: pg.PoolClient, ends: TransactionEnds): Promise<void> {
  await ends.beforeCommit?.(db);
  await db.query(`${ends.beforeCommitText()}; COMMIT`);
}

/** `withTransaction` whose BEGIN and COMMIT carry `ends` in their round trips. */
export function withTransactionEnds<T>(pool: pg.Pool, ends: TransactionEnds, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  return transact(pool, (db) => begin(db, ends), (db) => commit(db, ends), work);
}

/**
 * Like `withTransactionEnds`, but the transaction begins only when `work` issues its first query. Work that issues
 * no query costs no connection, no round trip and no commit (`began: false`), and neither end runs.
 */
export async function withLazyTransaction<T>(pool: pg.Pool, ends: TransactionEnds, work: (db: Queryable) => Promise<T>): Promise<{ value: T; began: boolean }> {
  let client: pg.PoolClient | undefined;
  let opening: Promise<pg.PoolClient> | undefined;
  const open = () =>
    (opening ??= (async () => {
      client = await checkOut(pool, ignore);
      await begin(client, ends);
      return client;
    })());
  const query = async (...args: unknown[]) => ((await open()).query as (...a: unknown[]) => Promise<unknown>)(...args);
  const db = { query } as unknown as Queryable;
  let broken: Error | undefined;
  try {
    const value = await work(db);
    if (!opening) return { value, began: false };
    await commit(await opening, ends);
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
