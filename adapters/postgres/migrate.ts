/**
 * Applies the plain SQL migrations in `migrations/` with node-pg-migrate. Its advisory lock is taken in
 * `wait` mode, so two instances starting at once apply each migration exactly once, one after the other.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { Logger } from 'pino';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
export const MIGRATIONS_TABLE = 'schema_migrations';

/** How long connecting may take: a server that accepts the connection and never answers fails start-up, not hangs it. */
export const MIGRATION_CONNECT_TIMEOUT_MS = 10_000;

export async function runMigrations(databaseUrl: string, log?: Logger): Promise<string[]> {
  // No statement timeout: a migration building an index, or waiting for another instance's lock, may take long.
  const applied = await runner({
    databaseUrl: { connectionString: databaseUrl, connectionTimeoutMillis: MIGRATION_CONNECT_TIMEOUT_MS },
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
}

/** Names of migration files not yet applied to the database (for readiness). */
export async function pendingMigrations(query: (sql: string) => Promise<{ rows: { name: string }[] }>, files: string[]): Promise<string[]> {
  let applied: Set<string>;
  try {
    applied = new Set((await query(`SELECT name FROM ${MIGRATIONS_TABLE}`)).rows.map((r) => r.name));
  } catch {
    return files;
  }
  return files.filter((f) => !applied.has(f));
}
