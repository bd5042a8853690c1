/**
 * Square connection use cases: connect (OAuth code flow), refresh, disconnect, and what payment ingestion needs
 * (an API client per tenant, the tenant of a merchant, poll checkpoints, revocations from webhooks).
 * Tokens stay in the vault; the event log records facts only.
 */
import { unreachable } from '../shared/exhaustive.ts';
import type { EventMetadata, JsonObject, Position } from '../ports/event-store.ts';
import type { OAuthStateClaims } from '../ports/oauth-state.ts';
import { SquareApiError, type SquareApi } from '../ports/square.ts';
import { connectUrl, completeConnect, startConnect, type Connected, type OAuthCallback } from './connect-flow.ts';
import { connectionsContext, type SquareConnectionsDependencies } from './context.ts';
import { revocationPredates } from './decider.ts';
import { ConnectionUnavailable, EncryptionKeyNotHeld, SquareRequestFailed } from './errors.ts';
import { isLive, tokensLost, type RevokedBy, type SquareConnectionState } from './events.ts';
import { recordTokensLost, refreshDue, refreshNow, type RefreshReport } from './refresh.ts';
import { vaultAuthorization } from '../ports/token-vault.ts';
import { cleanUpRevoked } from './reservations.ts';
import { reportingRefusedAccess } from './refused-access.ts';
import { pollCursorFor, pollRecordFor, withLastPoll, type QuietPoll } from './poll-log.ts';

export type { SquareConnectionsDependencies, SquareAccess } from './context.ts';
export type { OAuthCallback, Connected } from './connect-flow.ts';
export type { RefreshReport, RefreshOutcome } from './refresh.ts';

/** What the vault holds for a tenant, without the tokens: for the debug endpoint. */
export interface TokenCheck {
  stored: boolean;
  /** Null when nothing is stored. */
  decrypts: boolean | null;
  /** Short hash naming the key the token is encrypted under (never the key). */
  keyId: string | null;
  /** False: it decrypts with ENCRYPTION_KEY_PREVIOUS only (run `npm run rotate-keys`). Null when unknown. */
  encryptedWithCurrentKey: boolean | null;
  expiresAt: string | null;
  /** The authorization the stored tokens belong to (null when nothing is stored): the connection's, normally. */
  authorizationId: string | null;
}

export interface ActiveConnection {
  tenantId: string;
  merchantId: string;
  pollCursor: string | null;
  /** When the workspace first connected this merchant (kept across reconnects to it): a first poll starts there. */
  connectedAt: string;
}

/** `revoker_type` of `oauth.authorization.revoked`: `MERCHANT`, `APPLICATION` or `SQUARE`. */
function revokedByFor(revokerType: string | null): RevokedBy {
  if (revokerType === 'SQUARE') return 'square';
  if (revokerType === 'APPLICATION') return 'app';
  return 'merchant';
}

// Over 80 lines because it is a factory: the methods it returns share its dependencies, and each is short.
export function squareConnectionsService(deps: SquareConnectionsDependencies) {
  const c = connectionsContext(deps);

  return {
    /** The start URL for the caller's browser, its ticket bound to the tenant, the caller and `browserNonce` (that browser's cookie). */
    connectUrl: (claims: OAuthStateClaims, browserNonce: string): Promise<{ url: string }> => connectUrl(c, claims, browserNonce),

    /** The browser starts the flow with its ticket and its cookie's nonce: Square's authorize URL, its state bound to the same nonce. */
    startConnect: (ticket: string | undefined, browserNonce: string | undefined) => startConnect(c, ticket, browserNonce),

    /** The OAuth callback. Every failure is a `ConnectFailed` whose `reason` is safe to show the browser. */
    completeConnect: (callback: OAuthCallback, browserNonce: string | undefined, metadata: EventMetadata): Promise<Connected> =>
      completeConnect(c, callback, browserNonce, metadata),

    /** The tenant's connection as the write model sees it now. */
    connection: async (tenantId: string): Promise<SquareConnectionState> => {
      const [state, last, quiet] = await Promise.all([c.loadConnection(tenantId), c.lastPoll(tenantId), deps.quietPolls.last(tenantId)]);
      return withLastPoll(state, last, quiet);
    },

    /** Whether the stored token decrypts, without recording anything (diagnostics). */
    async tokenCheck(tenantId: string): Promise<TokenCheck> {
      const stored = await deps.vault.read(tenantId);
      switch (stored.status) {
        case 'missing':
          return { stored: false, decrypts: null, keyId: null, encryptedWithCurrentKey: null, expiresAt: null, authorizationId: null };
        case 'undecryptable':
          return { stored: true, decrypts: false, keyId: stored.keyId, encryptedWithCurrentKey: null, expiresAt: stored.expiresAt, authorizationId: stored.authorizationId };
        case 'ok':
          return {
            stored: true,
            decrypts: true,
            keyId: stored.keyId,
            encryptedWithCurrentKey: stored.encryptedWithCurrentKey,
            expiresAt: stored.tokens.expiresAt,
            authorizationId: stored.tokens.authorizationId,
          };
        default:
          return unreachable(stored);
      }
    },

    /**
     * An API client with the tenant's access token. Throws `ConnectionUnavailable` (CONNECTION_UNAVAILABLE)
     * unless the connection is active; a token a key this instance holds cannot open is recorded once
     * (SquareTokenDecryptionFailed) and throws the same; a token under a key it does not hold throws
     * `EncryptionKeyNotHeld` (retryable) and records nothing; a token that decrypts again (the key was restored) makes the connection active again.
     */
    async apiFor(tenantId: string): Promise<{ api: SquareApi; merchantId: string }> {
      const gateway = c.gateway();
      const state = await c.loadConnection(tenantId);
      if (state.status !== 'active' && state.status !== 'token_undecryptable') throw ConnectionUnavailable.because(state.status);
      const stored = await deps.vault.read(tenantId);
      if (vaultAuthorization(stored) !== state.authorizationId) {
        // Its connect recorded it and failed before storing its tokens (or is storing them right now).
        if (tokensLost(state, c.now())) await recordTokensLost(c, state, { actor: 'system:square-connections' });
        throw ConnectionUnavailable.because('token_missing');
      }
      if (stored.status === 'missing') throw ConnectionUnavailable.because('token_missing'); // (said again for the compiler)
      if (stored.status === 'undecryptable') {
        // Another instance's key (a rotation under way): fail here, retryably, and leave the shared stream alone.
        if (stored.rotationSkew) throw new EncryptionKeyNotHeld(stored.keyId);
        await c.onConnection(tenantId, { type: 'RecordDecryptionFailure', tenantId, keyId: stored.keyId, now: c.now() }, { actor: 'system:square-connections' });
        throw ConnectionUnavailable.because('token_undecryptable');
      }
      if (state.status === 'token_undecryptable') {
        await c.onConnection(tenantId, { type: 'RecordDecryptionRecovery', tenantId, keyId: stored.keyId, now: c.now() }, { actor: 'system:square-connections' });
      }
      const authorizationId = state.authorizationId;
      const api = reportingRefusedAccess(gateway.forAccessToken(stored.tokens.accessToken), async (error) => {
        await c.onConnection(
          tenantId,
          { type: 'RecordAccessRefused', tenantId, authorizationId, operation: error.operation, code: error.code, detail: error.detail, now: c.now() },
          { actor: 'system:square-connections' },
        );
      });
      return { api, merchantId: state.merchantId };
    },

    /**
     * Every active connection with its poll cursor. The candidates come from the `pos_connections` read model
     * (so a connection made a moment ago may appear on the next call); each is then read from its own stream,
     * so status and cursor are current, never lagging.
     */
    async activeConnections(): Promise<ActiveConnection[]> {
      const active: ActiveConnection[] = [];
      for (const tenantId of await deps.tenantsWithStatus(['active'])) {
        const state = await c.loadConnection(tenantId);
        if (state.status === 'active') active.push({ tenantId, merchantId: state.merchantId, pollCursor: pollCursorFor(state, await c.lastPoll(tenantId)), connectedAt: state.connectedSince });
      }
      return active;
    },

    /** The tenant whose connection to this merchant is active (read from the streams: consistent), if any. */
    async tenantForMerchant(merchantId: string): Promise<string | undefined> {
      const reservation = await c.loadReservation(merchantId);
      if (reservation.status !== 'claimed') return undefined;
      const state = await c.loadConnection(reservation.tenantId);
      return state.status === 'active' && state.merchantId === merchantId ? reservation.tenantId : undefined;
    },

    /** Records a payments poll (its cursor is where the next one resumes). */
    async recordPoll(
      tenantId: string,
      poll: { cursor: string | null; polledAt: string; summary: JsonObject },
      metadata: EventMetadata,
    ): Promise<{ position: Position | undefined }> {
      const result = await c.appendPoll(pollRecordFor(await c.loadConnection(tenantId), poll), metadata);
      return { position: result.position };
    },

    /** Records when a poll that found nothing new ran (no event: see `QuietPolls`). */
    recordQuietPoll: (tenantId: string, poll: QuietPoll): Promise<void> => deps.quietPolls.record(tenantId, poll),

    /**
     * `oauth.authorization.revoked`: the merchant (or Square) revoked the app. Records the revocation on the
     * tenant holding the merchant, releases the merchant and deletes the tokens. Idempotent (webhooks repeat).
     * Returns undefined when no tenant holds the merchant; `outdated` when Square timed the revocation before the
     * connection's authorization (the merchant revoked, then connected again, and the webhook came late): nothing
     * changes then.
     */
    async markRevokedByWebhook(
      merchantId: string,
      revocation: { revokedAt: string; revokerType: string | null },
      metadata: EventMetadata,
    ): Promise<{ tenantId: string; revoked: boolean; outdated: boolean; position: Position | undefined } | undefined> {
      const reservation = await c.loadReservation(merchantId);
      if (reservation.status !== 'claimed') return undefined;
      const { tenantId } = reservation;
      const current = await c.loadConnection(tenantId);
      if (current.status === 'not_connected' || current.merchantId !== merchantId) return { tenantId, revoked: false, outdated: false, position: undefined };
      const result = await c.onConnection(
        tenantId,
        { type: 'RevokeConnection', tenantId, revokedBy: revokedByFor(revocation.revokerType), merchantId, by: null, now: revocation.revokedAt },
        metadata,
      );
      if (result.state.status === 'revoked') await cleanUpRevoked(c, result.state, metadata);
      const outdated = isLive(result.state) && revocationPredates(revocation.revokedAt, result.state.authorizedAt);
      return { tenantId, revoked: result.events.length > 0, outdated, position: result.position };
    },

    /**
     * Disconnects: revokes the app's tokens at Square, records the revocation (by the app), releases the
     * merchant and deletes the tokens. Disconnecting again completes an interrupted disconnect.
     */
    async disconnect(tenantId: string, by: string, metadata: EventMetadata): Promise<{ status: 'revoked'; position: Position | undefined }> {
      const gateway = c.gateway();
      const state = await c.loadConnection(tenantId);
      if (isLive(state)) {
        try {
          await gateway.oauth.revoke(state.merchantId);
        } catch (error) {
          if (!(error instanceof SquareApiError)) throw error;
          // NOT_FOUND: Square holds no token of ours for this merchant any more: there is nothing left to revoke.
          if (error.code !== 'NOT_FOUND') {
            const fix = error.retryable ? 'try again shortly' : 'check SQUARE_APP_ID and SQUARE_APP_SECRET';
            throw new SquareRequestFailed(`Square did not revoke the connection (${error.code}): ${fix}`, error.code);
          }
        }
      }
      const result = await c.onConnection(tenantId, { type: 'RevokeConnection', tenantId, revokedBy: 'app', merchantId: null, by, now: c.now() }, metadata);
      if (result.state.status === 'revoked') await cleanUpRevoked(c, result.state, metadata);
      return { status: 'revoked', position: result.position };
    },

    /** Refreshes the tenant's token now. */
    refresh: (tenantId: string, metadata: EventMetadata): Promise<RefreshReport> => refreshNow(c, tenantId, metadata),

    /** Refreshes every connection whose token is due; one report per connection looked at. */
    refreshDue: (metadata: EventMetadata, onError: (tenantId: string, error: unknown) => void): Promise<RefreshReport[]> =>
      refreshDue(c, metadata, onError),
  };
}

export type SquareConnectionsService = ReturnType<typeof squareConnectionsService>;
