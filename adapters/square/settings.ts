/**
 * The Square settings an operator checks (runbook 1) and copies into Square's Developer Dashboard, derived
 * once from the configuration: which required variables are set (never their values), the OAuth host the
 * authorize URL uses, the exact redirect URI and webhook notification URL.
 */
import type { Config } from '../config.ts';
import { createSquareOAuth } from './client.ts';
import { SIMULATOR_APP_ID } from './simulator/development.ts';

/** The variables runbook 1 lists, and the webhooks' signature key (without it every webhook is refused, runbook 2). */
export const REQUIRED_SQUARE_VARIABLES = ['SQUARE_APP_ID', 'SQUARE_APP_SECRET', 'SQUARE_ENVIRONMENT', 'API_BASE_URL', 'FRONTEND_URL', 'ENCRYPTION_KEY', 'SQUARE_WEBHOOK_SIGNATURE_KEY'] as const;
export type RequiredSquareVariable = (typeof REQUIRED_SQUARE_VARIABLES)[number];

export const OAUTH_CALLBACK_PATH = '/api/v1/oauth/square/callback';
export const OAUTH_START_PATH = '/api/v1/oauth/square/start';

export interface SquareSettings {
  environment: 'sandbox' | 'production';
  /** Where the authorize URL sends the merchant, e.g. `https://connect.squareupsandbox.com/oauth2/authorize`. */
  authorizeEndpoint: string;
  /** Its host alone, e.g. `connect.squareupsandbox.com`. */
  oauthHost: string;
  /** True when SQUARE_BASE_URL overrides Square's host (tests, mirrors). */
  hostOverridden: boolean;
  /** The built-in Square simulator stands in for Square (development without SQUARE_APP_ID). */
  simulated: boolean;
  redirectUri: string;
  /** `<API_BASE_URL>/api/v1/oauth/square/start`: the browser begins the connect flow here. */
  startUrl: string;
  /** The nonce cookie is `Secure` unless the API is served over plain http on localhost (development). */
  secureCookies: boolean;
  webhookNotificationUrl: string;
  frontendUrl: string;
  /** Whether each variable is set in the environment (booleans only, never values). */
  variablesSet: Record<RequiredSquareVariable, boolean>;
  /** Secrets generated for development because they were not set (names only). */
  generatedForDevelopment: string[];
}

export function squareSettings(config: Config, env: NodeJS.ProcessEnv, webhookNotificationUrl: string): SquareSettings {
  // The adapter builds the authorize URL, so ask it for the host instead of repeating its rules here (no request is made).
  const probe = createSquareOAuth({
    appId: config.SQUARE_APP_ID ?? '',
    appSecret: '',
    environment: config.SQUARE_ENVIRONMENT,
    ...(config.SQUARE_BASE_URL ? { baseUrl: config.SQUARE_BASE_URL } : {}),
  });
  const authorize = new URL(probe.authorizeUrl({ state: '', scopes: [] }));
  const isSet = (name: RequiredSquareVariable) => typeof env[name] === 'string' && env[name].trim() !== '';
  return {
    environment: config.SQUARE_ENVIRONMENT,
    authorizeEndpoint: `${authorize.origin}${authorize.pathname}`,
    oauthHost: authorize.host,
    hostOverridden: Boolean(config.SQUARE_BASE_URL),
    simulated: config.SQUARE_APP_ID === SIMULATOR_APP_ID,
    redirectUri: `${config.API_BASE_URL}${OAUTH_CALLBACK_PATH}`,
    startUrl: `${config.API_BASE_URL}${OAUTH_START_PATH}`,
    secureCookies: !isPlainHttpLocalhost(config.API_BASE_URL),
    webhookNotificationUrl,
    frontendUrl: config.FRONTEND_URL,
    variablesSet: Object.fromEntries(REQUIRED_SQUARE_VARIABLES.map((name) => [name, isSet(name)])) as Record<RequiredSquareVariable, boolean>,
    generatedForDevelopment: config.generatedSecrets,
  };
}

function isPlainHttpLocalhost(origin: string): boolean {
  const url = new URL(origin);
  return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
}
