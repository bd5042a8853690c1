/**
 * Refreshing access tokens: one tenant on demand, or every connection that is due (the daily cron).
 * Each connection's outcome is reported; one failing connection never stops the others.
 */
import type { EventMetadata, Position } from '../ports/event-store.ts';
import { SquareApiError } from '../ports/square.ts';
import type { ConnectionsContext } from './context.ts';
import { ConnectionUnavailable, EncryptionKeyNotHeld } from './errors.ts';
import { isLive, tokensLost, type ConnectedState } from './events.ts';
import { vaultAuthorization } from '../ports/token-vault.ts';
import { refreshIsDue } from './refresh-policy.ts';

export type RefreshOutcome = 'refreshed' | 'not_due' | 'failed' | 'needs_reconnect' | 'token_undecryptable' | 'skipped';

export interface RefreshReport {
  tenantId: string;
  merchantId: string | null;
  outcome: RefreshOutcome;
  /** The access token's expiry after this run. */
  tokenExpiresAt: string | null;
  /** Why it failed or was skipped (Square's code and detail, or ours). */
  error: { code: string; detail: string } | null;
  position: Position | undefined;
}

/** The statuses whose token a refresh run looks at (an undecryptable one is retried: the key may be fixed now). */
const REFRESHABLE = ['active', 'token_undecryptable'] as const;

/** Refreshes the tenant's token now, due or not. Throws `ConnectionUnavailable` when there is nothing to refresh. */
export async function refreshNow(c: ConnectionsContext, tenantId: string, metadata: EventMetadata): Promise<RefreshReport> {
  const state = await c.loadConnection(tenantId);
  if (state.status !== 'active' && state.status !== 'token_undecryptable') {
    throw ConnectionUnavailable.because(state.status);
  }
  return refreshConnection(c, state, { force: true }, metadata);
}

/** Refreshes every connection whose token is due. `onError` hears about failures that are not Square's answer. */
export async function refreshDue(
  c: ConnectionsContext,
  metadata: EventMetadata,
  onError: (tenantId: string, error: unknown) => void,
): Promise<RefreshReport[]> {
  c.gateway();
  const reports: RefreshReport[] = [];
  for (const tenantId of await c.deps.tenantsWithStatus(REFRESHABLE)) {
    try {
      const state = await c.loadConnection(tenantId);
      if (state.status !== 'active' && state.status !== 'token_undecryptable') continue;
      reports.push(await refreshConnection(c, state, { force: false }, metadata));
    } catch (error) {
      onError(tenantId, error);
      reports.push(report(tenantId, null, 'failed', null, { code: 'INTERNAL', detail: 'Unexpected error; see the API log' }));
    }
  }
  return reports;
}

async function refreshConnection(
  c: ConnectionsContext,
  state: Extract<ConnectedState, { status: 'active' | 'token_undecryptable' }>,
  { force }: { force: boolean },
  metadata: EventMetadata,
): Promise<RefreshReport> {
  const { tenantId, merchantId } = state;
  const gateway = c.gateway();
  if (!force && state.status === 'active' && !refreshIsDue(state, c.deps.runtime.now())) {
    return report(tenantId, merchantId, 'not_due', state.tokenExpiresAt, null);
  }

  const stored = await c.deps.vault.read(tenantId);
  if (vaultAuthorization(stored) !== state.authorizationId) {
    if (!tokensLost(state, c.now())) {
      return report(tenantId, merchantId, 'skipped', state.tokenExpiresAt, { code: 'TOKENS_PENDING', detail: 'The connection was authorized a moment ago and its tokens are not stored yet; nothing to do' });
    }
    const result = await recordTokensLost(c, state, metadata);
    return report(tenantId, merchantId, 'needs_reconnect', state.tokenExpiresAt, { code: 'TOKEN_MISSING', detail: TOKENS_LOST }, result.position);
  }
  if (stored.status === 'undecryptable') {
    if (stored.rotationSkew) {
      // Another instance's key (a rotation under way): an instance holding it refreshes the token; nothing is recorded
      // on the stream every instance shares, and this run reports the skew.
      const { code, message } = new EncryptionKeyNotHeld(stored.keyId);
      return report(tenantId, merchantId, 'failed', state.tokenExpiresAt, { code, detail: message });
    }
    const result = await c.onConnection(tenantId, { type: 'RecordDecryptionFailure', tenantId, keyId: stored.keyId, now: c.now() }, metadata);
    const detail = `The stored token was encrypted under key ${stored.keyId}, which is neither ENCRYPTION_KEY nor ENCRYPTION_KEY_PREVIOUS`;
    return report(tenantId, merchantId, 'token_undecryptable', state.tokenExpiresAt, { code: 'TOKEN_UNDECRYPTABLE', detail }, result.position);
  }
  // Said again for the compiler: a vault holding this connection's authorization is not missing.
  if (stored.status === 'missing') throw ConnectionUnavailable.because('token_missing');
  if (state.status === 'token_undecryptable') {
    await c.onConnection(tenantId, { type: 'RecordDecryptionRecovery', tenantId, keyId: stored.keyId, now: c.now() }, metadata);
  }

  const { authorizationId } = stored.tokens;
  let tokens;
  try {
    tokens = await gateway.oauth.refresh(stored.tokens.refreshToken);
  } catch (error) {
    if (!(error instanceof SquareApiError)) throw error;
    // A refresh authenticates with the app's secret as well as the merchant's refresh token: `needsReconnect` only
    // when Square says the grant is gone. A refused app secret (`APP_CREDENTIALS_REJECTED`) or a 401 that proves
    // nothing is recorded as the last error; the connection stays active and the next run retries it.
    const result = await c.onConnection(
      tenantId,
      { type: 'RecordRefreshFailure', tenantId, authorizationId, code: error.code, detail: error.detail, needsReconnect: error.needsReconnect, now: c.now() },
      metadata,
    );
    // Nothing recorded because the connection was revoked or authorized again meanwhile (a disconnect racing this
    // refresh: Square refused a token the disconnect had just revoked): that answer is not the merchant's to act on.
    // A failure another refresh recorded first, on the same authorization, is reported as it stands.
    if (result.events.length === 0 && !(isLive(result.state) && result.state.authorizationId === authorizationId)) {
      return report(tenantId, merchantId, 'skipped', state.tokenExpiresAt, SUPERSEDED);
    }
    const outcome = error.needsReconnect ? 'needs_reconnect' : 'failed';
    return report(tenantId, merchantId, outcome, state.tokenExpiresAt, { code: error.code, detail: error.detail }, result.position);
  }

  const replaced = await c.deps.vault.replaceIfSameAuthorization(tenantId, {
    authorizationId,
    merchantId: stored.tokens.merchantId,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresAt: tokens.expiresAt,
  });
  if (!replaced) return report(tenantId, merchantId, 'skipped', state.tokenExpiresAt, SUPERSEDED);
  const result = await c.onConnection(tenantId, { type: 'RecordTokenRefresh', tenantId, authorizationId, tokenExpiresAt: tokens.expiresAt, now: c.now() }, metadata);
  if (result.events.length === 0) return report(tenantId, merchantId, 'skipped', state.tokenExpiresAt, SUPERSEDED);
  return report(tenantId, merchantId, 'refreshed', tokens.expiresAt, null, result.position);
}

const SUPERSEDED = { code: 'SUPERSEDED', detail: 'The connection was renewed or revoked while refreshing; nothing to do' };

const TOKENS_LOST = "The vault holds no token of this connection's authorization (its connect failed after recording it): connect Square again";

/**
 * Records that the connection's tokens are lost for good (see `tokensLost`): the merchant must connect again.
 * Only an active connection records it, once (`RecordRefreshFailure` applies to the active authorization).
 */
export function recordTokensLost(c: ConnectionsContext, state: ConnectedState, metadata: EventMetadata) {
  const { tenantId, authorizationId } = state;
  return c.onConnection(tenantId, { type: 'RecordRefreshFailure', tenantId, authorizationId, code: 'TOKEN_MISSING', detail: TOKENS_LOST, needsReconnect: true, now: c.now() }, metadata);
}

function report(
  tenantId: string,
  merchantId: string | null,
  outcome: RefreshOutcome,
  tokenExpiresAt: string | null,
  error: RefreshReport['error'],
  position?: Position,
): RefreshReport {
  return { tenantId, merchantId, outcome, tokenExpiresAt, error, position };
}
