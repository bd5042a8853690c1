import test from 'ava';
import { userDecider } from '../../domain/users/decider.ts';
import type { UserEvent } from '../../domain/users/events.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const spec = deciderSpec(userDecider);
const now = '2026-11-26T10:00:00.000Z';
const register = (requestedRole: 'client' | 'consumer', isAdmin = false) =>
  ({ type: 'RegisterUser', userId: 'u1', requestedRole, isAdmin, emailHash: 'email:h', emailVerifiedVia: null, phoneHash: null, phoneVerifiedVia: null, suspendedAsUser: null, businessName: requestedRole === 'client' ? 'Cafe' : null, now }) as const;
const registered = (role: 'client' | 'consumer' | 'admin', status: 'pending' | 'approved'): Extract<UserEvent, { type: 'UserRegistered' }> => ({
  type: 'UserRegistered',
  data: { userId: 'u1', role, status, emailHash: 'email:h', phoneHash: null, businessName: role === 'consumer' ? null : 'Cafe', registeredAt: now },
});
const approved: UserEvent = { type: 'UserApproved', data: { userId: 'u1', approvedBy: 'a1', tenantId: 't1', approvedAt: now } };

test('a consumer is approved on registration; a client starts pending; an admin email registers as admin', (t) => {
  spec(t).given().when(register('consumer')).then([registered('consumer', 'approved')]);
  spec(t).given().when(register('client')).then([registered('client', 'pending')]);
  spec(t).given().when(register('consumer', true)).then([{ ...registered('admin', 'approved'), data: { ...registered('admin', 'approved').data, businessName: null } }]);
});

test('registering again changes nothing', (t) => {
  spec(t).given(registered('consumer', 'approved')).when(register('client')).thenNothing();
});

test('a client must give a business name', (t) => {
  spec(t).given().when({ ...register('client'), businessName: null }).thenThrows('VALIDATION_FAILED', /businessName/);
});

test('approving a pending client gives it the tenant; approving again is a no-op; unknown users are not found', (t) => {
  const approve = { type: 'ApproveUser', userId: 'u1', by: 'a1', tenantIdForClient: 't1', now } as const;
  spec(t).given(registered('client', 'pending')).when(approve).then([approved]);
  spec(t).given(registered('client', 'pending'), approved).when(approve).thenNothing();
  spec(t).given().when(approve).thenThrows('NOT_FOUND');
});

test('suspension remembers the status to reinstate; a suspended user is not approved, but reinstated', (t) => {
  const suspended: UserEvent = { type: 'UserSuspended', data: { userId: 'u1', suspendedBy: 'a1', reason: null, previousStatus: 'pending', suspendedAt: now } };
  spec(t).given(registered('client', 'pending')).when({ type: 'SuspendUser', userId: 'u1', by: 'a1', reason: null, now }).then([suspended]);
  spec(t).given(registered('client', 'pending'), suspended).when({ type: 'ApproveUser', userId: 'u1', by: 'a1', tenantIdForClient: 't1', now }).thenThrows('CONFLICT', /reinstate/);
  spec(t)
    .given(registered('client', 'pending'), suspended)
    .when({ type: 'ReinstateUser', userId: 'u1', by: 'a1', now })
    .then([{ type: 'UserReinstated', data: { userId: 'u1', reinstatedBy: 'a1', status: 'pending', reinstatedAt: now } }]);
  spec(t).given(registered('consumer', 'approved')).when({ type: 'ReinstateUser', userId: 'u1', by: 'a1', now }).thenNothing();
  spec(t).given(registered('admin', 'approved')).when({ type: 'SuspendUser', userId: 'u1', by: 'u1', reason: null, now }).thenThrows('CONFLICT', /themselves/);
});

test('a verified email and phone are recorded at registration; a suspended twin suspends the new user too', (t) => {
  const verifiedEmail: UserEvent = { type: 'UserEmailVerified', data: { userId: 'u1', emailHash: 'email:h', via: 'token', verifiedAt: now } };
  const verifiedPhone: UserEvent = { type: 'UserPhoneVerified', data: { userId: 'u1', phoneHash: 'phone:p', via: 'token', verifiedAt: now } };
  const withPhone: UserEvent = { ...registered('consumer', 'approved'), data: { ...registered('consumer', 'approved').data, phoneHash: 'phone:p' } };
  spec(t)
    .given()
    .when({ ...register('consumer'), phoneHash: 'phone:p', emailVerifiedVia: 'token', phoneVerifiedVia: 'token' })
    .then([withPhone, verifiedEmail, verifiedPhone]);
  spec(t)
    .given()
    .when({ ...register('consumer'), suspendedAsUser: 'u0' })
    .then([
      registered('consumer', 'approved'),
      { type: 'UserSuspended', data: { userId: 'u1', suspendedBy: 'system:suspension', reason: 'the same email is suspended as user u0', previousStatus: 'approved', suspendedAt: now } },
    ]);
});

test('a phone change makes the phone unverified until proven; a code for a replaced phone is refused', (t) => {
  const changed: UserEvent = { type: 'UserPhoneChanged', data: { userId: 'u1', phoneHash: 'phone:p', changedAt: now } };
  const verified: UserEvent = { type: 'UserPhoneVerified', data: { userId: 'u1', phoneHash: 'phone:p', via: 'code', verifiedAt: now } };
  const verify = { type: 'VerifyPhone', userId: 'u1', phoneHash: 'phone:p', via: 'code', now } as const;
  spec(t).given(registered('consumer', 'approved'), changed).when(verify).then([verified]);
  spec(t).given(registered('consumer', 'approved'), changed, verified).when(verify).thenNothing();
  // Verified, but another account verified it since and let it go: verifying again is recorded (the owner again).
  spec(t).given(registered('consumer', 'approved'), changed, verified).when({ ...verify, reassert: true }).then([verified]);
  const other: UserEvent = { type: 'UserPhoneChanged', data: { userId: 'u1', phoneHash: 'phone:q', changedAt: now } };
  spec(t).given(registered('consumer', 'approved'), changed, verified, other).when(verify).thenThrows('CONFLICT', /request a new code/);
  // Changing back to the same phone after a change needs proof again.
  spec(t)
    .given(registered('consumer', 'approved'), changed, verified, other)
    .when({ type: 'ChangePhone', userId: 'u1', phoneHash: 'phone:p', verifiedVia: null, now })
    .then([changed]);
});

test('a suspended account verifies nothing: a phone it changes to is stored unverified, a token vouching for its email records nothing', (t) => {
  const suspended: UserEvent = { type: 'UserSuspended', data: { userId: 'u1', suspendedBy: 'a1', reason: null, previousStatus: 'approved', suspendedAt: now } };
  spec(t)
    .given(registered('consumer', 'approved'), suspended)
    .when({ type: 'ChangePhone', userId: 'u1', phoneHash: 'phone:p', verifiedVia: 'token', now })
    .then([{ type: 'UserPhoneChanged', data: { userId: 'u1', phoneHash: 'phone:p', changedAt: now } }]);
  spec(t).given(registered('consumer', 'approved'), suspended).when({ type: 'VerifyEmail', userId: 'u1', emailHash: 'email:h', via: 'token', now, reassert: false }).thenNothing();
  spec(t)
    .given(registered('consumer', 'approved'), suspended, { type: 'UserPhoneChanged', data: { userId: 'u1', phoneHash: 'phone:p', changedAt: now } })
    .when({ type: 'VerifyPhone', userId: 'u1', phoneHash: 'phone:p', via: 'code', now })
    .thenNothing();
  // Approved, the same token verifies.
  spec(t)
    .given(registered('consumer', 'approved'))
    .when({ type: 'ChangePhone', userId: 'u1', phoneHash: 'phone:p', verifiedVia: 'token', now })
    .then([
      { type: 'UserPhoneChanged', data: { userId: 'u1', phoneHash: 'phone:p', changedAt: now } },
      { type: 'UserPhoneVerified', data: { userId: 'u1', phoneHash: 'phone:p', via: 'token', verifiedAt: now } },
    ]);
});

test('the email follows what the identity provider now vouches for: another one is changed to and verified, the same one verified if it is not', (t) => {
  const changeEmail = (emailHash: string, verifiedVia: 'token' | null = 'token') => ({ type: 'ChangeEmail', userId: 'u1', emailHash, verifiedVia, now }) as const;
  const verifiedH: UserEvent = { type: 'UserEmailVerified', data: { userId: 'u1', emailHash: 'email:h', via: 'token', verifiedAt: now } };
  const changedToB: UserEvent = { type: 'UserEmailChanged', data: { userId: 'u1', emailHash: 'email:b', changedAt: now } };
  const verifiedB: UserEvent = { type: 'UserEmailVerified', data: { userId: 'u1', emailHash: 'email:b', via: 'token', verifiedAt: now } };
  spec(t).given(registered('consumer', 'approved'), verifiedH).when(changeEmail('email:b')).then([changedToB, verifiedB]);
  spec(t).given(registered('consumer', 'approved')).when(changeEmail('email:h')).then([verifiedH]);
  spec(t).given(registered('consumer', 'approved'), verifiedH).when(changeEmail('email:h')).thenNothing();
  // Once changed, the new email is the account's: vouched for again, nothing more; the former one is a change back.
  spec(t).given(registered('consumer', 'approved'), verifiedH, changedToB, verifiedB).when(changeEmail('email:b')).thenNothing();
  spec(t)
    .given(registered('consumer', 'approved'), verifiedH, changedToB, verifiedB)
    .when(changeEmail('email:h'))
    .then([{ type: 'UserEmailChanged', data: { userId: 'u1', emailHash: 'email:h', changedAt: now } }, verifiedH]);
  // Changed but not verified (it was suspended then): vouched for once approved again, it is verified.
  spec(t).given(registered('consumer', 'approved'), changedToB).when(changeEmail('email:b')).then([verifiedB]);
  spec(t).given().when(changeEmail('email:b')).thenThrows('NOT_FOUND');
});

test('a suspended account changes its email unverified; an erased one changes nothing', (t) => {
  const suspended: UserEvent = { type: 'UserSuspended', data: { userId: 'u1', suspendedBy: 'a1', reason: null, previousStatus: 'approved', suspendedAt: now } };
  const erased: UserEvent = { type: 'UserPersonalDataErased', data: { userId: 'u1', erasedBy: 'a1', erasedAt: now } };
  spec(t)
    .given(registered('consumer', 'approved'), suspended)
    .when({ type: 'ChangeEmail', userId: 'u1', emailHash: 'email:b', verifiedVia: 'token', now })
    .then([{ type: 'UserEmailChanged', data: { userId: 'u1', emailHash: 'email:b', changedAt: now } }]);
  spec(t).given(registered('consumer', 'approved'), suspended).when({ type: 'ChangeEmail', userId: 'u1', emailHash: 'email:h', verifiedVia: 'token', now }).thenNothing();
  spec(t).given(registered('consumer', 'approved'), erased).when({ type: 'ChangeEmail', userId: 'u1', emailHash: 'email:b', verifiedVia: 'token', now }).thenNothing();
});
