/**
 * Bearer token verification with jose: HS256 with AUTH_JWT_SECRET (what Supabase issues), or asymmetric keys
 * from AUTH_JWKS_URL. Only the listed algorithms are accepted, so `alg: none` and HS/RS confusion fail.
 *
 * HS256 costs: the secret is imported as a CryptoKey once (given as bytes, jose imports it again on every
 * call), and a token jose accepted is remembered by its exact text (see `VerifiedTokens`), so a client's
 * next requests with the same token skip the HMAC; its expiry is checked again on every request.
 */
import type { TokenIdentity } from '../domain/users/service.ts';
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { HttpError } from './errors.ts';
import { isStorableText } from './text.ts';
import { MAX_SUBJECT } from './schemas.ts';

export interface AuthOptions {
  secret?: string | undefined;
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** The clock `exp` and `nbf` are checked against (tests move it instead of waiting). */
  now?: () => Date;
  /** Where the token says its email and phone are verified (see `IdentityClaims`). */
  identity?: IdentityClaims;
  /** Told why AUTH_JWKS_URL's keys could not be fetched (the caller then gets a 503, not a 401). */
  onKeyServerFailure?: (error: unknown) => void;
}

/**
 * Which claims vouch for the caller's contact details. Paths are dotted (`user_metadata.email_verified`);
 * the first path present wins. With `providerConfirmsContacts`, the identity provider is known to issue
 * sessions only for confirmed emails and phones (Supabase with confirmations on), so `email` and the phone
 * claim count as verified even without a flag.
 */
export interface IdentityClaims {
  emailVerified: readonly string[];
  phone: readonly string[];
  phoneVerified: readonly string[];
  providerConfirmsContacts: boolean;
}

export const DEFAULT_IDENTITY_CLAIMS: IdentityClaims = {
  emailVerified: ['email_verified'],
  phone: ['phone_number', 'phone'],
  phoneVerified: ['phone_number_verified'],
  providerConfirmsContacts: false,
};

/** Who the bearer token names, and what it vouches for (the domain's TokenIdentity: see its fields there). */
export type Principal = TokenIdentity;

function claimAt(payload: Record<string, unknown>, path: string): unknown {
  let value: unknown = payload;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

const firstClaim = (payload: Record<string, unknown>, paths: readonly string[]) =>
  paths.map((p) => claimAt(payload, p)).find((v) => v !== undefined && v !== null && v !== '');

/** `true` or `"true"` (some providers send strings); anything else is not a verification. */
const isTrue = (value: unknown) => value === true || value === 'true';

export function principalFrom(payload: Record<string, unknown> & { sub: string }, claims: IdentityClaims): Principal {
  const email = typeof payload.email === 'string' ? payload.email : undefined;
  const phoneClaim = firstClaim(payload, claims.phone);
  const phone = typeof phoneClaim === 'string' ? phoneClaim : undefined;
  return Object.freeze({
    userId: payload.sub,
    email,
    emailVerified: email !== undefined && (claims.providerConfirmsContacts || isTrue(firstClaim(payload, claims.emailVerified))),
    phone,
    phoneVerified: phone !== undefined && (claims.providerConfirmsContacts || isTrue(firstClaim(payload, claims.phoneVerified))),
    verifiedBy: claims.providerConfirmsContacts ? 'identity_provider' : 'token',
  });
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const unauthenticated = (reason: string) => new HttpError('UNAUTHENTICATED', reason);

/**
 * HS256 tokens jose verified, by their exact text (header, payload and signature): only a byte-identical
 * token is found, and with the one secret of this process its signature, issuer and audience checks would
 * come out the same again. What changes with time is checked again on every hit, as jose checks it: `exp`
 * (the token is valid while now < exp) and `nbf` (now ≥ nbf); a token past its `exp` is dropped and goes
 * through jose, which refuses it with its usual reason. Only accepted tokens enter (a refused one is never
 * remembered), at most MAX_ENTRIES of them (oldest out first), each for at most MAX_AGE_MS, and only tokens
 * of a sensible size. Not used with AUTH_JWKS_URL: there keys rotate, and jose's key set decides when.
 */
class VerifiedTokens {
  static readonly MAX_ENTRIES = 10_000;
  static readonly MAX_AGE_MS = 10 * 60_000;
  static readonly MAX_TOKEN_LENGTH = 4096;
  private readonly entries = new Map<string, { principal: Principal; notBeforeS: number | undefined; until: number }>();

  constructor(private readonly clock: () => number) {}

  get(token: string): Principal | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    const now = this.clock();
    if (now >= entry.until) {
      this.entries.delete(token);
      return undefined;
    }
    // jose compares whole seconds: refused while nbf > now.
    if (entry.notBeforeS !== undefined && entry.notBeforeS > Math.floor(now / 1000)) return undefined;
    return entry.principal;
  }

  add(token: string, principal: Principal, payload: { exp?: number | undefined; nbf?: number | undefined }): void {
    if (token.length > VerifiedTokens.MAX_TOKEN_LENGTH) return;
    const now = this.clock();
    const until = Math.min(now + VerifiedTokens.MAX_AGE_MS, payload.exp === undefined ? Infinity : payload.exp * 1000);
    if (!(until > now)) return;
    if (this.entries.size >= VerifiedTokens.MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { principal, notBeforeS: payload.nbf, until });
  }
}

export function createTokenVerifier(options: AuthOptions): (token: string) => Promise<Principal> {
  const jwks: JWTVerifyGetKey | undefined = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  // Imported once: given the raw bytes, jose would import them as a CryptoKey on every verification.
  const secret = options.secret
    ? crypto.subtle.importKey('raw', new TextEncoder().encode(options.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    : undefined;
  if (!jwks && !secret) throw new Error('Either AUTH_JWT_SECRET or AUTH_JWKS_URL must be configured');
  const verifyOptions = {
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  const now = options.now ?? (() => new Date());
  const identityClaims = options.identity ?? DEFAULT_IDENTITY_CLAIMS;
  const verified = jwks ? undefined : new VerifiedTokens(() => now().getTime());

  return async (token) => {
    const known = verified?.get(token);
    if (known) return known;
    try {
      const { payload } = jwks
        ? await jwtVerify(token, jwks, { ...verifyOptions, currentDate: now(), algorithms: ASYMMETRIC, requiredClaims: ['exp'] })
        : await jwtVerify(token, await secret!, { ...verifyOptions, currentDate: now(), algorithms: ['HS256'], requiredClaims: ['exp'] });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > MAX_SUBJECT) {
        throw unauthenticated('The token has no subject (sub) claim');
      }
      if (!isStorableText(payload.sub)) throw unauthenticated('The token subject (sub) holds a NUL character or an unpaired surrogate');
      const principal = principalFrom({ ...payload, sub: payload.sub }, identityClaims);
      verified?.add(token, principal, payload);
      return principal;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      if (jwks && isKeyServerFailure(error)) {
        // Not the caller's fault: no 401 (a client would sign its user out) and no count against its address.
        options.onKeyServerFailure?.(error);
        throw new HttpError('UNAVAILABLE', "The identity provider's signing keys (AUTH_JWKS_URL) cannot be fetched; retry shortly");
      }
      throw unauthenticated(reasonFor(error));
    }
  };
}

/**
 * The key server failed, not the token: a timeout, a network error (not jose's own), an answer other than 200, or
 * one that is not a key set. A token whose `kid` the fetched set lacks is the token's problem (`JWKSNoMatchingKey`).
 */
function isKeyServerFailure(error: unknown): boolean {
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return true;
  if (!(error instanceof errors.JOSEError)) return true;
  return error.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/.test(error.message);
}

function reasonFor(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'The token is not valid yet (nbf is in the future)';
    if (error.claim === 'exp') return 'The token has no expiry (exp): tokens without one are refused';
    if (error.claim === 'iss') return 'The token was issued by an unexpected issuer';
    if (error.claim === 'aud') return 'The token is meant for another audience';
    return `The token's ${error.claim} claim is invalid`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'The token is signed with an algorithm that is not accepted';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The token signature is invalid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'No key matches the token (kid)';
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JOSEError) return 'The token is malformed or cannot be verified';
  return 'The token cannot be verified';
}
