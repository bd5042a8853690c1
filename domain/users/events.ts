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
  | DomainEvent<'UserPersonalDataErased', { userId: string; erasedBy: string; erasedAt: string }>;

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
      phoneHash: string | null;
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
        phoneHash: event.data.phoneHash,
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
      return state.status === 'unregistered' ? state : { ...state, phoneHash: event.data.phoneHash };
    case 'UserPersonalDataErased':
      return state.status === 'unregistered' ? state : { ...state, erased: true };
    default: {
      const unexpected: never = event;
      return unexpected;
    }
  }
}
