/** The event types of a user's stream (`user-<userId>`), declared once; `events.ts` builds the family's codec from this module. */
import { z } from 'zod';
import { EventType } from '../shared/codec.ts';

const role = z.enum(['admin', 'client', 'consumer']);
const userStatus = z.enum(['pending', 'approved', 'suspended']);
export type Role = z.output<typeof role>;
export type UserStatus = z.output<typeof userStatus>;

/**
 * Events of a user's stream (`user-<userId>`). Personal data never enters them: identities travel as keyed
 * hashes (HMAC of the normalised email or phone), the raw values live in a table that erasure deletes.
 */
export const userRegistered = EventType.define(
  'UserRegistered',
  z.object({
    userId: z.string(),
    role,
    status: userStatus,
    emailHash: z.string(),
    phoneHash: z.string().nullable(),
    businessName: z.string().nullable(),
    registeredAt: z.string(),
  }),
);
export const userApproved = EventType.define(
  'UserApproved',
  z.object({ userId: z.string(), approvedBy: z.string(), tenantId: z.string().nullable(), approvedAt: z.string() }),
);
export const userSuspended = EventType.define(
  'UserSuspended',
  z.object({ userId: z.string(), suspendedBy: z.string(), reason: z.string().nullable(), previousStatus: z.enum(['pending', 'approved']), suspendedAt: z.string() }),
);
export const userReinstated = EventType.define(
  'UserReinstated',
  z.object({ userId: z.string(), reinstatedBy: z.string(), status: z.enum(['pending', 'approved']), reinstatedAt: z.string() }),
);
export const userPhoneChanged = EventType.define('UserPhoneChanged', z.object({ userId: z.string(), phoneHash: z.string().nullable(), changedAt: z.string() }));
/**
 * The user's email changed to this hash: their identity provider now vouches for another email (registering again
 * with it). The new email is unverified until a `UserEmailVerified` of it follows; the former one stops matching.
 */
export const userEmailChanged = EventType.define('UserEmailChanged', z.object({ userId: z.string(), emailHash: z.string(), changedAt: z.string() }));
export const userPersonalDataErased = EventType.define('UserPersonalDataErased', z.object({ userId: z.string(), erasedBy: z.string(), erasedAt: z.string() }));

/** `token`: the token's verified flag; `identity_provider`: the provider confirms every contact it issues sessions for. */
const emailVerification = z.enum(['token', 'identity_provider']);
/** ... or `code`: the user typed the one-time code Tally sent to the phone. */
const phoneVerification = z.enum(['token', 'identity_provider', 'code']);
export type EmailVerification = z.output<typeof emailVerification>;
export type PhoneVerification = z.output<typeof phoneVerification>;

/** The user's email (this hash) is proven theirs: only a verified identity matches purchases and claims points. */
export const userEmailVerified = EventType.define(
  'UserEmailVerified',
  z.object({ userId: z.string(), emailHash: z.string(), via: emailVerification, verifiedAt: z.string() }),
);
/** The user's current phone (this hash) is proven theirs; a later `UserPhoneChanged` makes the new phone unverified. */
export const userPhoneVerified = EventType.define(
  'UserPhoneVerified',
  z.object({ userId: z.string(), phoneHash: z.string(), via: phoneVerification, verifiedAt: z.string() }),
);
