import { unreachable } from '../shared/exhaustive.ts';
import { DomainError, NotFound } from '../shared/errors.ts';
import type { Decider } from '../shared/decider.ts';
import { userSnapshots } from './snapshots.ts';
import { evolveUser, initialUserState, userEvents, type EmailVerification, type PhoneVerification, type Role, type UserEvent, type UserState } from './events.ts';

export type UserCommand =
  | {
      type: 'RegisterUser';
      userId: string;
      requestedRole: 'client' | 'consumer';
      /** The caller's verified email is listed in ADMIN_EMAILS and bound to this user (see admin-binding.ts). */
      isAdmin: boolean;
      emailHash: string;
      emailVerifiedVia: EmailVerification | null;
      phoneHash: string | null;
      phoneVerifiedVia: PhoneVerification | null;
      businessName: string | null;
      /** Another user with the same email is suspended: the suspension holds for this one too. */
      suspendedAsUser: string | null;
      now: string;
    }
  | { type: 'ApproveUser'; userId: string; by: string; tenantIdForClient: string; now: string }
  | { type: 'SuspendUser'; userId: string; by: string; reason: string | null; now: string }
  | { type: 'ReinstateUser'; userId: string; by: string; now: string }
  | { type: 'ChangePhone'; userId: string; phoneHash: string | null; verifiedVia: PhoneVerification | null; now: string }
  /** The identity provider now vouches for this email (`verifiedVia`): the account's email follows it. */
  | { type: 'ChangeEmail'; userId: string; emailHash: string; verifiedVia: EmailVerification | null; now: string }
  /**
   * `reassert`: the user verified it before, but another account verified it since and that account let it go
   * (erased, or changed its phone): verifying it again makes this user its owner again (the last to verify owns).
   */
  | { type: 'VerifyEmail'; userId: string; emailHash: string; via: EmailVerification; now: string; reassert?: boolean }
  | { type: 'VerifyPhone'; userId: string; phoneHash: string; via: PhoneVerification; now: string; reassert?: boolean }
  | { type: 'ErasePersonalData'; userId: string; by: string; now: string };

// Over 80 lines because it is one switch over every command of a user, each case short and the switch exhaustive.
function decide(command: UserCommand, state: UserState): UserEvent[] {
  switch (command.type) {
    case 'RegisterUser': {
      // Registering twice returns the user as it is: the first registration decides the role.
      if (state.status !== 'unregistered') return [];
      const role: Role = command.isAdmin ? 'admin' : command.requestedRole;
      if (role === 'client' && !command.businessName) {
        throw new DomainError('VALIDATION_FAILED', 'businessName is required to register as a client (merchant)');
      }
      const status: 'pending' | 'approved' = role === 'client' ? 'pending' : 'approved';
      const { userId, now } = command;
      return [
        {
          type: 'UserRegistered',
          data: {
            userId,
            role,
            status,
            emailHash: command.emailHash,
            phoneHash: command.phoneHash,
            businessName: role === 'consumer' ? null : command.businessName,
            registeredAt: now,
          },
        },
        ...(command.emailVerifiedVia
          ? [{ type: 'UserEmailVerified' as const, data: { userId, emailHash: command.emailHash, via: command.emailVerifiedVia, verifiedAt: now } }]
          : []),
        ...(command.phoneHash && command.phoneVerifiedVia
          ? [{ type: 'UserPhoneVerified' as const, data: { userId, phoneHash: command.phoneHash, via: command.phoneVerifiedVia, verifiedAt: now } }]
          : []),
        ...(command.suspendedAsUser
          ? [
              {
                type: 'UserSuspended' as const,
                data: { userId, suspendedBy: 'system:suspension', reason: `the same email is suspended as user ${command.suspendedAsUser}`, previousStatus: status, suspendedAt: now },
              },
            ]
          : []),
      ];
    }
    case 'ApproveUser': {
      if (state.status === 'unregistered') throw new NotFound('User');
      if (state.status === 'approved') return [];
      if (state.status === 'suspended') {
        throw new DomainError('CONFLICT', 'The user is suspended: reinstate them instead of approving');
      }
      return [
        {
          type: 'UserApproved',
          data: {
            userId: command.userId,
            approvedBy: command.by,
            tenantId: state.role === 'client' ? command.tenantIdForClient : null,
            approvedAt: command.now,
          },
        },
      ];
    }
    case 'SuspendUser': {
      if (state.status === 'unregistered') throw new NotFound('User');
      if (state.status === 'suspended') return [];
      if (command.by === command.userId) throw new DomainError('CONFLICT', 'Admins cannot suspend themselves');
      return [
        {
          type: 'UserSuspended',
          data: { userId: command.userId, suspendedBy: command.by, reason: command.reason, previousStatus: state.status, suspendedAt: command.now },
        },
      ];
    }
    case 'ReinstateUser': {
      if (state.status === 'unregistered') throw new NotFound('User');
      if (state.status !== 'suspended') return [];
      return [
        {
          type: 'UserReinstated',
          data: { userId: command.userId, reinstatedBy: command.by, status: state.statusBeforeSuspension ?? 'approved', reinstatedAt: command.now },
        },
      ];
    }
    case 'ChangePhone': {
      if (state.status === 'unregistered') throw new NotFound('User');
      // An erased account changes nothing (the service refuses it first, saying why).
      if (state.erased) return [];
      const verify = (phoneHash: string, via: PhoneVerification): UserEvent[] => [
        { type: 'UserPhoneVerified', data: { userId: command.userId, phoneHash, via, verifiedAt: command.now } },
      ];
      // A suspended account cannot verify (README, Security): its new phone is stored unverified.
      const via = state.status === 'suspended' ? undefined : command.verifiedVia;
      if (state.phoneHash === command.phoneHash) {
        return command.phoneHash && via && !state.phoneVerified ? verify(command.phoneHash, via) : [];
      }
      return [
        { type: 'UserPhoneChanged', data: { userId: command.userId, phoneHash: command.phoneHash, changedAt: command.now } },
        ...(command.phoneHash && via ? verify(command.phoneHash, via) : []),
      ];
    }
    case 'ChangeEmail': {
      if (state.status === 'unregistered') throw new NotFound('User');
      // An erased account changes nothing; a suspended one cannot verify (README, Security): its new email is stored unverified.
      if (state.erased) return [];
      const via = state.status === 'suspended' ? null : command.verifiedVia;
      const verify: UserEvent[] = via ? [{ type: 'UserEmailVerified', data: { userId: command.userId, emailHash: command.emailHash, via, verifiedAt: command.now } }] : [];
      if (state.emailHash === command.emailHash) return state.emailVerified ? [] : verify;
      return [{ type: 'UserEmailChanged', data: { userId: command.userId, emailHash: command.emailHash, changedAt: command.now } }, ...verify];
    }
    case 'VerifyEmail': {
      if (state.status === 'unregistered') throw new NotFound('User');
      if (state.erased || state.status === 'suspended' || state.emailHash !== command.emailHash || (state.emailVerified && !command.reassert)) return [];
      return [{ type: 'UserEmailVerified', data: { userId: command.userId, emailHash: command.emailHash, via: command.via, verifiedAt: command.now } }];
    }
    case 'VerifyPhone': {
      if (state.status === 'unregistered') throw new NotFound('User');
      if (state.phoneHash !== command.phoneHash) throw new DomainError('CONFLICT', 'Your phone changed after the code was sent: request a new code');
      if (state.erased || state.status === 'suspended' || (state.phoneVerified && !command.reassert)) return [];
      return [{ type: 'UserPhoneVerified', data: { userId: command.userId, phoneHash: command.phoneHash, via: command.via, verifiedAt: command.now } }];
    }
    case 'ErasePersonalData': {
      if (state.status === 'unregistered') throw new NotFound('User');
      return [{ type: 'UserPersonalDataErased', data: { userId: command.userId, erasedBy: command.by, erasedAt: command.now } }];
    }
    default:
      return unreachable(command);
  }
}

export const userDecider: Decider<UserCommand, UserEvent, UserState> = {
  codec: userEvents,
  decide,
  evolve: evolveUser,
  initialState: initialUserState,
  snapshots: userSnapshots,
};
