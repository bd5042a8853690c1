/**
 * Keyed hashing of normalised identities (HMAC with IDENTITY_HASH_KEY). Events carry these hashes, so
 * identities can be matched without the log ever holding an email or a phone number.
 */
export interface IdentityHasher {
  hashEmail(normalisedEmail: string): string;
  hashPhone(normalisedPhone: string): string;
  /** A one-time code, keyed and bound to the user and the phone it was sent to: stored instead of the code. */
  hashVerificationCode(userId: string, phoneHash: string, code: string): string;
}

/** A pending one-time phone code (hashed), per user: a new code replaces the previous one. */
export interface PendingPhoneCode {
  userId: string;
  phoneHash: string;
  codeHash: string;
  expiresAt: Date;
  /** Wrong codes entered against this code so far. */
  attempts: number;
}

export interface PhoneVerificationStore {
  /**
   * Stores a new code for the user unless `maxSends` codes were already issued to them since `windowStart`
   * (answers `user`), or `maxSendsPerPhone` to the same phone across every user (answers `phone`); nothing
   * changes then. Answers `issued` otherwise.
   */
  issue(code: PendingPhoneCode, limits: { windowStart: Date; maxSends: number; maxSendsPerPhone: number; now: Date }): Promise<'issued' | 'user' | 'phone'>;
  get(userId: string): Promise<PendingPhoneCode | undefined>;
  /** Counts one attempt atomically and answers the count including it (concurrent guesses each count). */
  countAttempt(userId: string): Promise<number>;
  /** The code is spent (used, or its attempts exhausted). */
  spend(userId: string): Promise<void>;
  /**
   * The code with this hash was never delivered (the SMS provider did not send it): it is spent, and it no longer
   * counts against the hourly limit. Nothing changes if another code replaced it meanwhile.
   */
  withdraw(userId: string, codeHash: string): Promise<void>;
}

/** A person's contact details, outside the event log; erasing them deletes the row. */
export interface PersonalData {
  userId: string;
  email: string | null;
  phone: string | null;
}

/**
 * What erasure looks for: the current contacts, and the emails and phones the person had before (a phone change
 * replaces one; so does registering again with a token vouching for another email).
 */
export interface ErasableContacts {
  emails: string[];
  phones: string[];
}

export interface PersonalDataStore {
  save(data: PersonalData): Promise<void>;
  /** Sets the phone alone: the email stays as it is (an erasure meanwhile is not undone). */
  savePhone(userId: string, phone: string | null): Promise<void>;
  /** Sets the email alone (the one it replaces is kept as former, for erasure to search): the phone stays as it is. */
  saveEmail(userId: string, email: string): Promise<void>;
  get(userId: string): Promise<PersonalData | undefined>;
  /** Every contact the person gave: the email and the phone now, and each one before them (phones E.164). */
  contactsEver(userId: string): Promise<ErasableContacts | undefined>;
  getMany(userIds: readonly string[]): Promise<Map<string, PersonalData>>;
  erase(userId: string): Promise<void>;
}

/** Stored copies of messages from outside (raw webhook bodies) that may name a person. */
export interface StoredMessages {
  /**
   * Empties every stored message naming one of these emails or phones (E.164); erasure calls it before the
   * contacts go. A message still being processed is emptied as soon as it is settled.
   */
  eraseMentions(contacts: ErasableContacts): Promise<void>;
}

/** Time and ids come from outside the domain. */
export interface Runtime {
  now(): Date;
  newId(): string;
}

/** A runtime that also makes ids from names: the same id for the same name in a namespace (uuid v5). */
export interface KeyedRuntime extends Runtime {
  /** A thing created under an idempotency key: its id from (namespace, name). */
  keyedId(namespace: string, name: string): string;
}
