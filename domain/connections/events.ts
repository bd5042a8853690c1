import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';

/**
 * Events of a tenant's Square connection (stream `square-connection-<tenantId>`). They record facts only:
 * tokens never enter the log (they live encrypted in the token vault, see `domain/ports/token-vault.ts`).
 */

/** Who ended a connection: Tally (`app`), the merchant in Square's dashboard, or Square. */
export const revokedBy = z.enum(['app', 'merchant', 'square']);
export type RevokedBy = z.output<typeof revokedBy>;

/** A location of the merchant, as Square lists it when the connection is authorized. */
export const connectionLocation = z.object({ id: z.string(), name: z.string().nullable(), status: z.string() });
export type ConnectionLocation = z.output<typeof connectionLocation>;

/** `authorizationId` identifies an authorization's tokens in the vault: a refresh only replaces tokens of the same one. */
const grant = { tenantId: z.string(), merchantId: z.string(), authorizationId: z.string() };

const squareConnectionAuthorizedV1 = z.object({
    ...grant,
    /** The merchant reservation's claim number this authorization holds (see `merchant-reservation.ts`). */
    merchantClaim: z.number().int(),
    businessName: z.string().nullable(),
    scopes: z.array(z.string()),
    tokenExpiresAt: z.string(),
    locations: z.array(connectionLocation),
    /** The merchant this tenant was connected to before, when it was another one (its reservation is released). */
    previousMerchantId: z.string().nullable(),
    /** Who started the connect flow (`user:<id>` or `admin:<id>`). */
    authorizedBy: z.string(),
    authorizedAt: z.string(),
  });

/**
 * Version 2 (issue 15) records the merchant profile's currency (ISO 4217: the workspace's currency, in whose minor
 * units rules count) and country (ISO 3166 alpha-2: the default region of phone numbers). Version 1 did not: null,
 * unknown (no currency check, phones read as US numbers, as then).
 */
export const squareConnectionAuthorized = EventType.define('SquareConnectionAuthorized', squareConnectionAuthorizedV1).next(
  squareConnectionAuthorizedV1.extend({ currency: z.string().nullable(), country: z.string().nullable() }),
  (v1) => ({ ...v1, currency: null, country: null }),
);
export const squareTokensRefreshed = EventType.define('SquareTokensRefreshed', z.object({ ...grant, tokenExpiresAt: z.string(), refreshedAt: z.string() }));
export const squareTokenRefreshFailed = EventType.define(
  'SquareTokenRefreshFailed',
  z.object({
    ...grant,
    /** Square's error code (or ours: TIMEOUT, NETWORK, TOKEN_MISSING…). */
    code: z.string(),
    detail: z.string(),
    needsReconnect: z.boolean(),
    failedAt: z.string(),
  }),
);
export const squareAccessRefused = EventType.define(
  'SquareAccessRefused',
  z.object({
    ...grant,
    /** The merchant-token call Square refused (`payments.list`, `customers.get`…). */
    operation: z.string(),
    /** Square's code: ACCESS_TOKEN_REVOKED, UNAUTHORIZED or INSUFFICIENT_SCOPES. */
    code: z.string(),
    detail: z.string(),
    refusedAt: z.string(),
  }),
);
export const squareConnectionRevoked = EventType.define(
  'SquareConnectionRevoked',
  z.object({ tenantId: z.string(), merchantId: z.string(), revokedBy, revokedAt: z.string(), by: z.string().nullable() }),
);
export const squareTokenDecryptionFailed = EventType.define(
  'SquareTokenDecryptionFailed',
  z.object({ tenantId: z.string(), merchantId: z.string(), keyId: z.string(), detectedAt: z.string() }),
);
export const squareTokenDecryptionRecovered = EventType.define(
  'SquareTokenDecryptionRecovered',
  z.object({ tenantId: z.string(), merchantId: z.string(), keyId: z.string(), recoveredAt: z.string() }),
);

const pollRecord = z.object({
  tenantId: z.string(),
  merchantId: z.string(),
  /** Where the next poll of this merchant resumes (opaque to everything but `domain/payments/poll.ts`). */
  cursor: z.string().nullable(),
  polledAt: z.string(),
  summary: z.record(z.string(), z.json()),
});
export type PollRecord = z.output<typeof pollRecord>;

/** A finished poll: written on the tenant's poll stream (poll-log.ts), on the connection stream by older deployments. */
export const squarePaymentsPolled = EventType.define('SquarePaymentsPolled', pollRecord);

/** `SquarePaymentsPolled` is here for connection streams of older deployments (see poll-log.ts). */
export const connectionEvents = eventCodec(
  { stream: 'square-connection-<tenantId>', writtenBy: 'squareConnectionDecider', legacy: ['SquarePaymentsPolled'] },
  squareConnectionAuthorized,
  squareTokensRefreshed,
  squareTokenRefreshFailed,
  squareAccessRefused,
  squareConnectionRevoked,
  squareTokenDecryptionFailed,
  squareTokenDecryptionRecovered,
  squarePaymentsPolled,
);

export type SquareConnectionEvent = EventsOf<typeof connectionEvents>;

export interface ConnectionError {
  code: string;
  detail: string;
  at: string;
}

/** What every connection that was ever authorized knows, whatever its status now. */
export interface ConnectionDetails {
  tenantId: string;
  merchantId: string;
  authorizationId: string;
  businessName: string | null;
  /** The workspace's currency (ISO 4217) from the merchant profile; null for a connection made before it was recorded. */
  currency: string | null;
  /** The merchant's country (ISO 3166 alpha-2); null for a connection made before it was recorded. */
  country: string | null;
  scopes: string[];
  locations: ConnectionLocation[];
  tokenExpiresAt: string;
  authorizedAt: string;
  /** When this workspace first connected this merchant (kept across reconnects to it): a first poll starts there. */
  connectedSince: string;
  lastRefreshedAt: string | null;
  pollCursor: string | null;
  lastPolledAt: string | null;
  lastError: ConnectionError | null;
  /** Per merchant, the reservation claim this tenant's latest authorization of it held. */
  merchantClaims: Record<string, number>;
}

export type SquareConnectionState =
  | { status: 'not_connected' }
  | ({ status: 'active' } & ConnectionDetails)
  | ({ status: 'needs_reconnect' } & ConnectionDetails)
  | ({ status: 'token_undecryptable'; undecryptableKeyId: string } & ConnectionDetails)
  | ({ status: 'revoked'; revokedBy: RevokedBy; revokedAt: string } & ConnectionDetails);

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
 * Whether the tenant may still be using its claim `claim` on `merchantId`. A claim is in use until the tenant
 * recorded an authorization with it and that authorization then ended (revoked) or moved to another merchant;
 * a claim not yet recorded in an authorization may belong to a connect flow in progress, so it counts as in use.
 */
export function claimStillInUse(connection: SquareConnectionState, merchantId: string, claim: number): boolean {
  if (connection.status === 'not_connected') return true;
  if (connection.merchantClaims[merchantId] !== claim) return true;
  return connection.merchantId === merchantId && connection.status !== 'revoked';
}
