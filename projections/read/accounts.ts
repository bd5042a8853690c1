/** Queries over the accounts read models. Rows are parsed with zod on the way out. */
import type pg from 'pg';
import { z } from 'zod';
import { timestamp, timestampColumn } from './views.ts';

/** Whether a workspace (tenant) with this id was provisioned, in the `workspaces` read model. */
export async function workspaceProvisioned(pool: pg.Pool, tenantId: string): Promise<boolean> {
  return ((await pool.query('SELECT 1 FROM workspaces WHERE tenant_id = $1', [tenantId])).rowCount ?? 0) > 0;
}

/** A user as the API shows them (writes about users answer it). */
export const userView = z.object({
  id: z.string(),
  email: z.string().nullable(),
  emailVerified: z.boolean(),
  phone: z.string().nullable(),
  phoneVerified: z.boolean(),
  role: z.enum(['admin', 'client', 'consumer']),
  status: z.enum(['pending', 'approved', 'suspended']),
  tenantId: z.string().nullable(),
  businessName: z.string().nullable(),
  registeredAt: timestamp,
});

/** A user as the admin search lists them. */
export const userListItem = userView.pick({ id: true, email: true, role: true, status: true, tenantId: true, businessName: true, registeredAt: true });
export type UserListItem = z.infer<typeof userListItem>;

/** A listed user as the search returns it (columns named as the fields). */
const userRow = userListItem.extend({ registeredAt: timestampColumn });

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The admin search's answer: the newest `SEARCH_LIMIT` matches, and whether more matched (narrow the search). */
export const userSearchView = z.object({ users: z.array(userListItem), more: z.boolean() });

/** Most users one search answers. */
export const SEARCH_LIMIT = 50;

/**
 * Users whose email, id or business name contains `q` (case-insensitive), newest first: at most `limit`, and
 * whether more matched (one more row is asked for to tell).
 */
export async function searchUsers(pool: pg.Pool, q: string, limit = SEARCH_LIMIT): Promise<z.infer<typeof userSearchView>> {
  const { rows } = await pool.query(
    `SELECT u.id, p.email, u.role, u.status, u.tenant_id AS "tenantId", u.business_name AS "businessName", u.registered_at AS "registeredAt"
       FROM users u LEFT JOIN personal_data p ON p.user_id = u.id
      WHERE u.id ILIKE $1 OR p.email ILIKE $1 OR u.business_name ILIKE $1
      ORDER BY u.registered_at DESC, u.id
      LIMIT $2`,
    [`%${escapeLike(q)}%`, limit + 1],
  );
  return { users: rows.slice(0, limit).map((raw) => userRow.parse(raw)), more: rows.length > limit };
}

/** A version of a workspace's reward rule, as writes about it answer. */
export const ruleVersion = z.object({ ruleId: z.string(), version: z.number().int(), isActive: z.boolean(), rule: z.record(z.string(), z.unknown()) });

/** A version of a workspace's reward rule as the list shows it; `currency` is the workspace's (the rule's amounts are in its minor units). */
export const listedRuleVersion = ruleVersion.extend({ createdAt: timestamp, activatedAt: timestamp.nullable(), retiredAt: timestamp.nullable(), currency: z.string().nullable() });

/** A listed rule version as the list statement returns it (columns named as the fields). */
const ruleRow = listedRuleVersion.extend({ createdAt: timestampColumn, activatedAt: timestampColumn.nullable(), retiredAt: timestampColumn.nullable() });

/** Every version of the workspace's reward rule, newest first. */
export async function listRewardRules(pool: pg.Pool, tenantId: string): Promise<z.infer<typeof listedRuleVersion>[]> {
  const { rows } = await pool.query(
    `SELECT r.id AS "ruleId", r.version, r.is_active AS "isActive", r.rule, r.created_at AS "createdAt", r.activated_at AS "activatedAt", r.retired_at AS "retiredAt",
            c.currency
       FROM reward_rules r LEFT JOIN pos_connections c ON c.tenant_id = r.tenant_id
      WHERE r.tenant_id = $1 ORDER BY r.version DESC`,
    [tenantId],
  );
  return rows.map((raw) => ruleRow.parse(raw));
}

/**
 * The approved consumer who owns one of these identity hashes: who verified it last (one owner per identity at
 * a time). Unverified emails and phones own nothing. Hashes are tried in the order given (email first).
 */
export async function consumerByIdentity(pool: pg.Pool, hashes: readonly string[]): Promise<string | undefined> {
  const { rows } = await pool.query<{ consumer_id: string }>(
    `SELECT o.consumer_id FROM identity_owners o JOIN users u ON u.id = o.consumer_id
      WHERE o.identity_hash = ANY($1) AND u.status = 'approved' AND NOT u.erased
      ORDER BY array_position($1::text[], o.identity_hash) LIMIT 1`,
    [hashes],
  );
  return rows[0]?.consumer_id;
}

/** The consumer who owns this verified identity now (the last to verify it), if any. */
export async function identityOwner(pool: pg.Pool, identityHash: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ consumer_id: string }>('SELECT consumer_id FROM identity_owners WHERE identity_hash = $1', [identityHash]);
  return rows[0]?.consumer_id;
}

/** The first admin registered with this email hash. */
export async function adminWithEmail(pool: pg.Pool, emailHash: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ id: string }>(`SELECT id FROM users WHERE email_hash = $1 AND role = 'admin' ORDER BY registered_at, id LIMIT 1`, [emailHash]);
  return rows[0]?.id;
}

/**
 * `consumerByIdentity` for many sets of hashes in one query (a batch of webhooks): for each set, exactly what
 * `consumerByIdentity` answers for it, i.e. the owner of its first hash (in the set's order) that an approved,
 * unerased consumer owns. An identity has at most one owner (`identity_owners` is keyed by the hash).
 */
export async function consumersByIdentity(pool: pg.Pool, hashSets: readonly (readonly string[])[]): Promise<(string | undefined)[]> {
  const all = [...new Set(hashSets.flat())];
  if (!all.length) return hashSets.map(() => undefined);
  // Named: every batch of webhooks asks it (parsed once per connection).
  const { rows } = await pool.query<{ identity_hash: string; consumer_id: string }>(
    {
      name: 'tally_consumers_by_identity',
      text: `SELECT o.identity_hash, o.consumer_id FROM identity_owners o JOIN users u ON u.id = o.consumer_id
              WHERE o.identity_hash = ANY($1) AND u.status = 'approved' AND NOT u.erased`,
    },
    [all],
  );
  const owners = new Map(rows.map((r) => [r.identity_hash, r.consumer_id]));
  return hashSets.map((hashes) => {
    for (const hash of hashes) {
      const owner = owners.get(hash);
      if (owner !== undefined) return owner;
    }
    return undefined;
  });
}

const ownedIdentityRow = z.object({ consumer_id: z.string(), identity_hash: z.string() });

/**
 * For each of these consumers, the keyed hashes of the emails they verified and own now (`identity_owners`, as
 * purchases are matched), in one query: a promotion's daily uses counted under one before they joined count against
 * them. A consumer with none is absent. Phones are left out: no use is counted under a phone.
 */
export async function verifiedEmailsOf(pool: pg.Pool, consumerIds: readonly string[]): Promise<Map<string, string[]>> {
  const emails = new Map<string, string[]>();
  if (!consumerIds.length) return emails;
  const { rows } = await pool.query(
    `SELECT consumer_id, identity_hash FROM identity_owners
      WHERE consumer_id = ANY($1) AND identity_hash LIKE 'email:%' ORDER BY consumer_id, identity_hash`,
    [consumerIds],
  );
  for (const row of rows.map((raw) => ownedIdentityRow.parse(raw))) emails.set(row.consumer_id, [...(emails.get(row.consumer_id) ?? []), row.identity_hash]);
  return emails;
}

/** A suspended user registered with this email hash (a new `sub` with that email stays suspended too). */
export async function suspendedUserWithEmail(pool: pg.Pool, emailHash: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ id: string }>(`SELECT id FROM users WHERE email_hash = $1 AND status = 'suspended' ORDER BY registered_at LIMIT 1`, [emailHash]);
  return rows[0]?.id;
}
