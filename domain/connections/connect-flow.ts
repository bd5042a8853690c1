/**
 * The OAuth code flow: the authorize URL (with a signed, single-use state bound to the tenant), and the
 * callback that exchanges the code, reads the merchant, claims it, stores the tokens and records the connection.
 */
import type { EventMetadata, Position } from '../ports/event-store.ts';
import { InvalidOAuthState, type OAuthStateClaims } from '../ports/oauth-state.ts';
import { SQUARE_SCOPES, SquareApiError, type SquareGateway, type SquareLocation, type SquareMerchant, type SquareTokens } from '../ports/square.ts';
import type { ConnectionsContext } from './context.ts';
import { ConfigurationMissing, ConnectFailed, MerchantAlreadyConnected } from './errors.ts';
import { isLive } from './events.ts';
import { claimMerchant, releaseClaim } from './reservations.ts';

/** What Square sent to the callback URL (query parameters). */
export interface OAuthCallback {
  code?: string | undefined;
  state?: string | undefined;
  /** `access_denied` when the merchant declined. */
  error?: string | undefined;
  errorDescription?: string | undefined;
}

export interface Connected {
  tenantId: string;
  merchantId: string;
  position: Position | undefined;
  /**
   * The merchant this tenant was connected to before, when it was another one: its grant is revoked at Square
   * (least privilege: the app keeps no access to a merchant no tenant uses). `revoked: false` carries why not.
   */
  previous: { merchantId: string; revoked: boolean; error: string | null } | null;
}

/**
 * Step 1 (the tenant's app, with its bearer token): a one-time link to the start URL, bound to `browserNonce`,
 * which the HTTP layer sets as an HttpOnly cookie in the answer to that very request: only the browser that asked
 * can open the link (a link passed to another merchant would connect their Square business to this workspace).
 */
export async function connectUrl(c: ConnectionsContext, claims: OAuthStateClaims, browserNonce: string): Promise<{ url: string }> {
  c.gateway(); // Unconfigured Square fails here, with the configuration error, not after the browser left.
  const ticket = await c.deps.oauthStates.issueTicket(claims, browserNonce, c.deps.runtime.now());
  const url = new URL(c.deps.startUrl);
  url.searchParams.set('ticket', ticket);
  return { url: url.toString() };
}

/** The Square gateway, or a `ConnectFailed` saying the app is not configured. */
function connectGateway(c: ConnectionsContext): SquareGateway {
  try {
    return c.gateway();
  } catch (error) {
    if (error instanceof ConfigurationMissing) throw new ConnectFailed('configuration_missing', error.message);
    throw error;
  }
}

/**
 * Step 2 (the browser, at the start URL): the ticket is checked against the browser's nonce (its cookie), spent,
 * and Square's authorize URL returned, with a state bound to the same nonce.
 */
export async function startConnect(c: ConnectionsContext, ticket: string | undefined, browserNonce: string | undefined): Promise<{ authorizeUrl: string }> {
  const gateway = connectGateway(c);
  let claims: OAuthStateClaims;
  try {
    claims = await c.deps.oauthStates.redeemTicket(ticket, browserNonce, c.deps.runtime.now());
  } catch (error) {
    if (error instanceof InvalidOAuthState) throw new ConnectFailed('invalid_state', `connect ticket rejected: ${error.reason}`);
    throw error;
  }
  // The ticket was bound to this nonce, so it is present here; said again for the compiler.
  if (!browserNonce) throw new ConnectFailed('invalid_state', 'connect ticket rejected: not_this_browser');
  await requireMayConnect(c, claims);
  const state = await c.deps.oauthStates.issue(claims, browserNonce, c.deps.runtime.now());
  return { authorizeUrl: gateway.oauth.authorizeUrl({ state, redirectUri: c.deps.redirectUri, scopes: SQUARE_SCOPES }) };
}

/** Handles the callback; every failure is a `ConnectFailed` whose `reason` the browser may see. */
export async function completeConnect(c: ConnectionsContext, callback: OAuthCallback, browserNonce: string | undefined, metadata: EventMetadata): Promise<Connected> {
  const gateway = connectGateway(c);
  if (callback.error) {
    // Whose attempt it was, for the log (and the state is used up): a state that does not verify is still Square's refusal.
    const claims = await c.deps.oauthStates.consume(callback.state, browserNonce, c.deps.runtime.now()).catch(() => undefined);
    throw new ConnectFailed('access_denied', `Square answered error=${callback.error} (${callback.errorDescription ?? 'no description'})`, claims?.tenantId);
  }
  let claims: OAuthStateClaims;
  try {
    claims = await c.deps.oauthStates.consume(callback.state, browserNonce, c.deps.runtime.now());
  } catch (error) {
    if (error instanceof InvalidOAuthState) throw new ConnectFailed('invalid_state', `state rejected: ${error.reason}`);
    throw error;
  }
  try {
    await requireMayConnect(c, claims);
    return await exchangeAndAuthorize(c, gateway, callback, claims, metadata);
  } catch (error) {
    // Every failure from here on is the verified workspace's: the log names it.
    if (error instanceof ConnectFailed && !error.tenantId) throw new ConnectFailed(error.reason, error.detail, claims.tenantId);
    throw error;
  }
}

/** Refuses a flow begun by an account that may no longer connect the workspace (suspended meanwhile, say). */
async function requireMayConnect(c: ConnectionsContext, claims: OAuthStateClaims): Promise<void> {
  if (!(await c.deps.mayConnect(claims.actor, claims.tenantId))) {
    throw new ConnectFailed('access_denied', `${claims.actor} may no longer connect workspace ${claims.tenantId} (suspended, or not its owner any more)`, claims.tenantId);
  }
}

async function exchangeAndAuthorize(c: ConnectionsContext, gateway: SquareGateway, callback: OAuthCallback, claims: OAuthStateClaims, metadata: EventMetadata): Promise<Connected> {
  if (!callback.code) throw new ConnectFailed('token_exchange_failed', 'the callback carried no code');

  let tokens: SquareTokens;
  let merchant: SquareMerchant;
  let locations: SquareLocation[];
  let scopes: string[];
  try {
    tokens = await gateway.oauth.exchangeCode(callback.code, { redirectUri: c.deps.redirectUri });
    const api = gateway.forAccessToken(tokens.accessToken);
    // The scopes the merchant granted, as Square reports them (what was asked for when it cannot say): rules that
    // read orders need ORDERS_READ and ITEMS_READ, which a narrower grant lacks.
    const granted = api.grantedScopes().then(
      (list) => (list.length ? list : [...SQUARE_SCOPES]),
      () => [...SQUARE_SCOPES],
    );
    [merchant, locations, scopes] = await Promise.all([api.getMerchant(), api.listLocations(), granted]);
  } catch (error) {
    if (error instanceof SquareApiError) throw new ConnectFailed('token_exchange_failed', error.message);
    throw error;
  }
  if (merchant.merchantId !== tokens.merchantId) {
    throw new ConnectFailed('token_exchange_failed', `the token is for merchant ${tokens.merchantId} but the profile read is ${merchant.merchantId}`);
  }
  return authorize(c, { ...claims, tokens, merchant, locations, scopes }, { ...metadata, actor: claims.actor });
}

async function authorize(
  c: ConnectionsContext,
  input: OAuthStateClaims & { tokens: SquareTokens; merchant: SquareMerchant; locations: SquareLocation[]; scopes: string[] },
  metadata: EventMetadata,
): Promise<Connected> {
  const { tenantId, tokens } = input;
  const merchantId = tokens.merchantId;
  // Rule amounts count in the workspace's currency: a merchant in another one would make "1 point per 100" mean
  // something else. Refused while rules stand; the merchant retires them first.
  const current = await c.loadConnection(tenantId);
  if (current.status !== 'not_connected' && current.currency !== null && current.currency !== input.merchant.currency) {
    const rules = await c.deps.unretiredRules(tenantId);
    if (rules > 0) {
      throw new ConnectFailed(
        'currency_mismatch',
        `merchant ${merchantId} counts in ${input.merchant.currency} but workspace ${tenantId} counts in ${current.currency} and has ${rules} reward rule version(s): retire them first`,
      );
    }
  }
  let claim: number;
  try {
    claim = await claimMerchant(c, merchantId, tenantId, metadata);
  } catch (error) {
    if (error instanceof MerchantAlreadyConnected) {
      throw new ConnectFailed('merchant_already_connected', `merchant ${merchantId} is held by another tenant; tenant ${tenantId} was refused`);
    }
    throw error;
  }

  const authorizationId = c.deps.runtime.newId();
  let result;
  try {
    result = await c.onConnection(
      tenantId,
      {
        type: 'AuthorizeConnection',
        tenantId,
        merchantId,
        authorizationId,
        merchantClaim: claim,
        businessName: input.merchant.businessName,
        currency: input.merchant.currency,
        country: input.merchant.country,
        scopes: input.scopes,
        tokenExpiresAt: tokens.expiresAt,
        locations: input.locations.map((l) => ({ id: l.id, name: l.name, status: l.status })),
        by: input.actor,
        now: c.now(),
      },
      metadata,
    );
  } catch (error) {
    await abandon(c, { tenantId, merchantId, claim }, metadata);
    throw error;
  }
  // The tokens are stored once the authorization naming them is recorded: a failed record leaves the tenant's
  // tokens (those its connection names) as they were. A failure from here on leaves a connection naming tokens
  // the vault does not hold: its next use finds that out and, once the flow is surely over, records that the
  // merchant must connect again (see `tokensLost`).
  await c.deps.vault.put(tenantId, { authorizationId, merchantId, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresAt: tokens.expiresAt });

  const previous = result.events[0]?.type === 'SquareConnectionAuthorized' ? result.events[0].data.previousMerchantId : null;
  let previousGrant: Connected['previous'] = null;
  if (previous && result.state.status !== 'not_connected') {
    // Revoke while this tenant still holds the previous merchant's claim: Square revokes by merchant, so once the
    // claim is released another tenant could connect that merchant, and a later revoke would cut its grant too.
    previousGrant = { merchantId: previous, ...(await revokeGrant(c.gateway(), previous)) };
    await releaseClaim(c, previous, tenantId, result.state.merchantClaims[previous] ?? null, 'reconnected_elsewhere', metadata);
  }
  return { tenantId, merchantId, position: result.position, previous: previousGrant };
}

/**
 * The authorization could not be recorded: unless the tenant's existing connection still uses this merchant, the
 * grant just made is revoked at Square (while the claim is still held: Square revokes by merchant) and the claim
 * given back. Best effort: the original failure is the one to report; a claim left behind (unrecorded in the
 * stream) is taken over by the tenant's next attempt, or released for another tenant once older than
 * `UNRECORDED_CLAIM_GRACE_MS`.
 */
async function abandon(c: ConnectionsContext, attempt: { tenantId: string; merchantId: string; claim: number }, metadata: EventMetadata): Promise<void> {
  const { tenantId, merchantId, claim } = attempt;
  const current = await c.loadConnection(tenantId).catch(() => undefined);
  if (!current || (isLive(current) && current.merchantId === merchantId)) return;
  await revokeGrant(c.gateway(), merchantId);
  await releaseClaim(c, merchantId, tenantId, claim, 'abandoned', metadata).catch(() => undefined);
}

/** Best effort: the new connection stands whatever Square answers; NOT_FOUND means nothing was left to revoke. */
async function revokeGrant(gateway: SquareGateway, merchantId: string): Promise<{ revoked: boolean; error: string | null }> {
  try {
    await gateway.oauth.revoke(merchantId);
    return { revoked: true, error: null };
  } catch (error) {
    if (!(error instanceof SquareApiError)) return { revoked: false, error: error instanceof Error ? error.message : String(error) };
    if (error.code === 'NOT_FOUND') return { revoked: true, error: null };
    return { revoked: false, error: `${error.code}: ${error.detail}` };
  }
}
