/**
 * Square connections: the gateway (only when the app's credentials are configured), the token vault, OAuth states;
 * in development without SQUARE_APP_ID, the built-in Square simulator in their place.
 */
import type { Config } from '../adapters/config.ts';
import { keyring } from '../adapters/crypto/keys.ts';
import { createSquareGateway } from '../adapters/square/client.ts';
import { OAUTH_CALLBACK_PATH, squareSettings } from '../adapters/square/settings.ts';
import { developmentSimulator, type DevelopmentSimulator } from '../adapters/square/simulator/development.ts';
import { postgresTokenVault } from '../adapters/postgres/token-vault.ts';
import { postgresQuietPolls } from '../adapters/postgres/quiet-polls.ts';
import { postgresOAuthStates } from '../adapters/oauth/state.ts';
import { withRefreshMetrics } from '../adapters/metrics-hooks.ts';
import type { Metrics } from '../adapters/metrics.ts';
import { loadState } from '../domain/shared/command-handler.ts';
import { ruleSetDecider, ruleSetStream, unretiredVersions } from '../domain/rewards/rule-set.ts';
import { userDecider } from '../domain/users/decider.ts';
import { userStream } from '../domain/users/events.ts';
import { squareConnectionsService, type SquareAccess } from '../domain/connections/service.ts';
import { tenantsWithStatus } from '../projections/read/connections.ts';
import { connectionRoutes } from '../http/routes/connections.ts';
import { WEBHOOK_PATH } from '../http/routes/webhooks.ts';
import type { Infrastructure } from './infrastructure.ts';

function squareAccess(config: Config): SquareAccess {
  const missing = (['SQUARE_APP_ID', 'SQUARE_APP_SECRET'] as const).filter((name) => !config[name]);
  if (!config.SQUARE_APP_ID || !config.SQUARE_APP_SECRET) return { configured: false, missing };
  return {
    configured: true,
    gateway: createSquareGateway({
      appId: config.SQUARE_APP_ID,
      appSecret: config.SQUARE_APP_SECRET,
      environment: config.SQUARE_ENVIRONMENT,
      timeoutSeconds: config.SQUARE_TIMEOUT_SECONDS,
      ...(config.SQUARE_BASE_URL ? { baseUrl: config.SQUARE_BASE_URL } : {}),
    }),
  };
}

/**
 * The connections service on a Square configuration already resolved (the simulator's in development): the
 * service's own, and the webhook worker thread's, which gets that configuration from the service.
 */
export function squareConnections(infrastructure: Infrastructure, squareConfig: Config) {
  const { env, log, pool, store, runtime, commands } = infrastructure;
  const keys = keyring(squareConfig.ENCRYPTION_KEY, squareConfig.ENCRYPTION_KEY_PREVIOUS);
  const settings = squareSettings(squareConfig, env, squareConfig.SQUARE_WEBHOOK_URL ?? `${squareConfig.API_BASE_URL}${WEBHOOK_PATH}`);
  const connections = squareConnectionsService({
    store,
    vault: postgresTokenVault(pool, keys),
    oauthStates: postgresOAuthStates(pool, keys),
    square: squareAccess(squareConfig),
    runtime,
    commands,
    redirectUri: settings.redirectUri,
    startUrl: settings.startUrl,
    tenantsWithStatus: (statuses) => tenantsWithStatus(pool, statuses),
    quietPolls: postgresQuietPolls(pool),
    unretiredRules: async (tenantId) => unretiredVersions((await loadState(store, ruleSetStream(tenantId), ruleSetDecider)).state),
    mayConnect: async (actor, tenantId) => {
      const [kind, userId] = actor.split(':');
      if (!userId || (kind !== 'user' && kind !== 'admin')) return false;
      // The account's own stream, not a read model: a suspension just made counts.
      const user = (await loadState(store, userStream(userId), userDecider)).state;
      if (user.status !== 'approved') return false;
      return kind === 'admin' ? user.role === 'admin' : user.role === 'client' && user.tenantId === tenantId;
    },
    onConnectionStopped: (stopped) =>
      log.warn(
        stopped,
        stopped.status === 'needs_reconnect'
          ? 'Square connection needs a reconnect: Square no longer accepts its grant; it is not polled until the merchant connects Square again'
          : 'Square connection stopped: its token does not decrypt under ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS; restore the key (or the merchant connects again)',
      ),
  });
  return { settings, connections };
}

/**
 * `afterDelivery` is how the development simulator's `trigger` waits for Tally to process its webhook (the
 * ingestion context answers it; it is built later, hence a function).
 */
export function provideConnections(infrastructure: Infrastructure, metrics: Metrics, afterDelivery: (eventId: string) => Promise<string | undefined>) {
  const { config, log, pool, runtime } = infrastructure;
  // Development without SQUARE_APP_ID: the built-in Square simulator, mounted on this server (config refuses it in production).
  const simulated: DevelopmentSimulator | undefined = config.squareSimulated
    ? developmentSimulator(config, {
        notificationUrl: config.SQUARE_WEBHOOK_URL ?? `${config.API_BASE_URL}${WEBHOOK_PATH}`,
        redirectUri: `${config.API_BASE_URL}${OAUTH_CALLBACK_PATH}`,
        afterDelivery,
      })
    : undefined;
  if (simulated) {
    log.warn(
      { squareBaseUrl: simulated.simulator.url, state: simulated.stateFile },
      'SQUARE IS SIMULATED: NODE_ENV=development and no SQUARE_APP_ID, so Tally talks to its built-in Square simulator (drive it with `npm run square -- help`)',
    );
  }
  const squareConfig = simulated?.config ?? config;
  const { settings, connections } = squareConnections(infrastructure, squareConfig);
  const routes = connectionRoutes({ connections: withRefreshMetrics(connections, metrics), pool, settings, now: runtime.now });
  return { simulated, squareConfig, connections, settings, routes };
}
