/**
 * Keyed hashing of normalised identities (HMAC with IDENTITY_HASH_KEY). Events carry these hashes, so
 * identities can be matched without the log ever holding an email or a phone number.
 */
export interface IdentityHasher {
  hashEmail(normalisedEmail: string): string;
  hashPhone(normalisedPhone: string): string;
}

/** A person's contact details, outside the event log; erasing them deletes the row. */
export interface PersonalData {
  userId: string;
  email: string | null;
  phone: string | null;
}

export interface PersonalDataStore {
  save(data: PersonalData): Promise<void>;
  get(userId: string): Promise<PersonalData | undefined>;
  getMany(userIds: readonly string[]): Promise<Map<string, PersonalData>>;
  erase(userId: string): Promise<void>;
}

/** Time and ids come from outside the domain. */
export interface Runtime {
  now(): Date;
  newId(): string;
}
