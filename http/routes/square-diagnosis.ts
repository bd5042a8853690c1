/**
 * The debug endpoint's answer to runbook 1 ("Square OAuth connect fails"): every check the runbook lists,
 * and the problems found, each saying what to fix. Values of variables never appear, only whether they are set.
 */
import { unreachable } from '../../domain/shared/exhaustive.ts';
import { isLive, revokedBy, type SquareConnectionState } from '../../domain/connections/events.ts';
import type { TokenCheck } from '../../domain/connections/service.ts';
import { ORDER_SCOPES, SQUARE_SCOPES } from '../../domain/ports/square.ts';
import type { SquareSettings } from '../../adapters/square/settings.ts';
import { posConnectionView } from '../../projections/read/connections.ts';
import { z } from 'zod';
import { timestamp } from '../schemas.ts';

/** The debug endpoint's answer (`GET /api/v1/client/debug/square`). */
export const squareDiagnosisView = z.object({
  tenantId: z.string(),
  variables: z.record(z.string(), z.boolean()),
  generatedForDevelopment: z.array(z.string()),
  environment: z.enum(['sandbox', 'production']),
  oauthHost: z.string(),
  authorizeEndpoint: z.string(),
  hostOverridden: z.boolean(),
  scopes: z.array(z.string()),
  dashboard: z.object({ redirectUri: z.string(), webhookNotificationUrl: z.string() }),
  connection: z.object({
    status: posConnectionView.shape.status,
    merchantId: z.string().nullable(),
    currency: z.string().nullable(),
    country: z.string().nullable(),
    /** The scopes this connection was granted, and those Tally asks for now that it lacks (reconnect to grant them). */
    scopes: z.array(z.string()),
    missingScopes: z.array(z.string()),
    authorizedAt: timestamp.nullable(),
    tokenExpiresAt: timestamp.nullable(),
    lastRefreshedAt: timestamp.nullable(),
    lastError: z.object({ code: z.string(), detail: z.string(), at: timestamp }).nullable(),
    revokedBy: revokedBy.nullable(),
    revokedAt: timestamp.nullable(),
  }),
  token: z.object({
    stored: z.boolean(),
    decrypts: z.boolean().nullable(),
    keyId: z.string().nullable(),
    encryptedWithCurrentKey: z.boolean().nullable(),
    expiresAt: timestamp.nullable(),
    /** Whether the stored token is the one the connection names (its authorization's); null when either is absent. */
    ofConnection: z.boolean().nullable(),
  }),
  lastWebhookAt: timestamp.nullable(),
  lastPollAt: timestamp.nullable(),
  problems: z.array(z.string()),
});

export interface DiagnosisInput {
  tenantId: string;
  settings: SquareSettings;
  connection: SquareConnectionState;
  token: TokenCheck;
  lastWebhookAt: string | null;
  now: Date;
}

const DAY_MS = 24 * 3600_000;

export function squareDiagnosis({ tenantId, settings, connection, token, lastWebhookAt, now }: DiagnosisInput): z.input<typeof squareDiagnosisView> {
  const connected = connection.status === 'not_connected' ? undefined : connection;
  return {
    tenantId,
    variables: settings.variablesSet,
    generatedForDevelopment: settings.generatedForDevelopment,
    environment: settings.environment,
    oauthHost: settings.oauthHost,
    authorizeEndpoint: settings.authorizeEndpoint,
    hostOverridden: settings.hostOverridden,
    scopes: [...SQUARE_SCOPES],
    dashboard: {
      redirectUri: settings.redirectUri,
      webhookNotificationUrl: settings.webhookNotificationUrl,
    },
    connection: {
      status: connection.status,
      merchantId: connected?.merchantId ?? null,
      currency: connected?.currency ?? null,
      country: connected?.country ?? null,
      scopes: connected?.scopes ?? [],
      missingScopes: connected ? SQUARE_SCOPES.filter((scope) => !connected.scopes.includes(scope)) : [],
      authorizedAt: connected?.authorizedAt ?? null,
      tokenExpiresAt: connected?.tokenExpiresAt ?? null,
      lastRefreshedAt: connected?.lastRefreshedAt ?? null,
      lastError: connected?.lastError ?? null,
      revokedBy: connected?.status === 'revoked' ? connected.revokedBy : null,
      revokedAt: connected?.status === 'revoked' ? connected.revokedAt : null,
    },
    token: {
      stored: token.stored,
      decrypts: token.decrypts,
      keyId: token.keyId,
      encryptedWithCurrentKey: token.encryptedWithCurrentKey,
      expiresAt: token.expiresAt,
      ofConnection: connected && token.authorizationId ? token.authorizationId === connected.authorizationId : null,
    },
    lastWebhookAt,
    lastPollAt: connected?.lastPolledAt ?? null,
    problems: problems(settings, connection, token, now),
  };
}

function problems(settings: SquareSettings, connection: SquareConnectionState, token: TokenCheck, now: Date): string[] {
  const found: string[] = [];
  // The simulator sets Square's variables and host itself: what would be wrong with a real Square is not, here.
  if (settings.simulated) {
    found.push(
      'Square is simulated (development without SQUARE_APP_ID): the built-in simulator answers in its place; set SQUARE_APP_ID, SQUARE_APP_SECRET and SQUARE_WEBHOOK_SIGNATURE_KEY to connect a real Square account',
    );
  }
  for (const [name, set] of settings.simulated ? [] : Object.entries(settings.variablesSet)) {
    if (set) continue;
    if (name === 'ENCRYPTION_KEY' && settings.generatedForDevelopment.includes(name)) {
      found.push('ENCRYPTION_KEY is not set: a generated development key is in use (tokens stored now cannot be read by another deployment)');
    } else if (name === 'SQUARE_WEBHOOK_SIGNATURE_KEY') {
      found.push(
        "SQUARE_WEBHOOK_SIGNATURE_KEY is not set: every Square webhook is answered 503 WEBHOOKS_NOT_CONFIGURED (no payment is credited until a poll finds it); copy the signature key of the webhook subscription in Square's Developer Dashboard into the API's environment and redeploy",
      );
    } else if (name === 'SQUARE_ENVIRONMENT') {
      found.push(`SQUARE_ENVIRONMENT is not set: using ${settings.environment}; set it to sandbox or production explicitly`);
    } else {
      found.push(`${name} is not set: set it in the API's environment and redeploy`);
    }
  }
  const expectedHost = settings.environment === 'production' ? 'connect.squareup.com' : 'connect.squareupsandbox.com';
  if (!settings.simulated && settings.oauthHost !== expectedHost) {
    found.push(`The OAuth host is ${settings.oauthHost}, not ${expectedHost}: SQUARE_BASE_URL overrides it; unset it outside tests`);
  }
  const redirect = new URL(settings.redirectUri);
  if (redirect.protocol !== 'https:' && !['localhost', '127.0.0.1'].includes(redirect.hostname)) {
    found.push(`The redirect URI ${settings.redirectUri} is not https: Square accepts http only for localhost; set API_BASE_URL to the public https origin`);
  }
  switch (connection.status) {
    case 'not_connected':
      found.push('This workspace has never connected Square: start at GET /api/v1/client/pos/square/connect');
      break;
    case 'revoked':
      found.push(`The connection was revoked (by ${connection.revokedBy}): connect Square again`);
      break;
    case 'needs_reconnect':
      found.push(`Square refused the token (${connection.lastError?.code ?? 'unknown'}): connect Square again`);
      break;
    case 'token_undecryptable':
      found.push(`The stored token is encrypted under key ${connection.undecryptableKeyId}, which is neither ENCRYPTION_KEY nor ENCRYPTION_KEY_PREVIOUS: restore that key, or connect Square again`);
      break;
    case 'active':
      if (Date.parse(connection.tokenExpiresAt) - now.getTime() < 8 * DAY_MS) {
        found.push('The access token expires within 8 days: check that the refresh cron (POST /api/v1/internal/cron/square-refresh-tokens) runs daily');
      }
      break;
    default:
      return unreachable(connection);
  }
  if (connection.status === 'active') {
    const missing = ORDER_SCOPES.filter((scope) => !connection.scopes.includes(scope));
    if (missing.length) {
      found.push(
        `The connection lacks ${missing.join(' and ')} (it was made before Tally asked for them): spend and visit rules on the payment work; item, category, before-tax and exclusion rules need the order and its items: connect Square again (GET /api/v1/client/pos/square/connect) to grant them`,
      );
    }
  }
  if (isLive(connection) && token.authorizationId !== connection.authorizationId) {
    found.push(
      token.stored
        ? 'The stored token is not the connection’s (a connect failed after recording the connection, before storing its token): connect Square again'
        : 'No token is stored for the connection (a connect failed after recording it, before storing its token): connect Square again',
    );
  }
  if (token.decrypts === false && connection.status !== 'token_undecryptable') {
    found.push(`The stored token does not decrypt (key ${token.keyId}): restore that key as ENCRYPTION_KEY_PREVIOUS, or connect Square again`);
  }
  if (token.decrypts && token.encryptedWithCurrentKey === false) {
    found.push('The stored token is encrypted under ENCRYPTION_KEY_PREVIOUS: run `npm run rotate-keys`, then remove ENCRYPTION_KEY_PREVIOUS');
  }
  return found;
}
