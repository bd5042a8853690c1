/**
 * Account use cases: registration, approval (with workspace provisioning), suspension, erasure.
 * They reach the world only through ports; every command goes through the one command handler.
 */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import { DomainError, NotFound } from '../shared/errors.ts';
import type { EventMetadata, EventStore, Position } from '../ports/event-store.ts';
import type { IdentityHasher, PersonalDataStore, Runtime, StoredMessages } from '../ports/identity.ts';
import { isPlainAsciiEmail, normaliseEmail, normalisePhone, tryNormalisePhone } from '../identity/normalise.ts';
import { adminBindingDecider, adminBindingStream } from './admin-binding.ts';
import { workspaceDecider, workspaceStream } from '../workspaces/workspace.ts';
import { userDecider } from './decider.ts';
import { ERASED_ACCOUNT, SUSPENDED_ADMIN, userStream, type Role, type UserState, type UserStatus } from './events.ts';

export interface AccountsDependencies {
  store: EventStore;
  personalData: PersonalDataStore;
  hasher: IdentityHasher;
  runtime: Runtime;
  /** This process's command path (queue, recent states, snapshots, retries). */
  commands: CommandPath;
  /** Lower-cased emails that register as admins (when verified; see `register`). */
  adminEmails: readonly string[];
  /** Raw webhook bodies: erasure empties those naming the person. */
  storedMessages: StoredMessages;
  /** The admin registered with this email hash, if any (read model): admins from before the binding stream existed. */
  adminWithEmail(emailHash: string): Promise<string | undefined>;
  /** A suspended user registered with this email hash, if any (read model). */
  suspendedUserWithEmail(emailHash: string): Promise<string | undefined>;
  /** The tenant id a client's workspace gets: derived from the user id, so provisioning is idempotent. */
  tenantIdFor(userId: string): string;
  /** The consumer who owns a verified identity now (read model: the last to verify it), if any. */
  identityOwner(identityHash: string): Promise<string | undefined>;
  /**
   * Runs `work` while no other suspension of an admin runs, on this instance or any other sharing the database
   * (a PostgreSQL advisory lock): the second of two admins suspending each other decides after the first is recorded.
   */
  oneAdminSuspensionAtATime<T>(work: () => Promise<T>): Promise<T>;
}

/** The actor of the operator's `npm run reinstate` (cli/reinstate.ts), in the event and the audit trail. */
export const OPERATOR_ACTOR = 'system:operator';

/**
 * Reinstates a suspended user to the status they had (nothing when they are not suspended; `NotFound` when there is
 * no such user): an admin's request, or the operator's command when no admin is left to do it.
 */
export function reinstateUser(
  deps: { store: EventStore; runtime: Runtime; commands: CommandPath },
  userId: string,
  by: string,
  metadata: EventMetadata,
) {
  const command = { type: 'ReinstateUser', userId, by, now: deps.runtime.now().toISOString() } as const;
  return handleCommand(deps.store, userStream(userId), userDecider, command, { newId: deps.runtime.newId, metadata, path: deps.commands });
}

/** What the bearer token says about the caller's contact details (http/auth.ts builds it). */
export interface TokenIdentity {
  userId: string;
  email: string | undefined;
  /** The token vouches that `email` belongs to the caller. */
  emailVerified: boolean;
  /** The phone claim, as the token gives it (not normalised). */
  phone: string | undefined;
  /** The token vouches that `phone` belongs to the caller. */
  phoneVerified: boolean;
  /** What vouches: a verified flag in the token, or the provider's setting (`providerConfirmsContacts`). */
  verifiedBy: 'token' | 'identity_provider';
}

export interface UserView {
  id: string;
  email: string | null;
  emailVerified: boolean;
  phone: string | null;
  phoneVerified: boolean;
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
  /** ISO 3166 alpha-2: the region `phone` is read in when it has no `+` (the US when not given). */
  country?: string | undefined;
}

export type RegisteredUser = Exclude<UserState, { status: 'unregistered' }>;

// Over 80 lines because it is a factory: the account operations it returns share its dependencies, and each is short.
export function accountsService(deps: AccountsDependencies) {
  const { store, personalData, hasher, runtime } = deps;
  const context = (metadata: EventMetadata) => ({ newId: runtime.newId, metadata, path: deps.commands });
  const now = () => runtime.now().toISOString();

  async function view(state: RegisteredUser): Promise<UserView> {
    const pii = await personalData.get(state.userId);
    return {
      id: state.userId,
      email: pii?.email ?? null,
      emailVerified: state.emailVerified,
      phone: pii?.phone ?? null,
      phoneVerified: state.phoneVerified,
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

  /** The phone the token vouches for, when it is the one given: then it needs no code. */
  const tokenVouchesFor = (caller: TokenIdentity, phone: string | null, country?: string) =>
    phone !== null && caller.phoneVerified && tryNormalisePhone(caller.phone, country) === phone ? caller.verifiedBy : null;

  /**
   * Whether this caller registers as an admin: the email is in ADMIN_EMAILS, verified, typed as plain ASCII,
   * and bound to this user (the first `sub` to claim it keeps it). Otherwise the reason, for the log.
   */
  async function adminGrant(caller: TokenIdentity, email: string, emailHash: string, metadata: EventMetadata): Promise<{ isAdmin: boolean; refused?: string }> {
    if (!deps.adminEmails.includes(email)) return { isAdmin: false };
    if (!caller.emailVerified) return { isAdmin: false, refused: 'admin email not verified by the identity provider' };
    if (!isPlainAsciiEmail(caller.email ?? '')) return { isAdmin: false, refused: 'admin email not given as plain ASCII' };
    // An admin registered before admin emails were bound holds the email as if bound.
    const earlier = await deps.adminWithEmail(emailHash);
    if (earlier && earlier !== caller.userId) return { isAdmin: false, refused: 'admin email already bound to another user' };
    const binding = await handleCommand(
      store,
      adminBindingStream(emailHash),
      adminBindingDecider,
      { type: 'BindAdminEmail', emailHash, userId: caller.userId, now: now() },
      context(metadata),
    );
    if (binding.state.status === 'bound' && binding.state.userId !== caller.userId) {
      return { isAdmin: false, refused: 'admin email already bound to another user' };
    }
    return { isAdmin: true };
  }

  /**
   * The identity provider now vouches for another email than the account's: the account's email follows it (the
   * former one kept for erasure to search), unless another account owns that email now (registration takes only an
   * identity nobody owns), or is suspended with it. An erased account changes nothing.
   */
  async function changeEmail(user: RegisteredUser, email: string, emailHash: string, via: TokenIdentity['verifiedBy'], metadata: EventMetadata) {
    if (user.erased) return undefined;
    const owner = await deps.identityOwner(emailHash);
    if (owner !== undefined && owner !== user.userId) return undefined;
    const suspended = await deps.suspendedUserWithEmail(emailHash);
    if (suspended !== undefined && suspended !== user.userId) return undefined;
    // The email alone: writing back the phone read before would undo a phone change that ran in between.
    await personalData.saveEmail(user.userId, email);
    const command = { type: 'ChangeEmail', userId: user.userId, emailHash, verifiedVia: via, now: now() } as const;
    return handleCommand(store, userStream(user.userId), userDecider, command, context(metadata));
  }

  /** A registered caller whose token now vouches for their email or phone gets it recorded (another email: see `changeEmail`). */
  async function recordTokenVerifications(caller: TokenIdentity, user: RegisteredUser, metadata: EventMetadata) {
    let state: UserState = user;
    let position: Position | undefined;
    // Verified already, and nobody owns it now (the account that verified it since was erased, or changed its phone):
    // the token vouching for it again makes this consumer its owner again. Another account still holding it keeps it
    // (two accounts a provider vouches for with one email would otherwise take it from each other at every sign-in).
    const lostOwnership = async (hash: string) => user.role === 'consumer' && (await deps.identityOwner(hash)) === undefined;
    const email = caller.email ? normaliseEmail(caller.email) : undefined;
    const emailHash = email ? hasher.hashEmail(email) : undefined;
    if (email && emailHash && caller.emailVerified && emailHash !== user.emailHash) {
      const changed = await changeEmail(user, email, emailHash, caller.verifiedBy, metadata);
      state = changed?.state ?? state;
      position = changed?.position ?? position;
    } else if (emailHash && caller.emailVerified && (!user.emailVerified || (user.emailHash === emailHash && (await lostOwnership(emailHash))))) {
      const command = { type: 'VerifyEmail', userId: user.userId, emailHash, via: caller.verifiedBy, now: now(), reassert: user.emailVerified } as const;
      const result = await handleCommand(store, userStream(user.userId), userDecider, command, context(metadata));
      state = result.state;
      position = result.position ?? position;
    }
    const pii = await personalData.get(user.userId);
    const via = tokenVouchesFor(caller, pii?.phone ?? null);
    const phoneHash = pii?.phone ? hasher.hashPhone(pii.phone) : undefined;
    if (via && phoneHash && (!user.phoneVerified || (user.phoneHash === phoneHash && (await lostOwnership(phoneHash))))) {
      const command = { type: 'VerifyPhone', userId: user.userId, phoneHash, via, now: now(), reassert: user.phoneVerified } as const;
      const result = await handleCommand(store, userStream(user.userId), userDecider, command, context(metadata));
      state = result.state;
      position = result.position ?? position;
    }
    return { state: state as RegisteredUser, position };
  }

  return {
    load,
    view,

    /**
     * Registers the caller once; a repeated call returns the user as first registered, recording any
     * verification the token now brings (an email the provider has since confirmed).
     */
    async register(
      caller: TokenIdentity,
      input: Registration,
      metadata: EventMetadata,
    ): Promise<{ user: UserView; created: boolean; position: Position | undefined; adminRefused?: string }> {
      const existing = await load(caller.userId);
      if (existing.status !== 'unregistered') {
        const updated = await recordTokenVerifications(caller, existing, metadata);
        return { user: await view(updated.state), created: false, position: updated.position };
      }
      if (!caller.email) throw new DomainError('VALIDATION_FAILED', 'The token has no email claim: an email is needed to register');
      const email = normaliseEmail(caller.email);
      const emailHash = hasher.hashEmail(email);
      const phone = input.phone ? normalisePhone(input.phone, input.country) : null;
      const admin = await adminGrant(caller, email, emailHash, metadata);
      // Personal data first, so the user is never seen without it; if the append fails, the row goes again
      // (a registration that did not happen leaves no contact details behind).
      await personalData.save({ userId: caller.userId, email, phone });
      const undoPersonalData = async (error: unknown): Promise<never> => {
        if ((await load(caller.userId)).status === 'unregistered') await personalData.erase(caller.userId);
        throw error;
      };
      const result = await handleCommand(
        store,
        userStream(caller.userId),
        userDecider,
        {
          type: 'RegisterUser',
          userId: caller.userId,
          requestedRole: input.role,
          isAdmin: admin.isAdmin,
          emailHash,
          emailVerifiedVia: caller.emailVerified ? caller.verifiedBy : null,
          phoneHash: phone ? hasher.hashPhone(phone) : null,
          phoneVerifiedVia: tokenVouchesFor(caller, phone, input.country),
          businessName: input.businessName?.trim() || null,
          suspendedAsUser: (await deps.suspendedUserWithEmail(emailHash)) ?? null,
          now: now(),
        },
        context(metadata),
      ).catch(undoPersonalData);
      if (result.state.status === 'unregistered') throw new Error('registration produced no user');
      return {
        user: await view(result.state),
        created: result.events.length > 0,
        position: result.position,
        ...(admin.refused ? { adminRefused: admin.refused } : {}),
      };
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
      const target = await requireUser(userId);
      const decide = () => handleCommand(store, userStream(userId), userDecider, { type: 'SuspendUser', userId, by: adminId, reason, now: now() }, context(metadata));
      // Two admins suspending each other at once would leave no admin: an admin's suspension is decided one at a time
      // (every instance), by an admin read from its stream under the lock (not the caller view, which may lag), so
      // the second sees the first and is refused. The acting admin stays approved: one admin always remains.
      const result = target.role !== 'admin'
        ? await decide()
        : await deps.oneAdminSuspensionAtATime(async () => {
            const actor = (await loadState(store, userStream(adminId), userDecider)).state;
            if (actor.status === 'suspended') throw new DomainError('USER_SUSPENDED', SUSPENDED_ADMIN);
            return decide();
          });
      return { user: await view(result.state as RegisteredUser), position: result.position };
    },

    async reinstate(adminId: string, userId: string, metadata: EventMetadata) {
      const result = await reinstateUser({ store, runtime, commands: deps.commands }, userId, adminId, metadata);
      return { user: await view(result.state as RegisteredUser), position: result.position };
    },

    /**
     * Adds or changes the caller's phone. It is stored unverified, unless the token vouches for this very
     * phone; only once verified does it match purchases and claim held points.
     */
    async changePhone(caller: TokenIdentity, phone: string | null, metadata: EventMetadata, country?: string) {
      const userId = caller.userId;
      const user = await requireUser(userId);
      // Before the phone is stored: an erased account owns no identity any more (the read side skips it), so a phone
      // given it would be stored, even verified, and match nothing.
      if (user.erased) throw new DomainError('CONFLICT', ERASED_ACCOUNT);
      const normalised = phone ? normalisePhone(phone, country) : null;
      // The phone alone: writing back the email read before would undo an erasure that ran in between.
      await personalData.savePhone(userId, normalised);
      const result = await handleCommand(
        store,
        userStream(userId),
        userDecider,
        { type: 'ChangePhone', userId, phoneHash: normalised ? hasher.hashPhone(normalised) : null, verifiedVia: tokenVouchesFor(caller, normalised, country), now: now() },
        context(metadata),
      );
      return { user: await view((result.state.status === 'unregistered' ? user : result.state) as RegisteredUser), position: result.position };
    },

    /**
     * Deletes the person's contact details and empties the stored webhooks naming them; their history stays,
     * holding only keyed hashes, and matches nothing any more (the projections drop their identities).
     */
    async erasePersonalData(adminId: string, userId: string, metadata: EventMetadata) {
      await requireUser(userId);
      // The stored webhooks first: once the contacts are gone, nothing says what to look for.
      // Every email and phone the person had, not only the current ones: they may have earned through one they changed since.
      const contacts = await personalData.contactsEver(userId);
      if (contacts) await deps.storedMessages.eraseMentions(contacts);
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
