import { createHmac } from 'node:crypto';
import type { IdentityHasher } from '../../domain/ports/identity.ts';

/** HMAC-SHA256 under IDENTITY_HASH_KEY, domain-separated by kind, base64url. Shown as `email:…`/`phone:…`. */
export function createIdentityHasher(key: string): IdentityHasher {
  const hash = (kind: string, value: string) => `${kind}:${createHmac('sha256', key).update(`${kind}\0${value}`).digest('base64url')}`;
  return {
    hashEmail: (email) => hash('email', email),
    hashPhone: (phone) => hash('phone', phone),
    hashVerificationCode: (userId, phoneHash, code) => hash('code', `${userId}\0${phoneHash}\0${code}`),
  };
}
