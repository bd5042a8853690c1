/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL, or to the embedded server (the running one, or
 * one started for the command). Safe while the service runs: migrations take node-pg-migrate's advisory lock.
 */
import { ConfigError, loadConfig } from '../adapters/config.ts';
import { createLogger } from '../adapters/logger.ts';
import { runMigrations } from '../adapters/postgres/migrate.ts';
import { localDatabase } from '../adapters/postgres/local-database.ts';
import { commandArguments } from './arguments.ts';

commandArguments('Usage: npm run migrate (applies pending migrations to DATABASE_URL, or to the embedded server under DATA_DIR)', {});

async function main(): Promise<void> {
  const config = await loadConfig();
  const database = await localDatabase(config);
  try {
    const applied = await runMigrations(database.url, createLogger({ level: config.LOG_LEVEL }));
    process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'No pending migrations.\n');
  } finally {
    await database.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : `Migration failed: ${error instanceof Error ? error.message : String(error)}`}\n`);
  process.exit(1);
});
