/**
 * The parts every bounded context is built from: configuration, logger, database (pools), event store, runtime
 * (clock and ids), command path, metrics. The service (`startTally`) and the operations commands (`openOperations`)
 * build them with these same functions.
 */
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { v4 as uuidv4, v5 as uuidv5 } from 'uuid';
import { secretValues, type Config } from '../adapters/config.ts';
import { chooseLogFormat, createLogger } from '../adapters/logger.ts';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../adapters/postgres/embedded.ts';
import { probeDatabaseUrl } from '../adapters/postgres/local-database.ts';
import { PostgresEventStore } from '../adapters/eventstore/postgres.ts';
import { instrumentEventStore, type AppendObserver } from '../adapters/eventstore/instrumented.ts';
import { provideCommandPath } from '../adapters/commands/path.ts';
import type { Metrics } from '../adapters/metrics.ts';
import type { EventStore } from '../domain/ports/event-store.ts';
import type { KeyedRuntime } from '../domain/ports/identity.ts';
import type { CommandPath } from '../domain/shared/command-path.ts';
import type { Cleanups } from './lifecycle.ts';

const EMBEDDED_DATABASE = 'tally';

export interface Infrastructure {
  config: Config;
  env: NodeJS.ProcessEnv;
  log: Logger;
  databaseUrl: string;
  pool: pg.Pool;
  /** The event store as the application uses it (instrumented when metrics are given). */
  store: EventStore;
  /** The store as its adapter made it (the webhook worker commits inbox rows in the same transaction). */
  rawStore: EventStore;
  runtime: KeyedRuntime;
  commands: CommandPath;
}

export function provideLogger(config: Config, given?: Logger, level: string = config.LOG_LEVEL): Logger {
  return (
    given ??
    createLogger({
      level,
      secrets: secretValues(config),
      format: chooseLogFormat({ configured: config.LOG_FORMAT, nodeEnv: config.NODE_ENV, isTTY: Boolean(process.stdout.isTTY) }),
    })
  );
}

/** DATABASE_URL, or the embedded PostgreSQL server under DATA_DIR (development), created on first start. */
export async function provideDatabase(config: Config, log: Logger): Promise<{ url: string; embedded?: EmbeddedPostgresServer }> {
  if (config.DATABASE_URL) {
    await probeDatabaseUrl(config.DATABASE_URL);
    return { url: config.DATABASE_URL };
  }
  const dataDir = path.join(config.DATA_DIR, 'postgres');
  log.info({ dataDir }, 'DATABASE_URL is not set: starting the embedded PostgreSQL server');
  const serverLog = log.child({ component: 'embedded-postgres' });
  const embedded = await startEmbeddedPostgres({ dataDir, onLog: (line) => serverLog.debug(line), onWarning: (message) => serverLog.warn(message) });
  const admin = new pg.Client({ connectionString: embedded.adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [EMBEDDED_DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${EMBEDDED_DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = new URL(embedded.adminUrl);
  url.pathname = `/${EMBEDDED_DATABASE}`;
  log.info({ port: embedded.port }, 'embedded PostgreSQL server is ready');
  return { url: url.toString(), embedded };
}

/** A pool whose idle clients losing their connection do not crash the process (the next query reconnects). */
export function providePool(url: string, max: number, log: Logger, cleanups: Cleanups, what = 'idle database connection lost', statementTimeoutMs?: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000, ...(statementTimeoutMs ? { options: `-c statement_timeout=${statementTimeoutMs}` } : {}) });
  let ending = false;
  // Once the pool is ending, its idle clients' closing may meet the embedded server's own stop (pool.end() resolves
  // before their sockets are closed): expected then, not worth a warning.
  pool.on('error', (error) => (ending ? log.debug({ err: error }, `${what} (shutting down)`) : log.warn({ err: error }, what)));
  cleanups.add(() => {
    ending = true;
    return pool.end();
  });
  return pool;
}

export async function provideEventStore(config: Config, pool: pg.Pool, databaseUrl: string, log: Logger): Promise<EventStore> {
  if (config.EVENTSTORE_URL) {
    // Loaded only when configured: the KurrentDB client brings a native module the default setup does not need.
    const { createKurrentDbEventStore } = await import('../adapters/eventstore/kurrentdb.ts');
    log.info('event store: KurrentDB');
    return createKurrentDbEventStore(config.EVENTSTORE_URL);
  }
  log.info('event store: PostgreSQL');
  return new PostgresEventStore(pool, { connectionString: databaseUrl }, {
    appendGroups: { statementsInFlight: config.EVENT_APPENDS_IN_FLIGHT, maxAppends: config.EVENT_APPEND_GROUP_SIZE },
  });
}

/** Event store, runtime and command path over an open database. */
export async function provideInfrastructure(
  base: { config: Config; env: NodeJS.ProcessEnv; log: Logger; databaseUrl: string; pool: pg.Pool; metrics?: AppendObserver; now?: () => Date },
  cleanups: Cleanups,
): Promise<Infrastructure> {
  const { now, ...given } = base;
  const { config, log, pool, databaseUrl } = given;
  const rawStore = await provideEventStore(config, pool, databaseUrl, log);
  const store = base.metrics ? instrumentEventStore(rawStore, base.metrics) : rawStore;
  cleanups.add(() => store.close());
  // The service's clock: tests move it forward (StartOptions.now) to see points and rewards expire.
  const runtime: KeyedRuntime = { now: now ?? (() => new Date()), newId: () => uuidv4(), keyedId: (namespace, name) => uuidv5(name, namespace) };
  const commands = provideCommandPath(pool, {
    onSnapshotError: (stream, error) => log.warn({ err: error, stream }, 'stream snapshot not written or not readable (a cache: the stream is folded from its start)'),
  });
  return { ...given, rawStore, store, runtime, commands };
}
