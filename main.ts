/**
 * The composition root: configuration → adapters → application → HTTP. Nothing else wires dependencies.
 * `npm start` runs this file; tests call `startTally` to run the real service on a real socket.
 */
import { randomInt } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import http from 'node:http';
import pg from 'pg';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, secretValues, type Config } from './adapters/config.ts';
import { chooseLogFormat, createLogger } from './adapters/logger.ts';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from './adapters/postgres/embedded.ts';
import { MIGRATIONS_DIR, pendingMigrations, runMigrations } from './adapters/postgres/migrate.ts';
import { PostgresEventStore } from './adapters/eventstore/postgres.ts';
import type { EventStore } from './domain/ports/event-store.ts';
import { ProjectionRunner } from './projections/runner.ts';
import { allProjections } from './projections/index.ts';
import { createHttpApp } from './http/app.ts';
import { healthRouter } from './http/routes/health.ts';
import { adminConsoleRouter } from './http/routes/admin-console.ts';
import { posPageRouter } from './http/routes/pos-page.ts';
import { buildRouter, type RouteSpec } from './http/routes/table.ts';
import { accountRoutes } from './http/routes/accounts.ts';
import { walletRoutes } from './http/routes/wallets.ts';
import { rewardRoutes } from './http/routes/rewards.ts';
import { programRoutes } from './http/routes/program.ts';
import { rewardCatalogService } from './domain/rewards/catalog-service.ts';
import { programService } from './domain/program/service.ts';
import { expiryRun } from './domain/program/expiry-run.ts';
import { issuedRewardsDue, tenantsWithExpiryPolicy, walletsWithPoints } from './projections/read/program.ts';
import { accessControl } from './http/access.ts';
import { failureLimiter } from './http/rate-limit.ts';
import { createTokenVerifier } from './http/auth.ts';
import { createIdentityHasher } from './adapters/identity/hasher.ts';
import { postgresPersonalData } from './adapters/postgres/personal-data.ts';
import { accountsService } from './domain/users/service.ts';
import { loadState } from './domain/shared/command-handler.ts';
import { workspaceDecider, workspaceStream } from './domain/workspaces/workspace.ts';
import { rewardRulesService } from './domain/rewards/service.ts';
import { ruleSetDecider, ruleSetStream, unretiredVersions } from './domain/rewards/rule-set.ts';
import { attachCustomerIdentity } from './domain/payments/identity-attach.ts';
import { CLAIM_WINDOW_DAYS } from './domain/payments/purchase.ts';
import { heldPurchasesOf } from './projections/read/held-purchases.ts';
import { walletsService } from './domain/wallets/service.ts';
import { createSquareGateway } from './adapters/square/client.ts';
import { OAUTH_CALLBACK_PATH, squareSettings } from './adapters/square/settings.ts';
import { developmentSimulator, type DevelopmentSimulator } from './adapters/square/simulator/development.ts';
import { keyring } from './adapters/crypto/keys.ts';
import { postgresTokenVault } from './adapters/postgres/token-vault.ts';
import { postgresOAuthStates } from './adapters/oauth/state.ts';
import { squareConnectionsService, type SquareAccess, type SquareConnectionsService } from './domain/connections/service.ts';
import { tenantsWithStatus } from './projections/read/connections.ts';
import { connectionRoutes } from './http/routes/connections.ts';
import { WEBHOOK_PATH, webhookRoutes } from './http/routes/webhooks.ts';
import { ingestionRoutes } from './http/routes/ingestion.ts';
import { auditRoutes } from './http/routes/audit.ts';
import { eventStreamRoutes } from './http/routes/event-stream.ts';
import { LiveTail } from './projections/live-tail.ts';
import { metricsRouter } from './http/routes/metrics.ts';
import { createMetrics, LAG_COUNT_CAP, type Metrics } from './adapters/metrics.ts';
import { oldestAppendInFlight } from './adapters/eventstore/postgres-horizon.ts';
import { callerView, forgetOnAppend } from './projections/caller-view.ts';
import { withPollMetrics, withRefreshMetrics } from './adapters/metrics-hooks.ts';
import { instrumentEventStore } from './adapters/eventstore/instrumented.ts';
import { provideCommandPath } from './adapters/commands/path.ts';
import type { CommandPath } from './domain/shared/command-path.ts';
import { postgresCheckpointProbe } from './adapters/eventstore/postgres-checkpoint.ts';
import { operationsRoutes } from './http/routes/operations.ts';
import { openApiRouter } from './http/routes/openapi.ts';
import { projectionRoutes } from './http/routes/projections.ts';
import { ProjectionRebuilds } from './projections/rebuild.ts';
import { reconciler } from './projections/ops/reconcile.ts';
import { groupedRecorder, webhookInbox } from './adapters/postgres/webhook-inbox.ts';
import { WebhookProcessor, type InboxCommit } from './adapters/workers/webhook-processor.ts';
import { ingestionService } from './domain/payments/ingestion.ts';
import { webhookHandler } from './domain/payments/webhook-handler.ts';
import { pollService } from './domain/payments/poll.ts';
import { adminWithEmail, consumersByIdentity, suspendedUserWithEmail } from './projections/read/accounts.ts';
import { phoneVerificationService } from './domain/users/phone-verification.ts';
import { postgresPhoneVerifications } from './adapters/postgres/phone-verifications.ts';
import type { SmsSender } from './domain/ports/sms.ts';
import { consoleSms } from './adapters/sms/console.ts';
import { twilioSms } from './adapters/sms/twilio.ts';
import { IngestionState } from './domain/payments/ingestion-state.ts';
import { customerCache } from './domain/payments/customer-cache.ts';
import { squareApis } from './domain/payments/square-apis.ts';
import type { Runtime } from './domain/ports/identity.ts';
import type { Position } from './domain/ports/event-store.ts';
import { v4 as uuidv4, v5 as uuidv5 } from 'uuid';

export interface Tally {
  /** Base URL the HTTP server listens on. */
  url: string;
  /** Every API route, as declared (the isolation test walks them). */
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
  /** Empties raw webhook bodies processed more than WEBHOOK_BODY_RETENTION_DAYS ago (also run hourly); answers how many. */
  pruneWebhookBodies(): Promise<number>;
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides the logger (tests capture log lines). */
  log?: Logger;
  /** Overrides the service's clock (tests move it forward to see points and rewards expire); the log's own time is the database's. */
  now?: () => Date;
}

const EMBEDDED_DATABASE = 'tally';
/** Namespace for tenant ids derived from the owning user's id (uuid v5): provisioning twice gives one tenant. */
const TENANT_NAMESPACE = '6f1c1f3e-3f0b-4a8e-9a4c-7d2b9e0c5a11';
/** Namespace for wallet ids: one wallet per consumer per tenant, the same id however the credit arrives. */
const WALLET_NAMESPACE = 'b3a4c2d1-8e7f-4a6b-9c5d-2e1f0a9b8c7d';
const walletIdFor = (tenantId: string, consumerId: string) => uuidv5(`${tenantId}:${consumerId}`, WALLET_NAMESPACE);

/**
 * What the operations commands (`npm run rebuild`, `npm run reconcile`) work with: the same database and event
 * store as the service, and the same projections, wired here so that the composition root stays the only one.
 */
export async function openOperations(env: NodeJS.ProcessEnv = process.env) {
  const config = await loadConfig(env);
  const log = createLogger({ level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, secrets: secretValues(config) });
  const { cliDatabase } = await import('./adapters/cli/database.ts');
  const database = await cliDatabase(config);
  await runMigrations(database.url, log);
  const pool = new pg.Pool({ connectionString: database.url, max: 10 });
  pool.on('error', () => undefined);
  const store = await provideEventStore(config, pool, database.url, log);
  const projections = allProjections({ store, newId: () => uuidv4(), walletIdFor, commands: provideCommandPath(pool) });
  return {
    config,
    log,
    pool,
    store,
    projections,
    connectionConfig: { connectionString: database.url } as pg.ClientConfig,
    async close() {
      await store.close();
      await pool.end();
      await database.close();
    },
  };
}

async function provideDatabase(config: Config, log: Logger): Promise<{ url: string; embedded?: EmbeddedPostgresServer }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL };
  const dataDir = path.join(config.DATA_DIR, 'postgres');
  log.info({ dataDir }, 'DATABASE_URL is not set: starting the embedded PostgreSQL server');
  const serverLog = log.child({ component: 'embedded-postgres' });
  const embedded = await startEmbeddedPostgres({ dataDir, onLog: (line) => serverLog.debug(line) });
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

async function provideEventStore(config: Config, pool: pg.Pool, databaseUrl: string, log: Logger): Promise<EventStore> {
  if (config.EVENTSTORE_URL) {
    // Loaded only when configured: the KurrentDB client brings a native module the default setup does not need.
    const { createKurrentDbEventStore } = await import('./adapters/eventstore/kurrentdb.ts');
    log.info('event store: KurrentDB');
    return createKurrentDbEventStore(config.EVENTSTORE_URL);
  }
  log.info('event store: PostgreSQL');
  return new PostgresEventStore(pool, { connectionString: databaseUrl });
}

/** The Square connection context: the gateway only when the app's credentials are configured, the vault, OAuth states. */
/** The SMS port for one-time phone codes: Twilio when configured, the log in development, none otherwise. */
function provideSms(config: Config, log: Logger): SmsSender | undefined {
  const provider = config.SMS_PROVIDER ?? (config.NODE_ENV === 'production' ? 'none' : 'console');
  if (provider === 'console') return consoleSms(log.child({ component: 'sms' }));
  if (provider === 'twilio' && config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN && config.TWILIO_FROM) {
    return twilioSms({ accountSid: config.TWILIO_ACCOUNT_SID, authToken: config.TWILIO_AUTH_TOKEN, from: config.TWILIO_FROM, baseUrl: config.TWILIO_BASE_URL });
  }
  return undefined;
}

function provideSquareConnections(config: Config, env: NodeJS.ProcessEnv, pool: pg.Pool, store: EventStore, runtime: Runtime, commands: CommandPath) {
  const keys = keyring(config.ENCRYPTION_KEY, config.ENCRYPTION_KEY_PREVIOUS);
  const settings = squareSettings(config, env, config.SQUARE_WEBHOOK_URL ?? `${config.API_BASE_URL}${WEBHOOK_PATH}`);
  const missing = (['SQUARE_APP_ID', 'SQUARE_APP_SECRET'] as const).filter((name) => !config[name]);
  const square: SquareAccess =
    config.SQUARE_APP_ID && config.SQUARE_APP_SECRET
      ? {
          configured: true,
          gateway: createSquareGateway({
            appId: config.SQUARE_APP_ID,
            appSecret: config.SQUARE_APP_SECRET,
            environment: config.SQUARE_ENVIRONMENT,
            timeoutSeconds: config.SQUARE_TIMEOUT_SECONDS,
            ...(config.SQUARE_BASE_URL ? { baseUrl: config.SQUARE_BASE_URL } : {}),
          }),
        }
      : { configured: false, missing };
  const connections = squareConnectionsService({
    store,
    vault: postgresTokenVault(pool, keys),
    oauthStates: postgresOAuthStates(pool, keys),
    square,
    runtime,
    commands,
    redirectUri: settings.redirectUri,
    startUrl: settings.startUrl,
    tenantsWithStatus: (statuses) => tenantsWithStatus(pool, statuses),
    unretiredRules: async (tenantId) => unretiredVersions((await loadState(store, ruleSetStream(tenantId), ruleSetDecider)).state),
  });
  return { connections, settings };
}

/**
 * How the webhook worker writes a batch: on PostgreSQL the events and the inbox rows' outcomes commit in one
 * transaction; elsewhere the events are appended first and the rows settled after (a crash in between only
 * means the batch is decided again, and finds its effects already recorded).
 */
function inboxCommit(rawStore: EventStore, store: EventStore, metrics: Metrics): InboxCommit {
  if (rawStore instanceof PostgresEventStore) {
    return async (requests, settle) => {
      const result = await rawStore.appendMany(requests, { inTransaction: (client) => settle(client) });
      for (const { stream, events } of requests) metrics.appended(stream, events.length);
      return result.position;
    };
  }
  return async (requests, settle) => {
    const position = requests.length ? (await store.appendMany(requests)).position : undefined;
    await settle();
    return position;
  };
}

export async function startTally(options: StartOptions = {}): Promise<Tally> {
  const config = await loadConfig(options.env ?? process.env);
  const log =
    options.log ??
    createLogger({
      level: config.LOG_LEVEL,
      secrets: secretValues(config),
      format: chooseLogFormat({ configured: config.LOG_FORMAT, nodeEnv: config.NODE_ENV, isTTY: Boolean(process.stdout.isTTY) }),
    });
  if (config.generatedSecrets.length) {
    log.warn(
      { generated: config.generatedSecrets, file: path.join(config.DATA_DIR, 'dev-secrets.json') },
      'development secrets were not configured: using generated ones (never do this in production)',
    );
  }

  const database = await provideDatabase(config, log);
  const cleanups: (() => Promise<void>)[] = [];
  if (database.embedded) cleanups.unshift(() => database.embedded!.stop());
  try {
    const applied = await runMigrations(database.url, log);
    if (applied.length) log.info({ applied }, 'migrations applied');
    const pool = new pg.Pool({ connectionString: database.url, max: config.DATABASE_POOL_SIZE, connectionTimeoutMillis: 5000 });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    pool.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'));
    cleanups.unshift(() => pool.end());
    // Acknowledging a webhook is one insert that Square waits for: its own connections, so that a busy worker,
    // projections or reads never queue it behind them.
    const ackPool = new pg.Pool({ connectionString: database.url, max: config.WEBHOOK_POOL_SIZE, connectionTimeoutMillis: 5000 });
    ackPool.on('error', (error) => log.warn({ err: error }, 'idle database connection lost (webhook acknowledgements)'));
    cleanups.unshift(() => ackPool.end());

    const metrics = createMetrics({ onCollectError: (error) => log.warn({ err: error }, 'metrics: projection readings unavailable for this scrape') });
    const rawStore = await provideEventStore(config, pool, database.url, log);
    const store = instrumentEventStore(rawStore, metrics);
    cleanups.unshift(() => store.close());
    const runtime: Runtime = { now: options.now ?? (() => new Date()), newId: () => uuidv4() };
    const commands = provideCommandPath(pool, {
      onSnapshotError: (stream, error) => log.warn({ err: error, stream }, 'stream snapshot not written or not readable (a cache: the stream is folded from its start)'),
    });
    const hasher = createIdentityHasher(config.IDENTITY_HASH_KEY);
    // Callers' role, status and tenant in memory, current from the feed (projections/caller-view.ts).
    const callers = callerView(store, { onError: (error) => log.warn({ err: error }, 'caller view: subscription ended; reading callers from their streams until it is back') });
    callers.start();
    cleanups.unshift(() => callers.stop());
    // Every writer of user streams in this process drops the caller it changed before it answers.
    const userStore = forgetOnAppend(store, callers);
    const accounts = accountsService({
      store: userStore,
      personalData: postgresPersonalData(pool),
      hasher,
      runtime,
      commands,
      adminEmails: config.ADMIN_EMAILS,
      storedMessages: {
        eraseMentions: async ({ email, phone }) => {
          // A phone as merchants type it: with or without its country code, any punctuation.
          const digits = phone ? [phone.replace(/\D/g, ''), ...(phone.startsWith('+1') ? [phone.slice(2)] : [])] : [];
          const redacted = await inbox.redactMentioning({ email, phoneDigits: digits });
          log.info({ redacted }, 'erasure: raw webhook bodies naming the person emptied');
        },
      },
      suspendedUserWithEmail: (emailHash) => suspendedUserWithEmail(pool, emailHash),
      adminWithEmail: (emailHash) => adminWithEmail(pool, emailHash),
      tenantIdFor: (userId) => uuidv5(userId, TENANT_NAMESPACE),
    });
    const phoneVerification = phoneVerificationService({
      store: userStore,
      commands,
      personalData: postgresPersonalData(pool),
      codes: postgresPhoneVerifications(pool),
      hasher,
      runtime,
      sms: provideSms(config, log),
      newCode: () => String(randomInt(0, 1_000_000)).padStart(6, '0'),
      loadUser: (userId) => accounts.load(userId),
    });
    const rules = rewardRulesService({ store, runtime, commands });
    // Development without SQUARE_APP_ID: the built-in Square simulator, mounted on this server (config refuses it in production).
    let awaitProcessed: (eventId: string) => Promise<string | undefined> = async () => undefined;
    const simulated: DevelopmentSimulator | undefined = config.squareSimulated
      ? developmentSimulator(config, {
          notificationUrl: config.SQUARE_WEBHOOK_URL ?? `${config.API_BASE_URL}${WEBHOOK_PATH}`,
          redirectUri: `${config.API_BASE_URL}${OAUTH_CALLBACK_PATH}`,
          afterDelivery: (eventId) => awaitProcessed(eventId),
        })
      : undefined;
    if (simulated) {
      log.warn(
        { squareBaseUrl: simulated.simulator.url, state: simulated.stateFile },
        'SQUARE IS SIMULATED: NODE_ENV=development and no SQUARE_APP_ID, so Tally talks to its built-in Square simulator (drive it with `npm run square -- help`)',
      );
    }
    const squareConfig = simulated?.config ?? config;
    const square = provideSquareConnections(squareConfig, options.env ?? process.env, pool, store, runtime, commands);

    const projections = allProjections({ store, newId: runtime.newId, walletIdFor, commands });
    const runner = new ProjectionRunner(pool, { connectionString: database.url }, store, projections, log);
    runner.start();
    metrics.observeProjections({
      // A filtered projection is as current as its `upTo`: its checkpoint stays at its own last event.
      status: () => runner.status().map((s) => ({ ...s, position: s.upTo })),
      headPosition: () => store.headPosition(),
      isAfter: (a, b) => store.isAfter(a, b),
      ...(config.EVENTSTORE_URL ? {} : { checkpoint: postgresCheckpointProbe(pool, LAG_COUNT_CAP) }),
    });
    if (!config.EVENTSTORE_URL) metrics.observeFeedHorizon(() => oldestAppendInFlight(pool));
    cleanups.unshift(() => runner.stop());
    const rebuilds = new ProjectionRebuilds(pool, { connectionString: database.url }, store, projections, log, runtime.newId, {
      onProgress: (job) => metrics.rebuildProgress(job.projection, job.eventsTotal ? Math.min(1, job.eventsApplied / Math.max(job.eventsTotal, 1)) : null),
    });
    cleanups.unshift(() => rebuilds.stop());
    void rebuilds.rebuildOutdated().catch((error) => log.error({ err: error }, 'could not start the rebuild of a projection whose version was raised'));

    // Payment ingestion: webhooks and polls become purchase commands through one path, decided in batches on
    // state held in memory (connections, merchant reservations, rules), with Square customers cached.
    const ingestionState = new IngestionState(store);
    const apis = squareApis({ connection: (tenantId) => ingestionState.connection(tenantId), make: async (tenantId) => (await square.connections.apiFor(tenantId)).api });
    const contacts = customerCache(
      async (tenantId, customerId) => {
        const customer = await (await apis.apiFor(tenantId)).getCustomer(customerId);
        return customer ? { email: customer.emailAddress, phone: customer.phoneNumber } : null;
      },
      { ttlMs: config.CUSTOMER_CACHE_TTL_SECONDS * 1000, maxEntries: config.CUSTOMER_CACHE_MAX_ENTRIES, now: () => Date.now() },
    );
    const inlineWalletEffects = await store.supportsAtomicMultiStream();
    if (!inlineWalletEffects) log.warn('the event store cannot append to several streams atomically: wallet credits go through the wallet-credits reactor');
    const ingestion = ingestionService({
      store,
      runtime,
      hasher,
      catchUp: () => ingestionState.catchUp(),
      ruleSet: (tenantId) => ingestionState.ruleSet(tenantId),
      workspace: (tenantId) => ingestionState.workspace(tenantId),
      customerContacts: (tenantId, customerId) => contacts.get(tenantId, customerId),
      consumersByIdentity: (hashSets) => consumersByIdentity(pool, hashSets),
      walletIdFor,
      inlineWalletEffects,
      wallets: commands,
    });
    const inbox = webhookInbox(pool);
    /** Who waits for a webhook's processing (the simulator's trigger), by event id. */
    const settledWaiters = new Map<string, ((settlement: { outcome: string } | { error: string }) => void)[]>();
    const processor = new WebhookProcessor(
      inbox,
      webhookHandler({
        ingestion,
        catchUp: () => ingestionState.catchUp(),
        tenantForMerchant: (merchantId) => ingestionState.tenantForMerchant(merchantId),
        markRevoked: async (merchantId, revocation, metadata) => (await square.connections.markRevokedByWebhook(merchantId, revocation, metadata))?.tenantId,
        forgetCustomer: (tenantId, customerId) => contacts.forget(tenantId, customerId),
        attachIdentity: (tenantId, change, source, metadata) =>
          attachCustomerIdentity(
            {
              hasher,
              store,
              commands,
              newId: runtime.newId,
              now: runtime.now,
              workspace: (id) => ingestionState.workspace(id),
              heldPurchasesOf: (id, customerId) => heldPurchasesOf(pool, id, customerId, runtime.now(), CLAIM_WINDOW_DAYS),
            },
            tenantId,
            change,
            source,
            metadata,
          ),
      }),
      log.child({ component: 'webhooks' }),
      inboxCommit(rawStore, store, metrics),
      {
        batchSize: config.WEBHOOK_BATCH_SIZE,
        batchesInFlight: config.WEBHOOK_BATCHES_IN_FLIGHT,
        onOutcome: (outcome) => metrics.webhookOutcome(outcome),
        onSettled: (eventId, settlement) => {
          for (const resolve of settledWaiters.get(eventId) ?? []) resolve(settlement);
          settledWaiters.delete(eventId);
        },
        // Longer than the slowest webhook: its Square customer lookup may take the whole SQUARE_TIMEOUT_SECONDS.
        leaseMs: Math.max(30_000, config.SQUARE_TIMEOUT_SECONDS * 2000),
      },
    );
    processor.start();
    awaitProcessed = async (eventId) => {
      // The simulator's `trigger` answers once Tally has processed its webhook (the batched worker's onSettled)
      // and the read models caught up. The inbox row answers when the webhook was settled before the wait began.
      const deadline = Date.now() + 15_000;
      let waiter: ((settlement: { outcome: string } | { error: string }) => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      const settledNow = new Promise<{ outcome: string } | { error: string } | undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), 15_000);
        waiter = resolve;
        settledWaiters.set(eventId, [...(settledWaiters.get(eventId) ?? []), resolve]);
      });
      const stored = await inbox.get(eventId);
      const settlement = stored?.processed && stored.outcome !== 'failed' ? { outcome: stored.outcome ?? 'processed' } : stored?.error ? { error: stored.error } : await settledNow;
      clearTimeout(timer);
      const others = (settledWaiters.get(eventId) ?? []).filter((w) => w !== waiter);
      if (others.length) settledWaiters.set(eventId, others);
      else settledWaiters.delete(eventId);
      if (!settlement) return 'not processed within 15 s';
      if ('error' in settlement) return `failed: ${settlement.error}`;
      // Twice: reactors append in turn (a refund's reversal on the wallet) once they have passed the first head.
      for (let round = 0; round < 2; round++) {
        const head = await store.headPosition();
        if (!head || !(await runner.waitForPosition(head, Math.max(0, deadline - Date.now())))) break;
      }
      return settlement.outcome;
    };
    cleanups.unshift(() => processor.stop());
    const pruneWebhookBodies = async () => {
      const redacted = await inbox.redactProcessedBefore(new Date(runtime.now().getTime() - config.WEBHOOK_BODY_RETENTION_DAYS * 86_400_000));
      if (redacted) log.info({ redacted, retentionDays: config.WEBHOOK_BODY_RETENTION_DAYS }, 'raw webhook bodies past their retention emptied');
      return redacted;
    };
    // Hourly, in every instance: the UPDATE is idempotent, so instances running it together do no harm.
    const pruning = setInterval(() => pruneWebhookBodies().catch((error) => log.warn({ err: error }, 'webhook body retention failed; retried next hour')), 3_600_000);
    pruning.unref();
    cleanups.unshift(async () => clearInterval(pruning));
    const poll = withPollMetrics(pollService({
      ingestion,
      activeConnections: () => square.connections.activeConnections(),
      apiFor: (tenantId) => square.connections.apiFor(tenantId),
      recordPoll: async (tenantId, result, metadata) => {
        await square.connections.recordPoll(tenantId, result, metadata);
      },
      now: runtime.now,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    }), metrics);
    const failures = failureLimiter({ limit: config.AUTH_FAILURE_LIMIT_PER_MINUTE, windowMs: 60_000 });
    const guard = accessControl({
      failures,
      verifyToken: createTokenVerifier({
        secret: config.AUTH_JWT_SECRET,
        jwksUrl: config.AUTH_JWKS_URL,
        issuer: config.AUTH_JWT_ISSUER,
        audience: config.AUTH_JWT_AUDIENCE,
        identity: {
          emailVerified: config.AUTH_EMAIL_VERIFIED_CLAIMS,
          phone: config.AUTH_PHONE_CLAIMS,
          phoneVerified: config.AUTH_PHONE_VERIFIED_CLAIMS,
          providerConfirmsContacts: config.AUTH_PROVIDER_CONFIRMS_CONTACTS,
        },
      }),
      loadUser: (userId) => callers.load(userId),
      workspaceExists: async (tenantId) => (await loadState(store, workspaceStream(tenantId), workspaceDecider)).state.status !== 'none',
      cronSecret: config.CRON_SECRET,
    });
    const tail = new LiveTail(store, log.child({ component: 'event-tail' }));
    const wallets = walletsService({ store, runtime, commands });
    const program = programService({ store, runtime, commands });
    const expire = expiryRun({
      wallets,
      program,
      tenantsWithPolicy: () => tenantsWithExpiryPolicy(pool),
      walletsWithPoints: (tenantId, after, limit) => walletsWithPoints(pool, tenantId, after, limit),
      rewardsDue: (asOf, after, limit) => issuedRewardsDue(pool, asOf, after, limit),
    });
    const routes: RouteSpec[] = [
      ...accountRoutes({ accounts, phoneVerification, rules, store, pool }),
      ...walletRoutes({ wallets, pool, hasher, now: runtime.now }),
      ...rewardRoutes({ catalog: rewardCatalogService({ store, runtime, commands }), wallets, pool }),
      ...programRoutes({ program, wallets, expire, store, pool, now: runtime.now }),
      ...connectionRoutes({ connections: withRefreshMetrics(square.connections, metrics), pool, settings: square.settings, now: runtime.now }),
      ...webhookRoutes({
        // Webhooks arriving while every acknowledgement connection is busy are stored together (group commit).
        inbox: groupedRecorder(webhookInbox(ackPool), { maxBatch: config.WEBHOOK_ACK_BATCH_SIZE, maxInFlight: config.WEBHOOK_POOL_SIZE }),
        signatureKey: squareConfig.SQUARE_WEBHOOK_SIGNATURE_KEY,
        notificationUrl: square.settings.webhookNotificationUrl,
        onStored: () => processor.wake(),
        failures,
        onSignatureFailure: () => metrics.webhookSignatureFailure(),
      }),
      ...ingestionRoutes({ inbox, wakeProcessor: () => processor.wake(), poll }),
      ...auditRoutes({ pool }),
      ...eventStreamRoutes({ tail, store, isPosition: (value) => isPosition(value) }),
      ...projectionRoutes({ runner, rebuilds, store, now: runtime.now }),
      ...operationsRoutes({ pool, reconciler: reconciler({ pool, store, settle: (position) => runner.waitForPosition(position, 30_000) }) }),
    ];
    const isPosition = (value: string) => {
      try {
        store.isAfter(value as Position, value as Position);
        return true;
      } catch {
        return false;
      }
    };

    const migrationFiles = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, ''));
    const app = createHttpApp({
      log,
      rawBodyPaths: [WEBHOOK_PATH],
      trustProxy: config.TRUST_PROXY,
      metrics,
      routers: [
        // The webhook route first, in a router of its own: the busiest route is matched without trying the others.
        ...[routes.filter((r) => r.path === WEBHOOK_PATH), routes.filter((r) => r.path !== WEBHOOK_PATH)].map((table) =>
          buildRouter(table, { guard, waitForPosition: (p, ms) => runner.waitForPosition(p, ms), isPosition }),
        ),
        metricsRouter(metrics),
        openApiRouter(routes, { version: '0.1.0', serverUrl: config.API_BASE_URL }),
        adminConsoleRouter(),
        posPageRouter(),
        healthRouter([
          { name: 'database', check: async () => (await pool.query('SELECT 1'), { ok: true }) },
          {
            name: 'eventStore',
            // Still ready when an append holds the feed back (every instance shares it), but it is named here.
            check: async () => {
              await store.ping();
              const oldest = config.EVENTSTORE_URL ? undefined : await oldestAppendInFlight(pool);
              return { ok: true, detail: oldest && oldest.ageSeconds >= 1 ? { feedHeldBackBy: oldest } : undefined };
            },
          },
          {
            name: 'migrations',
            check: async () => {
              const pending = await pendingMigrations((sql) => pool.query(sql), migrationFiles);
              return { ok: pending.length === 0, detail: pending.length ? { pending } : undefined };
            },
          },
          {
            name: 'projections',
            check: async () => ({
              ok: runner.healthy(),
              detail: runner.status().map((s) => ({ name: s.name, state: s.state, ...(s.lastError ? { lastError: s.lastError } : {}) })),
            }),
          },
        ]),
      ],
    });

    const koa = app.callback();
    // A slow or trickling client holds a connection at most this long (Node's defaults: 300 s for a request).
    const server = http.createServer(
      { requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS, headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS), connectionsCheckingInterval: 1000 },
      simulated
        ? (request, response) => (simulated.simulator.owns(new URL(request.url ?? '/', 'http://localhost').pathname) ? simulated.simulator.handle(request, response) : koa(request, response))
        : koa,
    );
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => resolve());
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
    log.info({ url }, 'Tally is listening');

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        log.info('shutting down: finishing in-flight requests');
        await tail.stop(); // live event tails never finish on their own: end them so the server can close
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
        await closed;
        clearTimeout(timer);
        for (const cleanup of cleanups) await cleanup().catch((error) => log.warn({ err: error }, 'error during shutdown'));
        log.info('stopped');
      })());
    return { url, routes, config, pool, store, runner, log, connections: square.connections, metrics, inlineWalletEffects, pruneWebhookBodies, stop };
  } catch (error) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    throw error;
  }
}

async function main(): Promise<void> {
  let tally: Tally;
  try {
    tally = await startTally();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n\nSee README.md (Configuration) or .env.example.\n`);
      process.exit(1);
    }
    process.stderr.write(`Tally failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
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
  };
  // embedded-postgres registers its own SIGINT/SIGTERM hook that stops the server and exits at once, racing
  // in-flight requests. Tally stops the embedded server itself, last, so the graceful path is the only one.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  void main();
}
