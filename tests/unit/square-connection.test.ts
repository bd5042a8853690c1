import test from 'ava';
import { squareConnectionDecider, type SquareConnectionCommand } from '../../domain/connections/decider.ts';
import { claimStillInUse, type SquareConnectionEvent, type SquareConnectionState } from '../../domain/connections/events.ts';
import { merchantReservationDecider, type MerchantReservationEvent } from '../../domain/connections/merchant-reservation.ts';
import { refreshIsDue } from '../../domain/connections/refresh-policy.ts';
import { fold } from '../../domain/shared/decider.ts';
import { pollCursorFor, pollRecordFor, withLastPoll } from '../../domain/connections/poll-log.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const spec = deciderSpec(squareConnectionDecider);
const reservation = deciderSpec(merchantReservationDecider);
const now = '2026-03-01T10:00:00.000Z';
const later = '2026-03-05T10:00:00.000Z';
const T = 'tenant-1';
const M = 'MERCHANT-A';

type Authorize = Extract<SquareConnectionCommand, { type: 'AuthorizeConnection' }>;
const authorize = (merchantId = M, authorizationId = 'auth-1', merchantClaim = 1): Authorize => ({
  type: 'AuthorizeConnection',
  tenantId: T,
  merchantId,
  authorizationId,
  merchantClaim,
  businessName: 'Apple A Day',
  currency: 'USD',
  country: 'US',
  scopes: ['PAYMENTS_READ'],
  tokenExpiresAt: '2026-03-31T10:00:00Z',
  locations: [{ id: 'L1', name: 'Main', status: 'ACTIVE' }],
  by: 'user:u1',
  now,
});

function authorized(merchantId = M, authorizationId = 'auth-1', merchantClaim = 1, previousMerchantId: string | null = null): SquareConnectionEvent {
  const { type: _type, by, now: at, ...data } = authorize(merchantId, authorizationId, merchantClaim);
  return {
    type: 'SquareConnectionAuthorized',
    data: { ...data, previousMerchantId, authorizedBy: by, authorizedAt: at },
  };
}
const polled = (cursor: string): SquareConnectionEvent => ({
  type: 'SquarePaymentsPolled',
  data: { tenantId: T, merchantId: M, cursor, polledAt: later, summary: { seen: 1 } },
});
const revoked = (revokedBy: 'app' | 'merchant' | 'square' = 'app'): SquareConnectionEvent => ({
  type: 'SquareConnectionRevoked',
  data: { tenantId: T, merchantId: M, revokedBy, revokedAt: later, by: revokedBy === 'app' ? 'user:u1' : null },
});
const state = (...events: SquareConnectionEvent[]): SquareConnectionState => fold(squareConnectionDecider, events);

test('a first authorization connects the tenant; no previous merchant', (t) => {
  spec(t).given().when(authorize()).then([authorized()]);
  t.like(state(authorized()), { status: 'active', merchantId: M, authorizationId: 'auth-1', merchantClaims: { [M]: 1 } });
});

test('reconnecting to the same merchant keeps the poll cursor; to another merchant names the previous one and starts polling afresh', (t) => {
  spec(t).given(authorized(), polled('c-1')).when(authorize(M, 'auth-2', 2)).then([authorized(M, 'auth-2', 2)]);
  t.is((state(authorized(), polled('c-1'), authorized(M, 'auth-2', 2)) as { pollCursor: string | null }).pollCursor, 'c-1');

  spec(t).given(authorized(), polled('c-1')).when(authorize('MERCHANT-B', 'auth-2', 1)).then([authorized('MERCHANT-B', 'auth-2', 1, M)]);
  t.like(state(authorized(), polled('c-1'), authorized('MERCHANT-B', 'auth-2', 1, M)), { merchantId: 'MERCHANT-B', pollCursor: null, lastPolledAt: null });
});

test('a refresh is recorded only for the current authorization of an active connection', (t) => {
  const refresh = { type: 'RecordTokenRefresh', tenantId: T, authorizationId: 'auth-1', tokenExpiresAt: '2026-04-04T10:00:00Z', now: later } as const;
  spec(t)
    .given(authorized())
    .when(refresh)
    .then([{ type: 'SquareTokensRefreshed', data: { tenantId: T, merchantId: M, authorizationId: 'auth-1', tokenExpiresAt: '2026-04-04T10:00:00Z', refreshedAt: later } }]);
  spec(t).given(authorized(M, 'auth-2', 2)).when(refresh).thenNothing();
  spec(t).given(authorized(), revoked()).when(refresh).thenNothing();
});

test('a refresh Square refuses for good needs a reconnect; a transient failure keeps the connection active with its error', (t) => {
  const failure = (needsReconnect: boolean) =>
    ({ type: 'RecordRefreshFailure', tenantId: T, authorizationId: 'auth-1', code: needsReconnect ? 'UNAUTHORIZED' : 'TIMEOUT', detail: 'x', needsReconnect, now: later }) as const;
  const [gone] = squareConnectionDecider.decide(failure(true), state(authorized()));
  t.like(state(authorized(), gone!), { status: 'needs_reconnect', lastError: { code: 'UNAUTHORIZED', at: later } });
  const [blip] = squareConnectionDecider.decide(failure(false), state(authorized()));
  t.like(state(authorized(), blip!), { status: 'active', lastError: { code: 'TIMEOUT' } });
  spec(t).given(authorized(), gone!).when(failure(true)).thenNothing();
});

test('an undecryptable token is recorded once; a token that decrypts again makes the connection active', (t) => {
  const failed = { type: 'RecordDecryptionFailure', tenantId: T, keyId: 'k-old', now: later } as const;
  const event: SquareConnectionEvent = { type: 'SquareTokenDecryptionFailed', data: { tenantId: T, merchantId: M, keyId: 'k-old', detectedAt: later } };
  spec(t).given(authorized()).when(failed).then([event]);
  spec(t).given(authorized(), event).when(failed).thenNothing();
  t.like(state(authorized(), event), { status: 'token_undecryptable', undecryptableKeyId: 'k-old' });
  const recovery = { type: 'RecordDecryptionRecovery', tenantId: T, keyId: 'k-old', now: later } as const;
  const [recovered] = squareConnectionDecider.decide(recovery, state(authorized(), event));
  t.like(state(authorized(), event, recovered!), { status: 'active', lastError: null });
  spec(t).given(authorized()).when(recovery).thenNothing();
});

test('revoking: unknown connection is not found; revoking twice records once; a webhook about another merchant changes nothing', (t) => {
  const revoke = (merchantId: string | null, revokedBy: 'app' | 'merchant' = 'app') =>
    ({ type: 'RevokeConnection', tenantId: T, revokedBy, merchantId, by: revokedBy === 'app' ? 'user:u1' : null, now: later }) as const;
  spec(t).given().when(revoke(null)).thenThrows('NOT_FOUND');
  spec(t).given(authorized()).when(revoke(null)).then([revoked()]);
  spec(t).given(authorized(), revoked()).when(revoke(null)).thenNothing();
  spec(t).given(authorized()).when(revoke('MERCHANT-B', 'merchant')).thenNothing();
  spec(t).given(authorized()).when(revoke(M, 'merchant')).then([revoked('merchant')]);
});

test('a revocation Square timed before the connection was authorized (the merchant revoked, then connected again; the webhook came late) revokes nothing', (t) => {
  const before = new Date(Date.parse(now) - 60_000).toISOString();
  const late = { type: 'RevokeConnection', tenantId: T, revokedBy: 'merchant', merchantId: M, by: null, now: before } as const;
  spec(t).given(authorized()).when(late).thenNothing();
  // Square's times may carry other precision than ours: compared as instants, not as text.
  spec(t).given(authorized()).when({ ...late, now: '2026-03-01T09:59:59Z' }).thenNothing();
  spec(t).given(authorized()).when({ ...late, now: later }).then([revoked('merchant')]);
  // The disconnect button names no merchant: it is about the connection in force, whenever.
  spec(t).given(authorized()).when({ ...late, revokedBy: 'app', merchantId: null, by: 'user:u1' }).then([
    { type: 'SquareConnectionRevoked', data: { tenantId: T, merchantId: M, revokedBy: 'app', revokedAt: before, by: 'user:u1' } },
  ]);
});

test('a poll needs a connection; one that ends after a revocation is still recorded, for the merchant polled', (t) => {
  const poll = { cursor: 'c-1', polledAt: later, summary: { seen: 1 } };
  const error = t.throws(() => pollRecordFor(state(), poll)) as { code?: string };
  t.is(error.code, 'CONNECTION_UNAVAILABLE');
  t.deepEqual(pollRecordFor(state(authorized(), revoked()), poll), { tenantId: T, merchantId: M, cursor: 'c-1', polledAt: later, summary: { seen: 1 } });
});

test('the next poll resumes from the last record for the same merchant; another merchant starts afresh; old records on the connection stream still count', (t) => {
  const record = (merchantId: string, cursor: string) => ({ tenantId: T, merchantId, cursor, polledAt: later, summary: {} });
  const active = state(authorized()) as Exclude<SquareConnectionState, { status: 'not_connected' }>;
  t.is(pollCursorFor(active, record(M, 'c-2')), 'c-2');
  t.is(pollCursorFor(active, record('MERCHANT-B', 'c-b')), null);
  t.like(withLastPoll(active, record(M, 'c-2')), { pollCursor: 'c-2', lastPolledAt: later });
  t.like(withLastPoll(active, record('MERCHANT-B', 'c-b')), { pollCursor: null, lastPolledAt: null }, 'the previous merchant’s poll is not this connection’s');
  t.is(pollCursorFor(active, undefined), null, 'never polled');
  const before = { tenantId: T, merchantId: M, cursor: 'c-old', polledAt: '2026-02-01T10:00:00.000Z', summary: {} };
  t.like(withLastPoll(active, before), { pollCursor: null, lastPolledAt: null }, 'a poll of the same merchant before this connection (A, B, then A again) is not its');
  t.like(withLastPoll(active, before, { merchantId: M, polledAt: '2026-02-02T10:00:00.000Z' }), { lastPolledAt: null }, 'nor a quiet poll from then');
  t.like(withLastPoll(active, before, { merchantId: M, polledAt: later }), { lastPolledAt: later });
  const legacy = state(authorized(), polled('c-legacy')) as Exclude<SquareConnectionState, { status: 'not_connected' }>;
  t.is(pollCursorFor(legacy, undefined), 'c-legacy', 'a deployment that recorded polls on the connection stream resumes where it was');
  t.is(pollCursorFor(legacy, record(M, 'c-3')), 'c-3', 'the poll stream, once written, wins');
});

// --- The merchant reservation ---------------------------------------------------------------------------------

const claimed = (tenantId: string, claim: number): MerchantReservationEvent => ({
  type: 'SquareMerchantClaimed',
  data: { merchantId: M, tenantId, claim, claimedAt: now },
});
const claim = (tenantId: string) => ({ type: 'ClaimMerchant', merchantId: M, tenantId, now }) as const;
const release = (tenantId: string, onlyClaim: number | null) => ({ type: 'ReleaseMerchant', merchantId: M, tenantId, onlyClaim, reason: 'revoked', now }) as const;

test('a merchant is claimed by one tenant at a time; the holder claims again with the next number', (t) => {
  reservation(t).given().when(claim('A')).then([claimed('A', 1)]);
  reservation(t).given(claimed('A', 1)).when(claim('A')).then([claimed('A', 2)]);
  reservation(t).given(claimed('A', 1)).when(claim('B')).thenThrows('MERCHANT_ALREADY_CONNECTED', /MERCHANT-A is connected to another workspace/);
});

test('only the holder releases, and a conditional release does nothing once the holder claimed again', (t) => {
  const released = { type: 'SquareMerchantReleased', data: { merchantId: M, tenantId: 'A', claim: 2, reason: 'revoked', releasedAt: now } } as const;
  reservation(t).given(claimed('A', 1), claimed('A', 2)).when(release('A', 2)).then([released]);
  reservation(t).given(claimed('A', 1), claimed('A', 2)).when(release('A', 1)).thenNothing();
  reservation(t).given(claimed('A', 1)).when(release('B', null)).thenNothing();
  reservation(t).given(claimed('A', 1), { ...released, data: { ...released.data, claim: 1 } }).when(claim('B')).then([claimed('B', 2)]);
});

test('a claim stays in use while a connect flow may be using it; it is stale once its authorization ended or moved on', (t) => {
  const claim = (n: number) => ({ claim: n, claimedAt: now });
  const soon = '2026-03-01T10:09:59.000Z'; // 9 min 59 s after the claim
  t.true(claimStillInUse(state(), M, claim(1), soon), 'first connect in progress');
  t.true(claimStillInUse(state(authorized()), M, claim(1), later), 'connected with it');
  t.true(claimStillInUse(state(authorized(), revoked()), M, claim(2), soon), 'a newer claim: a reconnect in progress');
  t.false(claimStillInUse(state(authorized(), revoked()), M, claim(1), soon), 'revoked, release lost');
  t.false(claimStillInUse(state(authorized(), authorized('MERCHANT-B', 'auth-2', 1, M)), M, claim(1), soon), 'moved to another merchant, release lost');
  // A claim the stream never recorded: the flow that made it failed between the claim and the record.
  t.false(claimStillInUse(state(), M, claim(1), '2026-03-01T10:10:00.000Z'), 'a first connect that failed, ten minutes on');
  t.false(claimStillInUse(state(authorized(), revoked()), M, claim(2), later), 'a failed reconnect to the same merchant, then a disconnect');
  t.true(claimStillInUse(state(authorized()), M, claim(2), later), 'a failed reconnect to the same merchant: the connection still uses it');
});

test('a token is due for refresh when older than 7 days or expiring within 8', (t) => {
  const connection = (authorizedAt: string, tokenExpiresAt: string) => ({ ...state(authorized()), authorizedAt, tokenExpiresAt }) as Extract<SquareConnectionState, { status: 'active' }>;
  const at = new Date('2026-03-10T00:00:00Z');
  t.false(refreshIsDue(connection('2026-03-04T00:00:00Z', '2026-04-03T00:00:00Z'), at), '6 days old, 24 days left');
  t.true(refreshIsDue(connection('2026-03-02T23:00:00Z', '2026-04-01T23:00:00Z'), at), 'just over 7 days old');
  t.true(refreshIsDue(connection('2026-03-09T00:00:00Z', '2026-03-17T23:00:00Z'), at), 'expires in under 8 days');
  t.false(refreshIsDue({ ...connection('2026-02-01T00:00:00Z', '2026-04-08T00:00:00Z'), lastRefreshedAt: '2026-03-09T00:00:00Z' }, at), 'refreshed yesterday');
});

test('Square refusing the grant turns an active connection to needs_reconnect, once, and only for that authorization', (t) => {
  const refuse = (authorizationId = 'auth-1'): SquareConnectionCommand => ({
    type: 'RecordAccessRefused',
    tenantId: T,
    authorizationId,
    operation: 'payments.list',
    code: 'ACCESS_TOKEN_REVOKED',
    detail: 'The access token has been revoked.',
    now: later,
  });
  const refused: SquareConnectionEvent = {
    type: 'SquareAccessRefused',
    data: { tenantId: T, merchantId: M, authorizationId: 'auth-1', operation: 'payments.list', code: 'ACCESS_TOKEN_REVOKED', detail: 'The access token has been revoked.', refusedAt: later },
  };
  spec(t).given(authorized()).when(refuse()).then([refused]);
  t.like(state(authorized(), refused), { status: 'needs_reconnect', lastError: { code: 'ACCESS_TOKEN_REVOKED', at: later } });
  spec(t).given(authorized(), refused).when(refuse()).thenNothing();
  spec(t).given(authorized(), authorized(M, 'auth-2', 2)).when(refuse('auth-1')).thenNothing();
  spec(t).given(authorized(), revoked()).when(refuse()).thenNothing();
  t.like(state(authorized(), refused, authorized(M, 'auth-2', 2)), { status: 'active', lastError: null }, 'a reconnect makes it active again');
});
