/**
 * The database a command-line tool works on: DATABASE_URL, or the embedded development server under DATA_DIR
 * (started for the duration of the command; stop `npm start` first, as both would use the same data directory).
 */
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config.ts';
import { startEmbeddedPostgres } from '../postgres/embedded.ts';

export async function cliDatabase(config: Config): Promise<{ url: string; close(): Promise<void> }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, close: async () => undefined };
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(config.DATA_DIR, 'postgres') });
  const admin = new pg.Client({ connectionString: embedded.adminUrl });
  await admin.connect();
  try {
    if ((await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'tally'`)).rowCount === 0) await admin.query('CREATE DATABASE tally');
  } finally {
    await admin.end();
  }
  return { url: embedded.adminUrl.replace(/\/postgres$/, '/tally'), close: () => embedded.stop() };
}
