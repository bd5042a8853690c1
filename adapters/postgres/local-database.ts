/**
 * The database a command-line tool works on: DATABASE_URL, or the embedded development server under DATA_DIR
 * (the one `npm start` is running, or one started for the duration of the command).
 */
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config.ts';
import { embeddedServerState, startEmbeddedPostgres } from './embedded.ts';

/** The port of the embedded server running on this data directory (the one `npm start` runs), if one is. */
async function runningEmbeddedPort(dataDir: string): Promise<number | undefined> {
  const state = await embeddedServerState(dataDir);
  return state.kind === 'running' ? state.port : undefined;
}

export async function localDatabase(config: Config): Promise<{ url: string; close(): Promise<void> }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, close: async () => undefined };
  // The service is running on the embedded server: use it rather than start a second one on the same files.
  const running = await runningEmbeddedPort(path.join(config.DATA_DIR, 'postgres'));
  if (running) return { url: `postgres://postgres:tally-embedded@127.0.0.1:${running}/tally`, close: async () => undefined };
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
