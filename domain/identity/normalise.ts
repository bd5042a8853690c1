/**
 * Identities are matched the way Square customers will be: emails compared case-insensitively, phones in
 * E.164. Raw values never enter events; their keyed hashes do (see ports/identity.ts).
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
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

/** E.164 (`+12125551234`), or a validation error that says what is wrong. `+1-212-555-4240` and `+12125554240` match. */
export function normalisePhone(phone: string, defaultCountry: CountryCode = 'US'): string {
  const parsed = parsePhoneNumberFromString(phone.trim(), defaultCountry);
  if (!parsed || !parsed.isValid()) {
    throw new DomainError('VALIDATION_FAILED', 'phone must be a valid phone number, preferably in E.164 form such as +12125551234');
  }
  return parsed.number;
}

/** Like normalisePhone, but an unparseable phone (as Square customers may have) is simply no identity. */
export function tryNormalisePhone(phone: string | null | undefined): string | null {
  if (!phone) return null;
  try {
    return normalisePhone(phone);
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
