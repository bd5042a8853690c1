/**
 * Identities are matched the way Square customers will be: emails compared case-insensitively, phones in
 * E.164. Raw values never enter events; their keyed hashes do (see ports/identity.ts).
 */
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { DomainError } from '../shared/errors.ts';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** NFKC first, so compatibility forms (the Kelvin sign, full-width letters) compare as what they look like. */
export function normaliseEmail(email: string): string {
  const normalised = email.normalize('NFKC').trim().toLowerCase();
  if (!EMAIL.test(normalised) || normalised.length > 320) {
    throw new DomainError('VALIDATION_FAILED', `email is not a valid address: ${JSON.stringify(email.slice(0, 80))}`);
  }
  return normalised;
}

/** The region phones without a country code are read in when none is known (Tally's first merchants were in the US). */
export const DEFAULT_PHONE_REGION = 'US';

/** An ISO 3166 alpha-2 code libphonenumber knows (`GB`, `JP`, …), upper-cased; undefined otherwise. */
export function phoneRegion(country: string | null | undefined): CountryCode | undefined {
  const code = country?.trim().toUpperCase();
  return code && isSupportedCountry(code) ? code : undefined;
}

/**
 * E.164 (`+12125551234`), or a validation error that says what is wrong. `+1-212-555-4240` and `+12125554240` match.
 * A phone without `+` is read as a number of `region` (ISO 3166 alpha-2: the Square merchant's country, or the one a
 * consumer gave), the US when none is given: in GB, `07700 900123` is `+447700900123`.
 */
export function normalisePhone(phone: string, region?: string | null): string {
  const parsed = parsePhoneNumberFromString(phone.trim(), phoneRegion(region) ?? DEFAULT_PHONE_REGION);
  // A number of a possible length for its region is accepted even where the numbering plan has not allocated it
  // (the UK's 07700 900xxx, kept for fiction and examples, is what merchants and tests type).
  if (!parsed || !(parsed.isValid() || parsed.isPossible())) {
    throw new DomainError('VALIDATION_FAILED', 'phone must be a valid phone number, preferably in E.164 form such as +12125551234 (or give country for a national number)');
  }
  return parsed.number;
}

/** Like normalisePhone, but an unparseable phone (as Square customers may have) is simply no identity. */
export function tryNormalisePhone(phone: string | null | undefined, region?: string | null): string | null {
  if (!phone) return null;
  try {
    return normalisePhone(phone, region);
  } catch {
    return null;
  }
}

export function tryNormaliseEmail(email: string | null | undefined): string | null {
  if (!email) return null;
  try {
    return normaliseEmail(email);
  } catch {
    return null;
  }
}

/**
 * An address that may match an ADMIN_EMAILS entry: exactly as typed, plain printable ASCII, no surrounding
 * space. Look-alikes (`\u212Aim@…` for `kim@…`) and padded variants are ordinary addresses, never admins.
 */
export function isPlainAsciiEmail(email: string): boolean {
  return /^[\x21-\x7e]+$/.test(email) && EMAIL.test(email);
}

/**
 * The digit runs a stored phone (E.164) shows up as in text a merchant typed, whatever the punctuation: the full
 * number with its country code, and the national significant number, which every national form (`07700 900123`,
 * `(212) 555-0100`) contains after its trunk prefix. Used to find bodies naming a person at erasure.
 */
export function phoneSearchDigits(phone: string): string[] {
  const parsed = parsePhoneNumberFromString(phone);
  const full = phone.replace(/\D/g, '');
  return [...new Set([full, ...(parsed ? [String(parsed.nationalNumber)] : [])])];
}
