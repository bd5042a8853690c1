import type pg from 'pg';
import { z } from 'zod';
import type { PersonalData, PersonalDataStore } from '../../domain/ports/identity.ts';

const row = z.object({ user_id: z.string(), email: z.string().nullable(), phone: z.string().nullable() });
const contactsRow = z.object({ email: z.string().nullable(), phone: z.string().nullable(), former_emails: z.array(z.string()), former_phones: z.array(z.string()) });
const toData = (r: unknown): PersonalData => {
  const parsed = row.parse(r);
  return { userId: parsed.user_id, email: parsed.email, phone: parsed.phone };
};

/** How many former phones (and former emails) are kept, the latest: each costs erasure a pattern over every stored body. */
export const FORMER_PHONES_KEPT = 20;
export const FORMER_EMAILS_KEPT = FORMER_PHONES_KEPT;

/**
 * The former values of `column` (`phone` or `email`) kept when `personal_data.<column>` becomes `EXCLUDED.<column>`:
 * the one it replaces joins them, once, and only the latest `kept` stay (a phone is set without verification, so a
 * client could grow the list without end). Erasure searches webhook bodies for all of them (a body naming a phone or
 * email the person earned through before changing it).
 */
const former = (column: 'phone' | 'email', kept: number) => {
  const current = `personal_data.${column}`;
  const list = `personal_data.former_${column}s`;
  return `CASE WHEN ${current} IS NULL OR ${current} IS NOT DISTINCT FROM EXCLUDED.${column} OR ${current} = ANY(${list})
               THEN ${list}
               ELSE (array_append(${list}, ${current}))[cardinality(${list}) + 2 - ${kept}:] END`;
};
const FORMER_PHONES = former('phone', FORMER_PHONES_KEPT);
const FORMER_EMAILS = former('email', FORMER_EMAILS_KEPT);

export function postgresPersonalData(pool: pg.Pool): PersonalDataStore {
  return {
    async save(data) {
      await pool.query(
        `INSERT INTO personal_data (user_id, email, phone) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, former_emails = ${FORMER_EMAILS}, former_phones = ${FORMER_PHONES}, updated_at = now()`,
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
    async saveEmail(userId, email) {
      await pool.query(
        `INSERT INTO personal_data (user_id, email, phone) VALUES ($1, $2, NULL)
         ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, former_emails = ${FORMER_EMAILS}, updated_at = now()`,
        [userId, email],
      );
    },
    async get(userId) {
      const { rows } = await pool.query('SELECT user_id, email, phone FROM personal_data WHERE user_id = $1', [userId]);
      return rows[0] ? toData(rows[0]) : undefined;
    },
    async contactsEver(userId) {
      const { rows } = await pool.query('SELECT email, phone, former_emails, former_phones FROM personal_data WHERE user_id = $1', [userId]);
      if (!rows[0]) return undefined;
      const ever = contactsRow.parse(rows[0]);
      const withFormer = (current: string | null, formers: string[]) => [...new Set([...(current ? [current] : []), ...formers])];
      return { emails: withFormer(ever.email, ever.former_emails), phones: withFormer(ever.phone, ever.former_phones) };
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
