/**
 * Keys derived from ENCRYPTION_KEY (32 random bytes, base64). The raw key encrypts the token vault; other uses
 * get their own key through HKDF, so a signature key can never decrypt a token.
 */
import { createHash, hkdfSync } from 'node:crypto';

export interface EncryptionKey {
  /** A short hash naming the key in stored rows: tells which key a row needs, reveals nothing about it. */
  id: string;
  key: Buffer;
}

/** The current key encrypts; the previous one (after a rotation) still decrypts. */
export interface Keyring {
  current: EncryptionKey;
  previous: EncryptionKey | undefined;
}

export function encryptionKey(base64: string): EncryptionKey {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new Error('an encryption key must be 32 bytes, base64-encoded');
  return { id: createHash('sha256').update('tally/encryption-key-id\0').update(key).digest('hex').slice(0, 12), key };
}

export function keyring(current: string, previous?: string): Keyring {
  return { current: encryptionKey(current), previous: previous ? encryptionKey(previous) : undefined };
}

/** A 32-byte key for one purpose (`info`), derived from an encryption key with HKDF-SHA256. */
export function derivedKey(from: EncryptionKey, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', from.key, Buffer.alloc(0), info, 32));
}
