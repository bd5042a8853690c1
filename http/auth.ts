/**
 * Bearer token verification with jose: HS256 with AUTH_JWT_SECRET (what Supabase issues), or asymmetric keys
 * from AUTH_JWKS_URL. Only the listed algorithms are accepted, so `alg: none` and HS/RS confusion fail.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { HttpError } from './errors.ts';

export interface AuthOptions {
  secret?: string | undefined;
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
}

export interface Principal {
  userId: string;
  email: string | undefined;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const unauthenticated = (reason: string) => new HttpError('UNAUTHENTICATED', reason);

export function createTokenVerifier(options: AuthOptions): (token: string) => Promise<Principal> {
  const jwks: JWTVerifyGetKey | undefined = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  const secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  if (!jwks && !secret) throw new Error('Either AUTH_JWT_SECRET or AUTH_JWKS_URL must be configured');
  const verifyOptions = {
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };

  return async (token) => {
    try {
      const { payload } = jwks
        ? await jwtVerify(token, jwks, { ...verifyOptions, algorithms: ASYMMETRIC })
        : await jwtVerify(token, secret!, { ...verifyOptions, algorithms: ['HS256'] });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200) {
        throw unauthenticated('The token has no subject (sub) claim');
      }
      return { userId: payload.sub, email: typeof payload.email === 'string' ? payload.email : undefined };
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw unauthenticated(reasonFor(error));
    }
  };
}

function reasonFor(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'The token is not valid yet (nbf is in the future)';
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
