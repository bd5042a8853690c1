import type pg from 'pg';

/** The pool, with `after` called (and awaited) once each statement whose text matches `sql` has answered. */
export function watchedPool(pool: pg.Pool, sql: RegExp, after: (rowCount: number) => Promise<void> | void): pg.Pool {
  const query = async (...args: unknown[]) => {
    const result = await (pool.query as (...a: unknown[]) => Promise<pg.QueryResult>)(...args);
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
    if (sql.test(text)) await after(result.rowCount ?? 0);
    return result;
  };
  return new Proxy(pool, { get: (target, name) => (name === 'query' ? query : Reflect.get(target, name, target)) });
}
