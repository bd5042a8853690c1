import type pg from 'pg';
import { z } from 'zod';
import type { PersonalData, PersonalDataStore } from '../../domain/ports/identity.ts';

const row = z.object({ user_id: z.string(), email: z.string().nullable(), phone: z.string().nullable() });
const contactsRow = z.object({ email: z.string().nullable(), phone: z.string().nullable(), former_phones: z.array(z.string()) });
const toData = (r: unknown): PersonalData => {
  const parsed = row.parse(r);
  return { userId: parsed.user_id, email: parsed.email, phone: parsed.phone };
};

/** How many former phones are kept, the latest: each costs erasure a pattern over every stored body. */
export const FORMER_PHONES_KEPT = 20;

/**
 * The phones kept as former when `personal_data.phone` becomes `EXCLUDED.phone`: the one it replaces joins them, once,
 * and only the latest `FORMER_PHONES_KEPT` stay (a phone is set without verification, so a client could grow the list
 * without end). Erasure searches webhook bodies for all of them (a body naming a phone the person earned through
 * before changing it).
 */
const FORMER_PHONES = `CASE WHEN personal_data.phone IS NULL OR personal_data.phone IS NOT DISTINCT FROM EXCLUDED.phone OR personal_data.phone = ANY(personal_data.former_phones)
                            THEN personal_data.former_phones
                            ELSE (array_append(personal_data.former_phones, personal_data.phone))[cardinality(personal_data.former_phones) + 2 - ${FORMER_PHONES_KEPT}:] END`;

export function postgresPersonalData(pool: pg.Pool): PersonalDataStore {
  return {
    async save(data) {
      await pool.query(
        `INSERT INTO personal_data (user_id, email, phone) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, former_phones = ${FORMER_PHONES}, updated_at = now()`,
        [data.userId, data.email, data.phone],
      );
    },
    async savePhone(userId, phone) {
      await pool.query(
        `INSERT INTO personal_data (user_id, email, phone) VALUES ($1, NULL, $2)
         ON CONFLICT (user_id) DO UPDATE SET phone = EXCLUDED.phone, former_phones = ${FORMER_PHONES}, updated_at = now()`,
        [userId, phone],
      );
    },
    async get(userId) {
      const { rows } = await pool.query('SELECT user_id, email, phone FROM personal_data WHERE user_id = $1', [userId]);
      return rows[0] ? toData(rows[0]) : undefined;
    },
    async contactsEver(userId) {
      const { rows } = await pool.query('SELECT email, phone, former_phones FROM personal_data WHERE user_id = $1', [userId]);
      if (!rows[0]) return undefined;
      const ever = contactsRow.parse(rows[0]);
      return { email: ever.email, phones: [...new Set([...(ever.phone ? [ever.phone] : []), ...ever.former_phones])] };
    },
    async getMany(userIds) {
      const { rows } = await pool.query('SELECT user_id, email, phone FROM personal_data WHERE user_id = ANY($1)', [userIds]);
      return new Map(rows.map((r) => {
        const data = toData(r);
        return [data.userId, data];
      }));
    },
    async erase(userId) {
      await pool.query('DELETE FROM personal_data WHERE user_id = $1', [userId]);
    },
  };
}
