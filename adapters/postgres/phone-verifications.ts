import type pg from 'pg';
import { z } from 'zod';
import type { PendingPhoneCode, PhoneVerificationStore } from '../../domain/ports/identity.ts';

const row = z.object({ user_id: z.string(), phone_hash: z.string(), code_hash: z.string(), expires_at: z.date(), attempts: z.number().int() });

/** `phone_verifications`: one pending code per user, replaced by the next, deleted once spent. */
export function postgresPhoneVerifications(pool: pg.Pool): PhoneVerificationStore {
  return {
    async issue(code, { windowStart, maxSends, maxSendsPerPhone, now }) {
      // The phone's sends of the hour by other users (index 0310). Read apart from the user's own row's lock, so two
      // users' sends at the same moment may both pass: the bound is approximate by that much, never by more.
      const { rows: phone } = await pool.query<{ sends: number }>(
        `SELECT coalesce(sum(sends_in_window), 0)::int AS sends FROM phone_verifications
          WHERE phone_hash = $1 AND user_id <> $2 AND window_started_at > $3`,
        [code.phoneHash, code.userId, windowStart],
      );
      if (phone[0]!.sends >= maxSendsPerPhone) return 'phone';
      // One statement: the user's send count of the last hour is checked and bumped under the row's lock.
      const { rowCount } = await pool.query(
        `INSERT INTO phone_verifications (user_id, phone_hash, code_hash, expires_at, attempts, sends_in_window, window_started_at)
         VALUES ($1, $2, $3, $4, 0, 1, $5)
         ON CONFLICT (user_id) DO UPDATE SET
           phone_hash = EXCLUDED.phone_hash, code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, attempts = 0,
           sends_in_window = CASE WHEN phone_verifications.window_started_at <= $6 THEN 1 ELSE phone_verifications.sends_in_window + 1 END,
           window_started_at = CASE WHEN phone_verifications.window_started_at <= $6 THEN EXCLUDED.window_started_at ELSE phone_verifications.window_started_at END
         WHERE phone_verifications.window_started_at <= $6 OR phone_verifications.sends_in_window < $7`,
        [code.userId, code.phoneHash, code.codeHash, code.expiresAt, now, windowStart, maxSends],
      );
      return rowCount === 1 ? 'issued' : 'user';
    },
    async get(userId): Promise<PendingPhoneCode | undefined> {
      const { rows } = await pool.query(`SELECT user_id, phone_hash, code_hash, expires_at, attempts FROM phone_verifications WHERE user_id = $1 AND code_hash <> ''`, [userId]);
      if (!rows[0]) return undefined;
      const r = row.parse(rows[0]);
      return { userId: r.user_id, phoneHash: r.phone_hash, codeHash: r.code_hash, expiresAt: r.expires_at, attempts: r.attempts };
    },
    async countAttempt(userId) {
      const { rows } = await pool.query<{ attempts: number }>('UPDATE phone_verifications SET attempts = attempts + 1 WHERE user_id = $1 RETURNING attempts', [userId]);
      return rows[0]?.attempts ?? Number.MAX_SAFE_INTEGER;
    },
    async withdraw(userId, codeHash) {
      await pool.query(
        `UPDATE phone_verifications SET code_hash = '', expires_at = now(), sends_in_window = greatest(sends_in_window - 1, 0)
          WHERE user_id = $1 AND code_hash = $2`,
        [userId, codeHash],
      );
    },
    async spend(userId) {
      // The row stays for its send window (the hourly limit); only the code goes.
      await pool.query(`UPDATE phone_verifications SET code_hash = '', expires_at = now() WHERE user_id = $1`, [userId]);
    },
  };
}
