/**
 * Account use cases: registration, approval (with workspace provisioning), suspension, erasure.
 * They reach the world only through ports; every command goes through the one command handler.
 */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import { DomainError, NotFound } from '../shared/errors.ts';
import type { EventMetadata, EventStore, Position } from '../ports/event-store.ts';
import type { IdentityHasher, PersonalDataStore, Runtime } from '../ports/identity.ts';
import { normaliseEmail, normalisePhone } from '../identity/normalise.ts';
import { workspaceDecider, workspaceStream } from '../workspaces/workspace.ts';
import { userDecider } from './decider.ts';
import { userStream, type Role, type UserState, type UserStatus } from './events.ts';

export interface AccountsDependencies {
  store: EventStore;
  personalData: PersonalDataStore;
  hasher: IdentityHasher;
  runtime: Runtime;
  /** This process's command path (queue, recent states, snapshots, retries). */
  commands: CommandPath;
  /** Lower-cased emails that register as admins. */
  adminEmails: readonly string[];
  /** The tenant id a client's workspace gets: derived from the user id, so provisioning is idempotent. */
  tenantIdFor(userId: string): string;
}

export interface UserView {
  id: string;
  email: string | null;
  phone: string | null;
  role: Role;
  status: UserStatus;
  tenantId: string | null;
  businessName: string | null;
  registeredAt: string;
}

export interface Registration {
  role: 'client' | 'consumer';
  businessName?: string | undefined;
  phone?: string | undefined;
}

export type RegisteredUser = Exclude<UserState, { status: 'unregistered' }>;

export function accountsService(deps: AccountsDependencies) {
  const { store, personalData, hasher, runtime } = deps;
  const context = (metadata: EventMetadata) => ({ newId: runtime.newId, metadata, path: deps.commands });
  const now = () => runtime.now().toISOString();

  async function view(state: RegisteredUser): Promise<UserView> {
    const pii = await personalData.get(state.userId);
    return {
      id: state.userId,
      email: pii?.email ?? null,
      phone: pii?.phone ?? null,
      role: state.role,
      status: state.status,
      tenantId: state.tenantId,
      businessName: state.businessName,
      registeredAt: state.registeredAt,
    };
  }

  async function load(userId: string): Promise<UserState> {
    return (await loadState(store, userStream(userId), userDecider, deps.commands)).state;
  }

  async function requireUser(userId: string): Promise<RegisteredUser> {
    const state = await load(userId);
    if (state.status === 'unregistered') throw new NotFound('User');
    return state;
  }

  return {
    load,
    view,

    /** Registers the caller once; a repeated call returns the user as first registered. */
    async register(
      caller: { userId: string; email: string | undefined },
      input: Registration,
      metadata: EventMetadata,
    ): Promise<{ user: UserView; created: boolean; position: Position | undefined }> {
      const existing = await load(caller.userId);
      if (existing.status !== 'unregistered') return { user: await view(existing), created: false, position: undefined };
      if (!caller.email) throw new DomainError('VALIDATION_FAILED', 'The token has no email claim: an email is needed to register');
      const email = normaliseEmail(caller.email);
      const phone = input.phone ? normalisePhone(input.phone) : null;
      // Personal data first: if the append below never happens, a retry finds the same row to overwrite.
      await personalData.save({ userId: caller.userId, email, phone });
      const result = await handleCommand(
        store,
        userStream(caller.userId),
        userDecider,
        {
          type: 'RegisterUser',
          userId: caller.userId,
          requestedRole: input.role,
          isAdmin: deps.adminEmails.includes(email),
          emailHash: hasher.hashEmail(email),
          phoneHash: phone ? hasher.hashPhone(phone) : null,
          businessName: input.businessName?.trim() || null,
          now: now(),
        },
        context(metadata),
      );
      if (result.state.status === 'unregistered') throw new Error('registration produced no user');
      return { user: await view(result.state), created: result.events.length > 0, position: result.position };
    },

    /** Approves a pending user; a client gets its workspace first. Approving twice is harmless. */
    async approve(adminId: string, userId: string, metadata: EventMetadata): Promise<{ user: UserView; position: Position | undefined }> {
      const user = await requireUser(userId);
      let position: Position | undefined;
      if (user.role === 'client' && user.status === 'pending') {
        const tenantId = deps.tenantIdFor(userId);
        const provisioned = await handleCommand(
          store,
          workspaceStream(tenantId),
          workspaceDecider,
          { type: 'ProvisionWorkspace', tenantId, ownerUserId: userId, businessName: user.businessName ?? userId, by: adminId, now: now() },
          context(metadata),
        );
        position = provisioned.position;
      }
      const result = await handleCommand(
        store,
        userStream(userId),
        userDecider,
        { type: 'ApproveUser', userId, by: adminId, tenantIdForClient: deps.tenantIdFor(userId), now: now() },
        context(metadata),
      );
      return { user: await view(result.state as RegisteredUser), position: result.position ?? position };
    },

    async suspend(adminId: string, userId: string, reason: string | null, metadata: EventMetadata) {
      const result = await handleCommand(store, userStream(userId), userDecider, { type: 'SuspendUser', userId, by: adminId, reason, now: now() }, context(metadata));
      return { user: await view(result.state as RegisteredUser), position: result.position };
    },

    async reinstate(adminId: string, userId: string, metadata: EventMetadata) {
      const result = await handleCommand(store, userStream(userId), userDecider, { type: 'ReinstateUser', userId, by: adminId, now: now() }, context(metadata));
      return { user: await view(result.state as RegisteredUser), position: result.position };
    },

    /** Adds or changes the caller's phone (a later identity match may then claim held points). */
    async changePhone(userId: string, phone: string | null, metadata: EventMetadata) {
      const user = await requireUser(userId);
      const normalised = phone ? normalisePhone(phone) : null;
      const pii = await personalData.get(userId);
      await personalData.save({ userId, email: pii?.email ?? null, phone: normalised });
      const result = await handleCommand(
        store,
        userStream(userId),
        userDecider,
        { type: 'ChangePhone', userId, phoneHash: normalised ? hasher.hashPhone(normalised) : null, now: now() },
        context(metadata),
      );
      return { user: await view((result.state.status === 'unregistered' ? user : result.state) as RegisteredUser), position: result.position };
    },

    /** Deletes the person's contact details; their history stays, holding only keyed hashes. */
    async erasePersonalData(adminId: string, userId: string, metadata: EventMetadata) {
      await requireUser(userId);
      await personalData.erase(userId);
      const result = await handleCommand(
        store,
        userStream(userId),
        userDecider,
        { type: 'ErasePersonalData', userId, by: adminId, now: now() },
        context(metadata),
      );
      return { position: result.position };
    },
  };
}

export type AccountsService = ReturnType<typeof accountsService>;
