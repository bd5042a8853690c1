/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL, or to the embedded server when unset.
 * Safe to run while the service runs: migrations take node-pg-migrate's advisory lock.
 */
import path from 'node:path';
import pg from 'pg';
import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { startEmbeddedPostgres } from '../postgres/embedded.ts';
import { runMigrations } from '../postgres/migrate.ts';

async function main(): Promise<void> {
  const config = await loadConfig();
  const log = createLogger({ level: config.LOG_LEVEL });
  let url = config.DATABASE_URL;
  let stop = async () => undefined as void;
  if (!url) {
    const embedded = await startEmbeddedPostgres({ dataDir: path.join(config.DATA_DIR, 'postgres') });
    stop = () => embedded.stop();
    const admin = new pg.Client({ connectionString: embedded.adminUrl });
    await admin.connect();
    if ((await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'tally'`)).rowCount === 0) await admin.query('CREATE DATABASE tally');
    await admin.end();
    url = embedded.adminUrl.replace(/\/postgres$/, '/tally');
  }
  try {
    const applied = await runMigrations(url, log);
    process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'No pending migrations.\n');
  } finally {
    await stop();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : `Migration failed: ${error instanceof Error ? error.message : String(error)}`}\n`);
  process.exit(1);
});
