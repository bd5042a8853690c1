import type { DomainEvent } from '../shared/decider.ts';

export type Role = 'admin' | 'client' | 'consumer';
export type UserStatus = 'pending' | 'approved' | 'suspended';

/**
 * Events of a user's stream (`user-<userId>`). Personal data never enters them: identities travel as keyed
 * hashes (HMAC of the normalised email or phone), the raw values live in a table that erasure deletes.
 */
export type UserEvent =
  | DomainEvent<
      'UserRegistered',
      {
        userId: string;
        role: Role;
        status: UserStatus;
        emailHash: string;
        phoneHash: string | null;
        businessName: string | null;
        registeredAt: string;
      }
    >
  | DomainEvent<'UserApproved', { userId: string; approvedBy: string; tenantId: string | null; approvedAt: string }>
  | DomainEvent<'UserSuspended', { userId: string; suspendedBy: string; reason: string | null; previousStatus: 'pending' | 'approved'; suspendedAt: string }>
  | DomainEvent<'UserReinstated', { userId: string; reinstatedBy: string; status: 'pending' | 'approved'; reinstatedAt: string }>
  | DomainEvent<'UserPhoneChanged', { userId: string; phoneHash: string | null; changedAt: string }>
  | DomainEvent<'UserPersonalDataErased', { userId: string; erasedBy: string; erasedAt: string }>
  /** The user's email (this hash) is proven theirs: only a verified identity matches purchases and claims points. */
  | DomainEvent<'UserEmailVerified', { userId: string; emailHash: string; via: EmailVerification; verifiedAt: string }>
  /** The user's current phone (this hash) is proven theirs; a later `UserPhoneChanged` makes the new phone unverified. */
  | DomainEvent<'UserPhoneVerified', { userId: string; phoneHash: string; via: PhoneVerification; verifiedAt: string }>;

/** `token`: the token's verified flag; `identity_provider`: the provider confirms every contact it issues sessions for. */
export type EmailVerification = 'token' | 'identity_provider';
/** ... or `code`: the user typed the one-time code Tally sent to the phone. */
export type PhoneVerification = 'token' | 'identity_provider' | 'code';

export type UserEventType = UserEvent['type'];

export type UserState =
  | { status: 'unregistered' }
  | {
      status: UserStatus;
      userId: string;
      role: Role;
      tenantId: string | null;
      businessName: string | null;
      emailHash: string;
      emailVerified: boolean;
      phoneHash: string | null;
      phoneVerified: boolean;
      registeredAt: string;
      /** What reinstating returns to. */
      statusBeforeSuspension: 'pending' | 'approved' | null;
      erased: boolean;
    };

export const initialUserState: UserState = { status: 'unregistered' };

export const userStream = (userId: string) => `user-${userId}`;

export function evolveUser(state: UserState, event: UserEvent): UserState {
  switch (event.type) {
    case 'UserRegistered':
      return {
        status: event.data.status,
        userId: event.data.userId,
        role: event.data.role,
        tenantId: null,
        businessName: event.data.businessName,
        emailHash: event.data.emailHash,
        emailVerified: false,
        phoneHash: event.data.phoneHash,
        phoneVerified: false,
        registeredAt: event.data.registeredAt,
        statusBeforeSuspension: null,
        erased: false,
      };
    case 'UserApproved':
      return state.status === 'unregistered' ? state : { ...state, status: 'approved', tenantId: event.data.tenantId ?? state.tenantId };
    case 'UserSuspended':
      return state.status === 'unregistered' ? state : { ...state, status: 'suspended', statusBeforeSuspension: event.data.previousStatus };
    case 'UserReinstated':
      return state.status === 'unregistered' ? state : { ...state, status: event.data.status, statusBeforeSuspension: null };
    case 'UserPhoneChanged':
      return state.status === 'unregistered' ? state : { ...state, phoneHash: event.data.phoneHash, phoneVerified: false };
    case 'UserPersonalDataErased':
      return state.status === 'unregistered' ? state : { ...state, erased: true, emailVerified: false, phoneVerified: false };
    case 'UserEmailVerified':
      return state.status === 'unregistered' || state.emailHash !== event.data.emailHash ? state : { ...state, emailVerified: true };
    case 'UserPhoneVerified':
      return state.status === 'unregistered' || state.phoneHash !== event.data.phoneHash ? state : { ...state, phoneVerified: true };
    default: {
      const unexpected: never = event;
      return unexpected;
    }
  }
}
