import { unreachable } from '../shared/exhaustive.ts';
import { familyCodec, type EventsOf } from '../shared/codec.ts';
import * as userEventTypes from './event-types.ts';
import type { Role, UserStatus } from './event-types.ts';

export * from './event-types.ts';

export const userEvents = familyCodec({ stream: 'user-<userId>', writtenBy: 'userDecider' }, userEventTypes);

export type UserEvent = EventsOf<typeof userEvents>;

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

/** What a suspended admin is told: how to get back in (README, Security). */
export const SUSPENDED_ADMIN = 'Your account is suspended: ask another administrator to reinstate you, or the operator to run `npm run reinstate -- <your user id>`';

export const userStream = (userId: string) => `user-${userId}`;

/** Why an erased account takes no new phone (or email): it owns no identity any more, so it would match nothing. */
export const ERASED_ACCOUNT =
  "This account's personal data was erased: it keeps its history but takes no new phone or email, and earns nothing by them (purchases are matched to accounts by verified email or phone)";

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
    case 'UserEmailChanged':
      return state.status === 'unregistered' ? state : { ...state, emailHash: event.data.emailHash, emailVerified: false };
    case 'UserPersonalDataErased':
      return state.status === 'unregistered' ? state : { ...state, erased: true, emailVerified: false, phoneVerified: false };
    case 'UserEmailVerified':
      return state.status === 'unregistered' || state.emailHash !== event.data.emailHash ? state : { ...state, emailVerified: true };
    case 'UserPhoneVerified':
      return state.status === 'unregistered' || state.phoneHash !== event.data.phoneHash ? state : { ...state, phoneVerified: true };
    default:
      return unreachable(event);
  }
}
