/** OAuth states against PostgreSQL: signed, bound to the tenant, valid 10 minutes, accepted once. */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { derivedKey, keyring } from '../../adapters/crypto/keys.ts';
import { postgresOAuthStates } from '../../adapters/oauth/state.ts';
import { InvalidOAuthState } from '../../domain/ports/oauth-state.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const KEY = randomBytes(32).toString('base64');
const OTHER_KEY = randomBytes(32).toString('base64');
const claims = { tenantId: 'tenant-1', actor: 'user:u1' };
/** The browser's nonce (its cookie) the state is bound to. */
const NONCE = randomBytes(32).toString('base64url');
const minutes = (n: number, from = new Date()) => new Date(from.getTime() + n * 60_000);

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

/** A token in the adapter's form (issuer, audience, id, lifetime), signed here with `key`: what a forger could make. */
const signedByHand = (payload: Record<string, string>, audience: string, lifetime: string, key: Uint8Array) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).setIssuer('tally').setAudience(audience).setJti(randomBytes(18).toString('base64url')).setIssuedAt().setExpirationTime(lifetime).sign(key);

async function rejection(t: import('ava').ExecutionContext, promise: Promise<unknown>): Promise<string | undefined> {
  const error = await t.throwsAsync(promise, { instanceOf: InvalidOAuthState });
  return error?.reason;
}

test('a state carries the tenant and the caller, expires 10 minutes after issue, and is accepted once', async (t) => {
  const states = postgresOAuthStates(database.pool, keyring(KEY));
  const issuedAt = new Date();
  const state = await states.issue(claims, NONCE, issuedAt);
  const payload = decodeJwt(state);
  t.is(payload.exp! - payload.iat!, 600);
  t.is(payload.tid, 'tenant-1');
  t.deepEqual(await states.consume(state, NONCE, minutes(9, issuedAt)), claims);
  t.is(await rejection(t, states.consume(state, NONCE, minutes(9, issuedAt))), 'reused');
});

test('an expired, forged, tampered or missing state is refused with its reason', async (t) => {
  const states = postgresOAuthStates(database.pool, keyring(KEY));
  const issuedAt = new Date();
  t.is(await rejection(t, states.consume(await states.issue(claims, NONCE, issuedAt), NONCE, minutes(11, issuedAt))), 'expired');

  const forged = await postgresOAuthStates(database.pool, keyring(OTHER_KEY)).issue(claims, NONCE, issuedAt);
  t.is(await rejection(t, states.consume(forged, NONCE, issuedAt)), 'bad_signature');

  const [header, , signature] = (await states.issue(claims, NONCE, issuedAt)).split('.');
  const otherTenant = Buffer.from(JSON.stringify({ ...decodeJwt(forged), tid: 'tenant-2' })).toString('base64url');
  t.is(await rejection(t, states.consume(`${header}.${otherTenant}.${signature}`, NONCE, issuedAt)), 'bad_signature');

  // Signed with the raw ENCRYPTION_KEY instead of the derived key: the derivation is what makes it ours.
  const rawKeySigned = await signedByHand({ tid: 'tenant-1', act: 'user:u1' }, 'square-oauth-state', '10m', Buffer.from(KEY, 'base64'));
  // (no `bnd` either: a state bound to no browser is malformed even when signed right)
  t.is(await rejection(t, states.consume(rawKeySigned, NONCE, issuedAt)), 'bad_signature');

  t.is(await rejection(t, states.consume('not-a-state', NONCE, issuedAt)), 'malformed');
  t.is(await rejection(t, states.consume(undefined, NONCE, issuedAt)), 'missing');
});

test('a state issued before a key rotation is still accepted with the previous key', async (t) => {
  const issuedAt = new Date();
  const state = await postgresOAuthStates(database.pool, keyring(KEY)).issue(claims, NONCE, issuedAt);
  const rotated = postgresOAuthStates(database.pool, keyring(OTHER_KEY, KEY));
  t.deepEqual(await rotated.consume(state, NONCE, minutes(1, issuedAt)), claims);
});

test('a state, and a connect ticket, are accepted only from the browser holding their nonce; a stranger cannot spend them', async (t) => {
  const states = postgresOAuthStates(database.pool, keyring(KEY));
  const issuedAt = new Date();
  const kinds = [
    { kind: 'state', make: () => states.issue(claims, NONCE, issuedAt), use: (token: string, nonce: string | undefined) => states.consume(token, nonce, issuedAt) },
    { kind: 'ticket', make: () => states.issueTicket(claims, NONCE, issuedAt), use: (token: string, nonce: string | undefined) => states.redeemTicket(token, nonce, issuedAt) },
  ];
  for (const { kind, make, use } of kinds) {
    const token = await make();
    t.false(JSON.stringify(decodeJwt(token)).includes(NONCE), `the ${kind} carries a hash of the nonce, never the nonce`);
    t.is(await rejection(t, use(token, undefined)), 'not_this_browser');
    t.is(await rejection(t, use(token, randomBytes(32).toString('base64url'))), 'not_this_browser');
    t.deepEqual(await use(token, NONCE), claims, `the ${kind} is still usable by its own browser`);
  }
});

test('a connect ticket is single use, expires after 5 minutes, and is no state', async (t) => {
  const states = postgresOAuthStates(database.pool, keyring(KEY));
  const issuedAt = new Date();
  const ticket = await states.issueTicket(claims, NONCE, issuedAt);
  t.is(await rejection(t, states.consume(ticket, NONCE, issuedAt)), 'malformed');
  t.deepEqual(await states.redeemTicket(ticket, NONCE, issuedAt), claims);
  t.is(await rejection(t, states.redeemTicket(ticket, NONCE, issuedAt)), 'reused');
  t.is(await rejection(t, states.redeemTicket(await states.issueTicket(claims, NONCE, issuedAt), NONCE, minutes(6, issuedAt))), 'expired');
  t.is(await rejection(t, states.redeemTicket(await states.issue(claims, NONCE, issuedAt), NONCE, issuedAt)), 'malformed');
});

test('a connect ticket of the form issued before tickets were bound to a browser (no `bnd`) is refused whatever the browser', async (t) => {
  const states = postgresOAuthStates(database.pool, keyring(KEY));
  const unbound = await signedByHand({ tid: claims.tenantId, act: claims.actor }, 'square-oauth-ticket', '5m', derivedKey(keyring(KEY).current, 'tally/square-oauth-state/v1'));
  t.is(await rejection(t, states.redeemTicket(unbound, NONCE, new Date())), 'not_this_browser');
});
