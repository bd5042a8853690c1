import { unreachable } from '../shared/exhaustive.ts';
import { familyCodec, type EventsOf } from '../shared/codec.ts';
import * as connectionEventTypes from './event-types.ts';
import { z } from 'zod';
import { connectionGrant, connectionLocation, revokedBy } from './event-types.ts';

export * from './event-types.ts';

/** `SquarePaymentsPolled` is here for connection streams of older deployments (see poll-log.ts). */
export const connectionEvents = familyCodec(
  { stream: 'square-connection-<tenantId>', writtenBy: 'squareConnectionDecider', legacy: ['SquarePaymentsPolled'] },
  connectionEventTypes,
);

export type SquareConnectionEvent = EventsOf<typeof connectionEvents>;

const connectionError = z.object({ code: z.string(), detail: z.string(), at: z.string() });
export type ConnectionError = z.output<typeof connectionError>;

/**
 * What the latest authorization recorded of the merchant: its profile, the scopes it granted and its locations.
 * The connection's state holds it and the connection's read model shows it.
 */
export const merchantProfile = {
  businessName: z.string().nullable(),
  /** The workspace's currency (ISO 4217): rule amounts count in its minor units. Null: authorized before it was recorded. */
  currency: z.string().nullable(),
  /** The merchant's country (ISO 3166 alpha-2): the default region of phone numbers written without a country code. Null: authorized before it was recorded. */
  country: z.string().nullable(),
  scopes: z.array(z.string()),
  locations: z.array(connectionLocation),
};

/** What every connection that was ever authorized knows, whatever its status now. */
const connectionDetails = z.object({
  ...connectionGrant,
  ...merchantProfile,
  tokenExpiresAt: z.string(),
  authorizedAt: z.string(),
  /** When this workspace first connected this merchant (kept across reconnects to it): a first poll starts there. */
  connectedSince: z.string(),
  lastRefreshedAt: z.string().nullable(),
  pollCursor: z.string().nullable(),
  lastPolledAt: z.string().nullable(),
  lastError: connectionError.nullable(),
  /** Per merchant, the reservation claim this tenant's latest authorization of it held. */
  merchantClaims: z.record(z.string(), z.number()),
});
export type ConnectionDetails = z.output<typeof connectionDetails>;

/** A connection's state, declared once: the decider folds it, and its snapshots are parsed back with it. */
export const connectionState = z.discriminatedUnion('status', [
  z.object({ status: z.literal('not_connected') }),
  z.object({ status: z.literal('active'), ...connectionDetails.shape }),
  z.object({ status: z.literal('needs_reconnect'), ...connectionDetails.shape }),
  z.object({ status: z.literal('token_undecryptable'), undecryptableKeyId: z.string(), ...connectionDetails.shape }),
  z.object({ status: z.literal('revoked'), revokedBy, revokedAt: z.string(), ...connectionDetails.shape }),
]);
export type SquareConnectionState = z.output<typeof connectionState>;

export type ConnectionStatus = SquareConnectionState['status'];
export type ConnectedState = Exclude<SquareConnectionState, { status: 'not_connected' }>;

export const initialConnectionState: SquareConnectionState = { status: 'not_connected' };

export const CONNECTION_STREAM_PREFIX = 'square-connection-';
export const connectionStream = (tenantId: string) => `${CONNECTION_STREAM_PREFIX}${tenantId}`;

/** Square still holds a grant for the tenant's merchant (the connection is not revoked). */
export const isLive = (state: SquareConnectionState): state is Exclude<ConnectedState, { status: 'revoked' }> =>
  state.status !== 'not_connected' && state.status !== 'revoked';

/** The details of a connection, without its status (to give it another one). */
export function detailsOf(state: ConnectedState): ConnectionDetails {
  return {
    tenantId: state.tenantId,
    merchantId: state.merchantId,
    authorizationId: state.authorizationId,
    businessName: state.businessName,
    currency: state.currency,
    country: state.country,
    scopes: state.scopes,
    locations: state.locations,
    tokenExpiresAt: state.tokenExpiresAt,
    authorizedAt: state.authorizedAt,
    connectedSince: state.connectedSince,
    lastRefreshedAt: state.lastRefreshedAt,
    pollCursor: state.pollCursor,
    lastPolledAt: state.lastPolledAt,
    lastError: state.lastError,
    merchantClaims: state.merchantClaims,
  };
}

export function evolveConnection(state: SquareConnectionState, event: SquareConnectionEvent): SquareConnectionState {
  if (event.type === 'SquareConnectionAuthorized') {
    const d = event.data;
    const sameMerchant = state.status !== 'not_connected' && state.merchantId === d.merchantId;
    return {
      status: 'active',
      tenantId: d.tenantId,
      merchantId: d.merchantId,
      authorizationId: d.authorizationId,
      businessName: d.businessName,
      currency: d.currency,
      country: d.country,
      scopes: d.scopes,
      locations: d.locations,
      tokenExpiresAt: d.tokenExpiresAt,
      authorizedAt: d.authorizedAt,
      connectedSince: sameMerchant ? state.connectedSince : d.authorizedAt,
      lastRefreshedAt: null,
      // Polling resumes where it stopped for the same merchant; another merchant starts afresh.
      pollCursor: sameMerchant ? state.pollCursor : null,
      lastPolledAt: sameMerchant ? state.lastPolledAt : null,
      lastError: null,
      merchantClaims: { ...(state.status === 'not_connected' ? {} : state.merchantClaims), [d.merchantId]: d.merchantClaim },
    };
  }
  if (state.status === 'not_connected') return state;
  switch (event.type) {
    case 'SquareTokensRefreshed':
      return { ...state, tokenExpiresAt: event.data.tokenExpiresAt, lastRefreshedAt: event.data.refreshedAt, lastError: null };
    case 'SquareTokenRefreshFailed': {
      const failed = { ...state, lastError: { code: event.data.code, detail: event.data.detail, at: event.data.failedAt } };
      return event.data.needsReconnect ? { status: 'needs_reconnect', ...detailsOf(failed) } : failed;
    }
    case 'SquareAccessRefused':
      // Square no longer honours the grant (revoked from Square's dashboard, scopes narrowed): stop using the
      // tokens and ask the merchant to connect again. Only an `oauth.authorization.revoked` webhook or our own
      // disconnect make it `revoked`.
      return { status: 'needs_reconnect', ...detailsOf(state), lastError: { code: event.data.code, detail: event.data.detail, at: event.data.refusedAt } };
    case 'SquareConnectionRevoked':
      return { status: 'revoked', ...detailsOf(state), revokedBy: event.data.revokedBy, revokedAt: event.data.revokedAt };
    case 'SquareTokenDecryptionFailed':
      return {
        status: 'token_undecryptable',
        ...detailsOf(state),
        undecryptableKeyId: event.data.keyId,
        lastError: { code: 'TOKEN_UNDECRYPTABLE', detail: `The stored token was encrypted under key ${event.data.keyId}, which is not configured`, at: event.data.detectedAt },
      };
    case 'SquareTokenDecryptionRecovered':
      return { status: 'active', ...detailsOf(state), lastError: null };
    case 'SquarePaymentsPolled':
      return { ...state, pollCursor: event.data.cursor, lastPolledAt: event.data.polledAt };
    default:
      return unreachable(event);
  }
}

/**
 * How long a claim the holder's stream does not record counts as a connect flow in progress. The callback claims
 * the merchant seconds before it records the authorization; a claim still unrecorded after this was left by a flow
 * that failed in between (a crash, an append that failed and whose release failed too, a failed reconnect to the
 * same merchant, which keeps its new claim while the connection uses the merchant).
 */
export const UNRECORDED_CLAIM_GRACE_MS = 10 * 60_000;

/**
 * Whether the tenant may still be using its claim on `merchantId` (the reservation's latest, made at `claimedAt`).
 * In use while the tenant's connection uses the merchant, whatever claim it recorded. A claim recorded in an
 * authorization that then ended (revoked) or moved to another merchant is not. A claim not recorded may belong to a
 * connect flow in progress, so it counts as in use for `UNRECORDED_CLAIM_GRACE_MS` after it was made.
 */
export function claimStillInUse(connection: SquareConnectionState, merchantId: string, reservation: { claim: number; claimedAt: string }, now: string): boolean {
  if (isLive(connection) && connection.merchantId === merchantId) return true;
  if (connection.status !== 'not_connected' && connection.merchantClaims[merchantId] === reservation.claim) return false;
  return Date.parse(now) - Date.parse(reservation.claimedAt) < UNRECORDED_CLAIM_GRACE_MS;
}

/**
 * The vault does not hold the tokens the connection names (no row, or a row of another authorization): whether
 * that is for good. The callback records the authorization, then stores its tokens, so within
 * `UNRECORDED_CLAIM_GRACE_MS` of the authorization the flow may still be storing them; after that, it failed
 * between the two (a crash, a database error) and the merchant must connect again.
 */
export function tokensLost(connection: ConnectedState, now: string): boolean {
  return Date.parse(now) - Date.parse(connection.authorizedAt) >= UNRECORDED_CLAIM_GRACE_MS;
}
