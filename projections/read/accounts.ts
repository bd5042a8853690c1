/** Queries over the accounts read models. Rows are parsed with zod on the way out. */
import type pg from 'pg';
import { z } from 'zod';

const userRow = z.object({
  id: z.string(),
  email: z.string().nullable(),
  role: z.enum(['admin', 'client', 'consumer']),
  status: z.enum(['pending', 'approved', 'suspended']),
  tenant_id: z.string().nullable(),
  business_name: z.string().nullable(),
  registered_at: z.date(),
});

export interface UserListItem {
  id: string;
  email: string | null;
  role: 'admin' | 'client' | 'consumer';
  status: 'pending' | 'approved' | 'suspended';
  tenantId: string | null;
  businessName: string | null;
  registeredAt: string;
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Users whose email, id or business name contains `q` (case-insensitive), newest first. */
export async function searchUsers(pool: pg.Pool, q: string, limit = 50): Promise<UserListItem[]> {
  const { rows } = await pool.query(
    `SELECT u.id, p.email, u.role, u.status, u.tenant_id, u.business_name, u.registered_at
       FROM users u LEFT JOIN personal_data p ON p.user_id = u.id
      WHERE u.id ILIKE $1 OR p.email ILIKE $1 OR u.business_name ILIKE $1
      ORDER BY u.registered_at DESC, u.id
      LIMIT $2`,
    [`%${escapeLike(q)}%`, limit],
  );
  return rows.map((raw) => {
    const r = userRow.parse(raw);
    return {
      id: r.id,
      email: r.email,
      role: r.role,
      status: r.status,
      tenantId: r.tenant_id,
      businessName: r.business_name,
      registeredAt: r.registered_at.toISOString(),
    };
  });
}

const ruleRow = z.object({
  id: z.string(),
  version: z.number(),
  is_active: z.boolean(),
  rule: z.record(z.string(), z.unknown()),
  created_at: z.date(),
  activated_at: z.date().nullable(),
});

export async function listRewardRules(pool: pg.Pool, tenantId: string) {
  const { rows } = await pool.query(
    'SELECT id, version, is_active, rule, created_at, activated_at FROM reward_rules WHERE tenant_id = $1 ORDER BY version DESC',
    [tenantId],
  );
  return rows.map((raw) => {
    const r = ruleRow.parse(raw);
    return {
      ruleId: r.id,
      version: r.version,
      isActive: r.is_active,
      rule: r.rule,
      createdAt: r.created_at.toISOString(),
      activatedAt: r.activated_at?.toISOString() ?? null,
    };
  });
}

/** The approved consumer that owns one of these identity hashes (the earliest registered, if several). */
/**
 * `consumerByIdentity` for many sets of hashes in one query (a batch of webhooks): for each set, the approved
 * consumer it belongs to, chosen by the same order.
 */
export async function consumersByIdentity(pool: pg.Pool, hashSets: readonly (readonly string[])[]): Promise<(string | undefined)[]> {
  const all = [...new Set(hashSets.flat())];
  if (!all.length) return hashSets.map(() => undefined);
  const { rows } = await pool.query<{ id: string; email_hash: string | null; phone_hash: string | null }>(
    `SELECT id, email_hash, phone_hash FROM users WHERE role = 'consumer' AND status = 'approved' AND (email_hash = ANY($1) OR phone_hash = ANY($1))
      ORDER BY registered_at, id`,
    [all],
  );
  return hashSets.map((hashes) => rows.find((r) => (r.email_hash !== null && hashes.includes(r.email_hash)) || (r.phone_hash !== null && hashes.includes(r.phone_hash)))?.id);
}

export async function consumerByIdentity(pool: pg.Pool, hashes: readonly string[]): Promise<string | undefined> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id FROM users WHERE role = 'consumer' AND status = 'approved' AND (email_hash = ANY($1) OR phone_hash = ANY($1))
      ORDER BY registered_at, id LIMIT 1`,
    [hashes],
  );
  return rows[0]?.id;
}
