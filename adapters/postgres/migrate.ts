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

export async function runMigrations(databaseUrl: string, log?: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
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
      error: (message: string) => log?.error({ migration: message }, 'migration'),
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
