/**
 * `square_customer_contacts`: the identity hashes Square last gave each customer in a customer webhook (migration
 * 0330), for the purchases the webhook's attach could not see yet. Hashes only: nothing here names a person.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { Queryable } from './transaction.ts';

/** Records (replaces) the identities of these customers of the tenant: a customer and those merged into it. */
export async function recordCustomerContacts(pool: pg.Pool, tenantId: string, customerIds: readonly string[], identityHashes: readonly string[]): Promise<void> {
  await pool.query(
    `INSERT INTO square_customer_contacts (tenant_id, customer_id, identity_hashes)
     SELECT $1, customer_id, $3 FROM unnest($2::text[]) AS customer_id
     ON CONFLICT (tenant_id, customer_id) DO UPDATE SET identity_hashes = EXCLUDED.identity_hashes, changed_at = now()`,
    [tenantId, customerIds, identityHashes],
  );
}

const row = z.object({ tenant_id: z.string(), customer_id: z.string(), identity_hashes: z.array(z.string()) });

/** The recorded identities of these (tenant, customer) pairs, keyed `tenant\u0000customer`; pairs never recorded are absent. */
export async function customerContactsOf(db: Queryable, pairs: readonly { tenantId: string; customerId: string }[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (!pairs.length) return found;
  const { rows } = await db.query(
    `SELECT c.tenant_id, c.customer_id, c.identity_hashes FROM square_customer_contacts c
       JOIN unnest($1::text[], $2::text[]) AS p (tenant_id, customer_id) USING (tenant_id, customer_id)`,
    [pairs.map((p) => p.tenantId), pairs.map((p) => p.customerId)],
  );
  for (const raw of rows) {
    const r = row.parse(raw);
    found.set(contactsKey(r.tenant_id, r.customer_id), r.identity_hashes);
  }
  return found;
}

export const contactsKey = (tenantId: string, customerId: string) => `${tenantId}\u0000${customerId}`;
