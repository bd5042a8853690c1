/**
 * OAuth states (domain/ports/oauth-state.ts): a compact JWT (HS256) carrying the tenant, the caller and a
 * random nonce, valid for 10 minutes. The signing key is derived with HKDF from ENCRYPTION_KEY (the previous
 * key still verifies during a rotation). Single use: consuming inserts the nonce into `oauth_states`, and a
 * second insert of the same nonce means the state was replayed.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { z } from 'zod';
import {
  InvalidOAuthState,
  OAUTH_STATE_LIFETIME_SECONDS,
  OAUTH_TICKET_LIFETIME_SECONDS,
  type InvalidStateReason,
  type OAuthStateClaims,
  type OAuthStates,
} from '../../domain/ports/oauth-state.ts';
import { derivedKey, type Keyring } from '../crypto/keys.ts';

const PURPOSE = 'tally/square-oauth-state/v1';
const ISSUER = 'tally';
const AUDIENCE = 'square-oauth-state';
const TICKET_AUDIENCE = 'square-oauth-ticket';

const claimsSchema = z.object({
  tid: z.string().min(1),
  act: z.string().min(1),
  jti: z.string().min(16),
  exp: z.number().int(),
});
const stateSchema = claimsSchema.extend({ bnd: z.string().min(16) });
/** A ticket bound to a browser (since 2026-12-07): one issued before, without `bnd`, is refused as `not_this_browser`. */
const ticketSchema = claimsSchema.extend({ bnd: z.string().min(16).optional() });

/** The state carries this hash of the browser's nonce: the state travels in URLs, the nonce only in the cookie. */
const bindingOf = (nonce: string) => createHash('sha256').update(`tally-oauth-browser\0${nonce}`).digest('base64url');
const sameBinding = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

function reasonFor(error: unknown): InvalidStateReason {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof errors.JOSEError) return 'malformed';
  throw error;
}

export function postgresOAuthStates(pool: pg.Pool, keys: Keyring): OAuthStates {
  const signingKey = derivedKey(keys.current, PURPOSE);
  const verificationKeys = [signingKey, ...(keys.previous ? [derivedKey(keys.previous, PURPOSE)] : [])];

  async function verify(state: string, now: Date, audience = AUDIENCE): Promise<JWTPayload> {
    let reason: InvalidStateReason = 'bad_signature';
    for (const key of verificationKeys) {
      try {
        const { payload } = await jwtVerify(state, key, { algorithms: ['HS256'], issuer: ISSUER, audience, currentDate: now });
        return payload;
      } catch (error) {
        reason = reasonFor(error);
        // Only a signature made with another key is worth trying the next key for.
        if (reason !== 'bad_signature') break;
      }
    }
    throw new InvalidOAuthState(reason);
  }

  /** Single use: the nonce's first insert wins; a second means a replay. */
  async function spend(jti: string, tenantId: string, exp: number, now: Date): Promise<void> {
    const inserted = await pool.query(
      `INSERT INTO oauth_states (nonce, tenant_id, expires_at, used_at) VALUES ($1, $2, to_timestamp($3), $4) ON CONFLICT (nonce) DO NOTHING`,
      [jti, tenantId, exp, now],
    );
    if (inserted.rowCount !== 1) throw new InvalidOAuthState('reused');
    // Used nonces only matter while their state could still verify; keep a day for investigations.
    await pool.query(`DELETE FROM oauth_states WHERE expires_at < $1::timestamptz - interval '1 day'`, [now]);
  }

  const sign = (payload: Record<string, string>, audience: string, now: Date, lifetime: number) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setJti(randomBytes(18).toString('base64url'))
      .setIssuedAt(seconds(now))
      .setExpirationTime(seconds(now) + lifetime)
      .sign(signingKey);

  return {
    issueTicket: ({ tenantId, actor }, browserNonce, now) =>
      sign({ tid: tenantId, act: actor, bnd: bindingOf(browserNonce) }, TICKET_AUDIENCE, now, OAUTH_TICKET_LIFETIME_SECONDS),

    async redeemTicket(ticket, browserNonce, now) {
      if (!ticket) throw new InvalidOAuthState('missing');
      const parsed = ticketSchema.safeParse(await verify(ticket, now, TICKET_AUDIENCE));
      if (!parsed.success) throw new InvalidOAuthState('malformed');
      const { tid, act, jti, exp, bnd } = parsed.data;
      // Checked before the ticket is spent: a browser the link was passed to cannot burn it for its owner.
      if (!bnd || !browserNonce || !sameBinding(bindingOf(browserNonce), bnd)) throw new InvalidOAuthState('not_this_browser');
      await spend(`ticket:${jti}`, tid, exp, now);
      return { tenantId: tid, actor: act };
    },

    issue: ({ tenantId, actor }, browserNonce, now) => sign({ tid: tenantId, act: actor, bnd: bindingOf(browserNonce) }, AUDIENCE, now, OAUTH_STATE_LIFETIME_SECONDS),

    async consume(state, browserNonce, now): Promise<OAuthStateClaims> {
      if (!state) throw new InvalidOAuthState('missing');
      const parsed = stateSchema.safeParse(await verify(state, now));
      if (!parsed.success) throw new InvalidOAuthState('malformed');
      const { tid, act, jti, exp, bnd } = parsed.data;
      // Checked before the state is spent: a stranger's browser cannot burn the rightful browser's state.
      if (!browserNonce || !sameBinding(bindingOf(browserNonce), bnd)) throw new InvalidOAuthState('not_this_browser');
      await spend(jti, tid, exp, now);
      return { tenantId: tid, actor: act };
    },
  };
}
