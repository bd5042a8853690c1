/**
 * The HTTP side: access control, health checks, the OpenAPI document, the Koa app and the server. Every context's
 * routes come in as declared; this module mounts them and listens.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { migrationNames, pendingMigrations } from '../adapters/postgres/migrate.ts';
import { oldestAppendInFlight } from '../adapters/eventstore/postgres-horizon.ts';
import type { Metrics } from '../adapters/metrics.ts';
import { withoutRedaction } from '../adapters/logger.ts';
import type { DevelopmentSimulator } from '../adapters/square/simulator/development.ts';
import type { Position } from '../domain/ports/event-store.ts';
import type { UserState } from '../domain/users/events.ts';
import { loadState } from '../domain/shared/command-handler.ts';
import { workspaceDecider, workspaceStream } from '../domain/workspaces/workspace.ts';
import type { ProjectionRunner } from '../projections/runner.ts';
import { accessCheck, accessControl } from '../http/access.ts';
import { createTokenVerifier } from '../http/auth.ts';
import { createHttpApp } from '../http/app.ts';
import { answerClientError } from '../http/client-error.ts';
import { directRoutes } from '../http/direct-route.ts';
import type { FailureLimiter } from '../http/rate-limit.ts';
import { buildRouter, type RouteSpec } from '../http/routes/table.ts';
import { healthRoutes, type ReadinessCheck } from '../http/routes/health.ts';
import { openApiRoute } from '../http/routes/openapi.ts';
import { metricsRouter } from '../http/routes/metrics.ts';
import { adminConsoleRouter } from '../http/routes/admin-console.ts';
import { posPageRouter } from '../http/routes/pos-page.ts';
import { WEBHOOK_PATH } from '../http/routes/webhooks.ts';
import type { Infrastructure } from './infrastructure.ts';

/** Whether a string is a position of this event store (read-your-writes headers, Last-Event-ID). */
export const positionCheck = (store: Infrastructure['store']) => (value: string) => {
  try {
    store.isAfter(value as Position, value as Position);
    return true;
  } catch {
    return false;
  }
};

async function readinessRoutes({ config, pool, store }: Infrastructure, runner: ProjectionRunner, more: readonly ReadinessCheck[]): Promise<RouteSpec[]> {
  const migrationFiles = await migrationNames();
  return healthRoutes([
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
      // States only: an error's text is for administrators (`GET /api/v1/admin/projections`), not a public route.
      check: async () => ({ ok: runner.healthy(), detail: runner.status().map((s) => ({ name: s.name, state: s.state })) }),
    },
    ...more,
  ]);
}

export interface HttpDependencies {
  metrics: Metrics;
  runner: ProjectionRunner;
  failures: FailureLimiter;
  /** The caller's account, from the in-memory caller view. */
  loadUser(userId: string): Promise<UserState>;
  /** Every context's routes. */
  routes: RouteSpec[];
  /** Readiness checks of the contexts, beside the database, event store, migrations and projections. */
  readiness?: readonly ReadinessCheck[];
  simulated: DevelopmentSimulator | undefined;
}

/** Mounts the routes (with health and the OpenAPI document) and listens; answers the URL, the routes and the server. */
export async function provideHttp(infrastructure: Infrastructure, deps: HttpDependencies) {
  const { config, log, store } = infrastructure;
  const authorize = accessCheck({
    failures: deps.failures,
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
      onKeyServerFailure: (error) => log.warn({ err: error, jwksUrl: config.AUTH_JWKS_URL }, 'the identity provider\'s keys could not be fetched: bearer tokens answered 503'),
    }),
    loadUser: deps.loadUser,
    workspaceExists: async (tenantId) => (await loadState(store, workspaceStream(tenantId), workspaceDecider)).state.status !== 'none',
    cronSecret: config.CRON_SECRET,
  });
  const requestLog = withoutRedaction(log);
  const routes: RouteSpec[] = [...deps.routes, ...(await readinessRoutes(infrastructure, deps.runner, deps.readiness ?? []))];
  routes.push(openApiRoute(() => routes, { version: '0.1.0', serverUrl: config.API_BASE_URL }));
  const app = createHttpApp({
    log,
    requestLog,
    rawBodyPaths: [WEBHOOK_PATH],
    trustProxy: config.TRUST_PROXY,
    strictTransportSecurity: new URL(config.API_BASE_URL).protocol === 'https:',
    metrics: deps.metrics,
    routers: [
      // One router: the signed webhooks, the busiest route, are served ahead of Koa (`directRoutes` below), so a router
      // of their own, tried first, only cost every other request a second router and its allowed-methods step.
      buildRouter(routes, { guard: accessControl(authorize), waitForPosition: (p, ms) => deps.runner.waitForPosition(p, ms), isPosition: positionCheck(store) }),
      metricsRouter(deps.metrics),
      adminConsoleRouter(),
      posPageRouter(),
    ],
  });

  const koa = app.callback();
  // The signed webhooks and the routes declaring `direct: true` skip Koa's context and middleware chain (same shell,
  // same access checks: http/direct-route.ts).
  const direct = directRoutes({ log, requestLog, routes, authorize, trustProxy: config.TRUST_PROXY, metrics: deps.metrics });
  const serve: http.RequestListener = (request, response) => {
    if (!direct(request, response)) void koa(request, response);
  };
  const simulated = deps.simulated;
  // A slow or trickling client holds a connection at most this long (Node's defaults: 300 s for a request).
  const server = http.createServer(
    { requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS, headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS), connectionsCheckingInterval: 1000 },
    simulated
      ? (request, response) => (simulated.simulator.owns(new URL(request.url ?? '/', 'http://localhost').pathname) ? simulated.simulator.handle(request, response) : serve(request, response))
      : serve,
  );
  server.keepAliveTimeout = config.HTTP_KEEP_ALIVE_TIMEOUT_MS;
  // A request timed out, too large in its headers or not HTTP: the JSON error shape, not Node's bare status line.
  server.on('clientError', answerClientError);
  // Open connections, for shutdown (below).
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  log.info({ url }, 'Tally is listening');

  /**
   * Finishes in-flight requests; connections still open after SHUTDOWN_TIMEOUT_MS are closed. Node's
   * closeIdleConnections() closes the keep-alive connections idle at that moment, not one idle only once its
   * request is answered, nor one that has not sent a byte (a browser's speculative preconnect): each held shutdown
   * for the whole timeout, so they are swept until the server has closed.
   */
  const close = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const sweep = () => {
      server.closeIdleConnections();
      for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
    };
    sweep();
    const sweeping = setInterval(sweep, 50);
    const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
    await closed;
    clearInterval(sweeping);
    clearTimeout(timer);
  };
  return { url, routes, close };
}
