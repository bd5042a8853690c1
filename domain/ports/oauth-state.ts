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

export type InvalidStateReason = 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'reused';

/** The state is not one we issued, expired, or was used already. */
export class InvalidOAuthState extends DomainError {
  constructor(readonly reason: InvalidStateReason) {
    super('INVALID_OAUTH_STATE', `The OAuth state is not valid (${reason}): start the connect flow again`);
    this.name = 'InvalidOAuthState';
  }
}

export interface OAuthStates {
  /** A signed state for `claims`, valid for `OAUTH_STATE_LIFETIME_SECONDS` from `now`. */
  issue(claims: OAuthStateClaims, now: Date): Promise<string>;
  /** Verifies a state and marks it used; throws `InvalidOAuthState`. A second call with the same state throws `reused`. */
  consume(state: string | undefined, now: Date): Promise<OAuthStateClaims>;
}
