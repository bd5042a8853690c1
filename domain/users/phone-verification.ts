/**
 * Tally's own proof of a phone: a 6-digit code sent by SMS, valid 10 minutes, at most 5 wrong tries per code
 * and 5 codes per user per hour. Only the code's keyed hash is stored. A correct code records
 * `UserPhoneVerified` (via `code`) on the user's stream, from which the phone matches purchases.
 */
import type { CommandPath } from '../shared/command-path.ts';
import { handleCommand } from '../shared/command-handler.ts';
import { DomainError } from '../shared/errors.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { IdentityHasher, PersonalDataStore, PhoneVerificationStore, Runtime } from '../ports/identity.ts';
import { SmsNotSent, type SmsSender } from '../ports/sms.ts';
import { userDecider } from './decider.ts';
import { ERASED_ACCOUNT, userStream, type UserState } from './events.ts';

export const CODE_TTL_MS = 10 * 60_000;
export const MAX_WRONG_CODES = 5;
export const MAX_CODES_PER_HOUR = 5;
/** Codes an hour to one phone number, whichever users ask: several accounts naming a number cannot flood it. */
export const MAX_CODES_PER_PHONE_PER_HOUR = 10;

export interface PhoneVerificationDependencies {
  store: EventStore;
  /** This process's command path (queue, recent states, snapshots, retries). */
  commands: CommandPath;
  personalData: PersonalDataStore;
  codes: PhoneVerificationStore;
  hasher: IdentityHasher;
  runtime: Runtime;
  /** undefined: no SMS provider is configured, codes cannot be sent. */
  sms: SmsSender | undefined;
  /** A uniformly random 6-digit code (from a CSPRNG). */
  newCode(): string;
  loadUser(userId: string): Promise<UserState>;
  /** The consumer who owns a verified identity now (read model: the last to verify it), if any. */
  identityOwner(identityHash: string): Promise<string | undefined>;
}

/** What the caller is told when the SMS provider did not send the code (the provider's answer is the error's cause, for the log). */
function notSent(error: unknown): unknown {
  if (!(error instanceof SmsNotSent)) return error;
  if (error.kind === 'rejected') {
    return new DomainError(
      'UNPROCESSABLE',
      'The text message could not be sent to your phone number: check that it is a mobile number, and correct it with PATCH /api/v1/me {"phone": "+1…"}',
      { field: 'phone' },
      { cause: error },
    );
  }
  return new DomainError('UNAVAILABLE', 'Text messages cannot be sent right now: retry in a few minutes', undefined, { cause: error });
}

/** The hour's codes are used up: the person's own, or those of the phone number whoever asked. */
function limitReached(limit: 'user' | 'phone'): DomainError {
  return limit === 'user'
    ? new DomainError('RATE_LIMITED', `At most ${MAX_CODES_PER_HOUR} codes an hour: use the last code sent, or retry later`, { retryAfterSeconds: 600 })
    : new DomainError('RATE_LIMITED', `At most ${MAX_CODES_PER_PHONE_PER_HOUR} codes an hour go to one phone number, whoever asks: retry later`, { retryAfterSeconds: 600 });
}

const requestNew = 'request a new code with POST /api/v1/me/phone/verification';
const PHONE_BEING_CHANGED =
  'Your phone number is being changed: request the code again in a moment; if this persists, send the number again with PATCH /api/v1/me {"phone": "+1…"}';

/** The pending code used up, and the verification refused: `why`, and how to get a new code. */
async function spentAndRefused(codes: PhoneVerificationStore, userId: string, why: string): Promise<never> {
  await codes.spend(userId);
  throw new DomainError('UNPROCESSABLE', `${why}: ${requestNew}`);
}

const mask = (phone: string) => `${phone.slice(0, 2)}${'•'.repeat(Math.max(0, phone.length - 6))}${phone.slice(-4)}`;

export function phoneVerificationService(deps: PhoneVerificationDependencies) {
  async function registered(userId: string) {
    const user = await deps.loadUser(userId);
    if (user.status === 'unregistered') throw new DomainError('NOT_FOUND', 'You are not registered yet: POST /api/v1/me/register');
    return user;
  }

  return {
    /** Sends a fresh code to the caller's current phone. */
    async send(userId: string): Promise<{ sentTo: string; expiresAt: string }> {
      const user = await registered(userId);
      if (user.erased) throw new DomainError('CONFLICT', ERASED_ACCOUNT);
      const phone = (await deps.personalData.get(userId))?.phone ?? null;
      if (!phone || !user.phoneHash) throw new DomainError('CONFLICT', 'You have no phone to verify: add one with PATCH /api/v1/me {"phone": "+1…"}');
      // Verified, and still its owner: nothing to do. Verified, but another account verified it since and let it go
      // (erased, or changed its phone): a new code makes this account its owner again.
      const reassert = user.phoneVerified && user.role === 'consumer' && (await deps.identityOwner(user.phoneHash)) !== userId;
      if (user.phoneVerified && !reassert) throw new DomainError('CONFLICT', 'Your phone is already verified');
      // The number texted must be the one the user's stream will verify: a phone change stores the number before its
      // event, and a code sent between the two went to the new number bound to the old one (whoever changed back
      // could then verify a number they never received a code on).
      if (deps.hasher.hashPhone(phone) !== user.phoneHash) {
        throw new DomainError('CONFLICT', PHONE_BEING_CHANGED);
      }
      // The route is open to every signed-in caller (a pending merchant may verify a phone); a suspended one sends nothing.
      if (user.status === 'suspended') throw new DomainError('USER_SUSPENDED', 'Your account is suspended');
      if (!deps.sms) throw new DomainError('CONFIGURATION_MISSING', 'Phone verification by SMS is not configured on this server (SMS_PROVIDER)');
      const now = deps.runtime.now();
      const code = deps.newCode();
      const expiresAt = new Date(now.getTime() + CODE_TTL_MS);
      const codeHash = deps.hasher.hashVerificationCode(userId, user.phoneHash, code);
      const issued = await deps.codes.issue(
        { userId, phoneHash: user.phoneHash, codeHash, expiresAt, attempts: 0 },
        { windowStart: new Date(now.getTime() - 3_600_000), maxSends: MAX_CODES_PER_HOUR, maxSendsPerPhone: MAX_CODES_PER_PHONE_PER_HOUR, now },
      );
      if (issued !== 'issued') throw limitReached(issued);
      try {
        await deps.sms.send(phone, `Your Tally verification code is ${code}. It expires in 10 minutes.`);
      } catch (error) {
        // Not delivered: the code cannot be used, and it does not count against the person's hourly limit.
        await deps.codes.withdraw(userId, codeHash);
        throw notSent(error);
      }
      return { sentTo: mask(phone), expiresAt: expiresAt.toISOString() };
    },

    /** Checks a code; a correct one verifies the phone it was sent to. */
    async verify(userId: string, code: string, metadata: EventMetadata) {
      const user = await registered(userId);
      // As for sending: a suspended account verifies nothing (a verified phone would claim the points held for it).
      if (user.status === 'suspended') throw new DomainError('USER_SUSPENDED', 'Your account is suspended');
      const pending = await deps.codes.get(userId);
      // None pending and the phone verified: a retry of a verification whose answer was lost, answered as the first.
      if (!pending && user.phoneVerified) return { position: undefined };
      if (!pending) throw new DomainError('UNPROCESSABLE', `No code is pending: ${requestNew}`);
      if (pending.expiresAt.getTime() <= deps.runtime.now().getTime()) return spentAndRefused(deps.codes, userId, 'The code has expired');
      const attempts = await deps.codes.countAttempt(userId);
      if (attempts > MAX_WRONG_CODES) return spentAndRefused(deps.codes, userId, 'Too many wrong codes');
      // Both sides are keyed HMACs of fixed length; a timing difference reveals nothing about the code.
      if (deps.hasher.hashVerificationCode(userId, pending.phoneHash, code) !== pending.codeHash) {
        const left = MAX_WRONG_CODES - attempts;
        throw new DomainError('UNPROCESSABLE', left > 0 ? `The code is wrong: ${left} attempt(s) left` : `The code is wrong: ${requestNew}`);
      }
      // Recorded, then spent: a failed append leaves the code to try again (spent first, the person was told "no code
      // is pending" and asked for another of their hourly few). Verifying twice is harmless.
      const result = await handleCommand(
        deps.store,
        userStream(userId),
        userDecider,
        { type: 'VerifyPhone', userId, phoneHash: pending.phoneHash, via: 'code', now: deps.runtime.now().toISOString(), reassert: true },
        { newId: deps.runtime.newId, metadata, path: deps.commands },
      );
      await deps.codes.spend(userId);
      return { position: result.position };
    },
  };
}

export type PhoneVerificationService = ReturnType<typeof phoneVerificationService>;
