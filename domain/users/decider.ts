import { DomainError, NotFound } from '../shared/errors.ts';
import type { Decider } from '../shared/decider.ts';
import { userSnapshots } from './snapshots.ts';
import { evolveUser, initialUserState, userEvents, type Role, type UserEvent, type UserState } from './events.ts';

export type UserCommand =
  | {
      type: 'RegisterUser';
      userId: string;
      requestedRole: 'client' | 'consumer';
      /** The caller's email is listed in ADMIN_EMAILS. */
      isAdmin: boolean;
      emailHash: string;
      phoneHash: string | null;
      businessName: string | null;
      now: string;
    }
  | { type: 'ApproveUser'; userId: string; by: string; tenantIdForClient: string; now: string }
  | { type: 'SuspendUser'; userId: string; by: string; reason: string | null; now: string }
  | { type: 'ReinstateUser'; userId: string; by: string; now: string }
  | { type: 'ChangePhone'; userId: string; phoneHash: string | null; now: string }
  | { type: 'ErasePersonalData'; userId: string; by: string; now: string };

function decide(command: UserCommand, state: UserState): UserEvent[] {
  switch (command.type) {
    case 'RegisterUser': {
      // Registering twice returns the user as it is: the first registration decides the role.
      if (state.status !== 'unregistered') return [];
      const role: Role = command.isAdmin ? 'admin' : command.requestedRole;
      if (role === 'client' && !command.businessName) {
        throw new DomainError('VALIDATION_FAILED', 'businessName is required to register as a client (merchant)');
      }
      return [
        {
          type: 'UserRegistered',
          data: {
            userId: command.userId,
            role,
            status: role === 'client' ? 'pending' : 'approved',
            emailHash: command.emailHash,
            phoneHash: command.phoneHash,
            businessName: role === 'consumer' ? null : command.businessName,
            registeredAt: command.now,
          },
        },
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
      if (state.phoneHash === command.phoneHash) return [];
      return [{ type: 'UserPhoneChanged', data: { userId: command.userId, phoneHash: command.phoneHash, changedAt: command.now } }];
    }
    case 'ErasePersonalData': {
      if (state.status === 'unregistered') throw new NotFound('User');
      return [{ type: 'UserPersonalDataErased', data: { userId: command.userId, erasedBy: command.by, erasedAt: command.now } }];
    }
    default: {
      const unexpected: never = command;
      return unexpected;
    }
  }
}

export const userDecider: Decider<UserCommand, UserEvent, UserState> = {
  codec: userEvents,
  decide,
  evolve: evolveUser,
  initialState: initialUserState,
  snapshots: userSnapshots,
};
