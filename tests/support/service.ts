/**
 * Runs the real service (the composition root in main.ts) on a real socket against a fresh database,
 * capturing its log lines so tests can read them.
 */
import { Writable } from 'node:stream';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../adapters/logger.ts';
import { loadConfig, secretValues } from '../../adapters/config.ts';
import { startTally, type StartOptions, type Tally } from '../../main.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { startKurrentDbTestServer } from './kurrentdb-server.ts';

export interface TestService {
  url: string;
  tally: Tally;
  database: TestDatabase;
  /** Every log line written so far, raw JSON text. */
  logs: string[];
  stop(): Promise<void>;
}

/** What a test may set beside the configuration: the service's clock, when the retention runs start. */
export type TestStartOptions = Pick<StartOptions, 'now' | 'retention'>;

export async function startTestService(env: Record<string, string> = {}, options: TestStartOptions = {}): Promise<TestService> {
  const database = await createTestDatabase();
  // `TEST_EVENT_STORE=kurrentdb` (set by the *-kurrentdb.test.ts files before importing a suite): the same suite with
  // its events in KurrentDB, through the real client to the in-process protocol server (25.1: multi-stream appends).
  const kurrent = process.env.TEST_EVENT_STORE === 'kurrentdb' && !env.EVENTSTORE_URL ? await startKurrentDbTestServer() : undefined;
  const { tally, logs } = await startInstance(database.url, 'tally-svc-', kurrent ? { ...env, EVENTSTORE_URL: kurrent.connectionString } : env, options);
  return {
    url: tally.url,
    tally,
    database,
    logs,
    async stop() {
      await tally.stop();
      await kurrent?.stop();
      await database.drop();
    },
  };
}

/** A second instance of the service on the first one's database: its own process state, data directory and logs. */
export type SecondInstance = Omit<TestService, 'database'>;

/**
 * Starts another instance of the service on `service`'s database (what several instances behind a load balancer
 * share), with `env` as its configuration: pass every variable the first was given that it needs too (the keys).
 * Stopping it leaves the database to the first.
 */
export async function startSecondInstance(service: TestService, env: Record<string, string> = {}, options: TestStartOptions = {}): Promise<SecondInstance> {
  const { tally, logs } = await startInstance(service.database.url, 'tally-svc-second-', env, options);
  return { url: tally.url, tally, logs, stop: () => tally.stop() };
}

/** One instance of the service on a database, on a free port, with a data directory of its own; its log lines kept. */
async function startInstance(databaseUrl: string, dataDirPrefix: string, env: Record<string, string>, options: TestStartOptions = {}) {
  const logs: string[] = [];
  const fullEnv = {
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'debug',
    DATA_DIR: await mkdtemp(path.join(os.tmpdir(), dataDirPrefix)),
    DATABASE_URL: databaseUrl,
    // Suites send many deliberate 401s from one address; the limit has its own test.
    AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000',
    ...env,
  };
  const config = await loadConfig(fullEnv);
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  const log = createLogger({ level: 'debug', secrets: secretValues(config), destination });
  // The retention runs start an hour after a test service starts (as before 2026-12-08), not 10–60 s after: a suite
  // whose clock is moved months ahead would otherwise see bodies it reads emptied mid-test. A test of the start-up run
  // names its own schedule.
  return { tally: await startTally({ env: fullEnv, log, ...options, retention: { firstAfterMs: 3_600_000, jitterMs: 0, ...options.retention } }), logs };
}
