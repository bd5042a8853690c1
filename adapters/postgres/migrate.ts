/**
 * Applies the plain SQL migrations in `migrations/` with node-pg-migrate. Its advisory lock is taken in
 * `wait` mode, so two instances starting at once apply each migration exactly once, one after the other.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from 'pino';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
export const MIGRATIONS_TABLE = 'schema_migrations';

/** How long connecting may take: a server that accepts the connection and never answers fails start-up, not hangs it. */
export const MIGRATION_CONNECT_TIMEOUT_MS = 10_000;

/**
 * How long a migration's statement waits for a lock (a table a long transaction of a running instance holds, or the
 * advisory lock of another instance migrating): past it, the migration rolls back and is tried again after a pause.
 * Without it, a migration waiting behind a long transaction for `ACCESS EXCLUSIVE` on a table queued every other
 * reader and writer of that table behind itself: an outage as long as that transaction.
 */
export const MIGRATION_LOCK_TIMEOUT_MS = 5_000;
/** Tries before giving up (at the default timeout and pauses: about 10 minutes of waiting). */
export const MIGRATION_LOCK_TRIES = 60;

export interface MigrationOptions {
  lockTimeoutMs?: number;
  tries?: number;
  /** The pause before try `n` (from 2): n seconds, at most 5 by default. */
  pauseMs?: (attempt: number) => number;
}

const lockNotAvailable = (error: unknown): boolean => {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === '55P03') return true;
  }
  return /lock timeout/i.test(String((error as Error | undefined)?.message));
};

export async function runMigrations(databaseUrl: string, log?: Logger, options: MigrationOptions = {}): Promise<string[]> {
  const tries = options.tries ?? MIGRATION_LOCK_TRIES;
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateOnce(databaseUrl, log, options.lockTimeoutMs ?? MIGRATION_LOCK_TIMEOUT_MS);
    } catch (error) {
      if (!lockNotAvailable(error) || attempt >= tries) throw error;
      const pause = (options.pauseMs ?? ((n) => Math.min(n, 5) * 1000))(attempt + 1);
      log?.warn({ attempt, tries, pauseMs: pause, reason: (error as Error).message }, 'a migration waited too long for a lock (a long transaction, or another instance migrating): rolled back, trying again');
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

async function migrateOnce(databaseUrl: string, log: Logger | undefined, lockTimeoutMs: number): Promise<string[]> {
  // No statement timeout: a migration building an index may take long. A lock waited for is bounded (above).
  // Our own client, ended (awaited) before this returns: node-pg-migrate's own is ended without waiting, so a command
  // that stopped its embedded server right after met `terminating connection` on a client nobody listened to, and
  // crashed after printing its success. A connection lost is thrown by the query that meets it.
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: MIGRATION_CONNECT_TIMEOUT_MS, options: `-c lock_timeout=${lockTimeoutMs}` });
  client.on('error', (error) => log?.debug({ err: error }, 'migration connection lost'));
  try {
    await client.connect();
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      migrationsTable: MIGRATIONS_TABLE,
      direction: 'up',
      count: Infinity,
      advisoryLockMode: 'wait',
      checkOrder: true,
      logger: {
        debug: () => undefined,
        info: (message: string) => log?.debug({ migration: message }, 'migration'),
        warn: (message: string) => log?.warn({ migration: message }, 'migration'),
        // The failure itself is thrown to the caller, which says it once; the runner's own line carries a stack.
        error: (message: string) => log?.debug({ migration: message }, 'migration'),
      },
    });
    return applied.map((m) => m.name);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The names of the migration files (as `schema_migrations` records them: without `.sql`). */
export async function migrationNames(): Promise<string[]> {
  return (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
}

/**
 * Names of migration files not yet applied to the database (for readiness): every file when the database has no
 * migrations table (a new or wrong database). Any other failure (the database unreachable) is thrown, so that
 * readiness says the check failed rather than that every migration is pending (an operator would migrate, or point
 * the service elsewhere, when the database was only down).
 */
export async function pendingMigrations(query: (sql: string) => Promise<{ rows: { name: string }[] }>, files: string[]): Promise<string[]> {
  let applied: Set<string>;
  try {
    applied = new Set((await query(`SELECT name FROM ${MIGRATIONS_TABLE}`)).rows.map((r) => r.name));
  } catch (error) {
    // 42P01: undefined_table.
    if ((error as { code?: unknown } | null)?.code === '42P01') return files;
    throw error;
  }
  return files.filter((f) => !applied.has(f));
}
