/**
 * The database a command-line tool works on: DATABASE_URL, or the embedded development server under DATA_DIR
 * (the one `npm start` is running, or one started for the duration of the command).
 */
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { shownDatabaseUrl } from './database-url.ts';
import { embeddedServerState, startEmbeddedPostgres } from './embedded.ts';
import { MIGRATION_CONNECT_TIMEOUT_MS, migrationNames, pendingMigrations, runMigrations } from './migrate.ts';

/** The port of the embedded server running on this data directory (the one `npm start` runs), if one is. */
async function runningEmbeddedPort(dataDir: string): Promise<number | undefined> {
  const state = await embeddedServerState(dataDir);
  return state.kind === 'running' ? state.port : undefined;
}

export interface LocalDatabase {
  url: string;
  /** True when the database is the embedded server this command started for itself (no service is running on it). */
  startedHere: boolean;
  close(): Promise<void>;
}

/**
 * Connects once to DATABASE_URL before anything else does: a server that refuses, an unknown database or user, a
 * wrong password fail start-up (and every command) naming the variable and where it points (its passwords left
 * out), not with PostgreSQL's bare message.
 */
export async function probeDatabaseUrl(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: MIGRATION_CONNECT_TIMEOUT_MS });
  try {
    await client.connect();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    // node-postgres says `timeout expired`: say which timeout, and after how long.
    const said = /timeout/i.test(reason) ? `no answer within ${MIGRATION_CONNECT_TIMEOUT_MS / 1000} s (connection timeout: ${reason})` : reason;
    throw new Error(`DATABASE_URL (${shownDatabaseUrl(url)}) cannot be used: ${said}`, { cause: error });
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function localDatabase(config: Config): Promise<LocalDatabase> {
  if (config.DATABASE_URL) {
    await probeDatabaseUrl(config.DATABASE_URL);
    return { url: config.DATABASE_URL, startedHere: false, close: async () => undefined };
  }
  // The service is running on the embedded server: use it rather than start a second one on the same files.
  const running = await runningEmbeddedPort(path.join(config.DATA_DIR, 'postgres'));
  if (running) return { url: `postgres://postgres:tally-embedded@127.0.0.1:${running}/tally`, startedHere: false, close: async () => undefined };
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(config.DATA_DIR, 'postgres') });
  const admin = new pg.Client({ connectionString: embedded.adminUrl });
  await admin.connect();
  try {
    if ((await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'tally'`)).rowCount === 0) await admin.query('CREATE DATABASE tally');
  } finally {
    await admin.end();
  }
  return { url: embedded.adminUrl.replace(/\/postgres$/, '/tally'), startedHere: true, close: () => embedded.stop() };
}

/** An operations command met migrations not applied yet (exit 2: it did nothing). */
export class MigrationsPending extends Error {
  constructor(readonly pending: string[]) {
    super(`${pending.length} migration${pending.length === 1 ? '' : 's'} pending: run \`npm run migrate\` (or deploy the release) first`);
  }
}

/**
 * The database of an operations command other than `npm run migrate`, at the schema of this code. Migrations pending
 * on DATABASE_URL, or on the embedded server a running `npm start` uses, are refused (`MigrationsPending`), never
 * applied: the next release's command run before deploying it would otherwise migrate under the older instances.
 * The embedded server this command started itself serves nobody else: there they are applied (a fresh checkout's
 * `npm run reconcile` works, as `npm start` would).
 */
export async function currentDatabase(config: Config, log?: Logger): Promise<LocalDatabase> {
  const database = await localDatabase(config);
  try {
    if (database.startedHere) await runMigrations(database.url, log);
    else {
      const client = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: MIGRATION_CONNECT_TIMEOUT_MS });
      client.on('error', () => undefined);
      await client.connect();
      try {
        const pending = await pendingMigrations((sql) => client.query(sql), await migrationNames());
        if (pending.length) throw new MigrationsPending(pending);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    return database;
  } catch (error) {
    await database.close();
    throw error;
  }
}
