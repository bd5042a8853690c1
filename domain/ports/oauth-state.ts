/**
 * The OAuth `state` parameter of the Square connect flow: a CSRF token that also carries which tenant (and who)
 * started the flow, since the callback arrives from Square without our bearer token. `adapters/oauth/state.ts`
 * signs it (HS256, key derived from ENCRYPTION_KEY) and enforces single use in PostgreSQL.
 */
import { DomainError } from '../shared/errors.ts';

/** Who started a connect flow, bound into the state. */
export interface OAuthStateClaims {
  tenantId: string;
  /** `user:<id>` or `admin:<id>`. */
  actor: string;
}

/** How long a state is accepted after it was issued. */
export const OAUTH_STATE_LIFETIME_SECONDS = 600;

/** How long a connect ticket (the one-time link to the start URL) is accepted. */
export const OAUTH_TICKET_LIFETIME_SECONDS = 300;

/**
 * `not_this_browser`: the ticket or state is genuine, but the browser bringing it is not the one that started the
 * flow (its nonce cookie is missing or different): someone else's connect or authorize link, or a login CSRF.
 */
export type InvalidStateReason = 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'reused' | 'not_this_browser';

/** The state is not one we issued, expired, or was used already. */
export class InvalidOAuthState extends DomainError {
  constructor(readonly reason: InvalidStateReason) {
    super('INVALID_OAUTH_STATE', `The OAuth state is not valid (${reason}): start the connect flow again`);
    this.name = 'InvalidOAuthState';
  }
}

export interface OAuthStates {
  /**
   * A one-time ticket for `claims`, valid `OAUTH_TICKET_LIFETIME_SECONDS`, bound to the browser holding
   * `browserNonce`: the tenant's app asks for it with its bearer token, and the answer sets the nonce's cookie in
   * that same browser, so a ticket handed to anyone else (a link sent to another merchant) is refused at the start.
   */
  issueTicket(claims: OAuthStateClaims, browserNonce: string, now: Date): Promise<string>;
  /** Verifies a ticket and the browser's nonce, and marks the ticket used; throws `InvalidOAuthState`. */
  redeemTicket(ticket: string | undefined, browserNonce: string | undefined, now: Date): Promise<OAuthStateClaims>;
  /**
   * A signed state for `claims`, valid for `OAUTH_STATE_LIFETIME_SECONDS` from `now`, bound to the browser
   * holding `browserNonce` (the state carries only a hash of it; the browser holds it in an HttpOnly cookie).
   */
  issue(claims: OAuthStateClaims, browserNonce: string, now: Date): Promise<string>;
  /**
   * Verifies a state and the browser's nonce, and marks the state used; throws `InvalidOAuthState`. A second
   * call with the same state throws `reused`.
   */
  consume(state: string | undefined, browserNonce: string | undefined, now: Date): Promise<OAuthStateClaims>;
}
