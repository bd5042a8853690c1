/**
 * `square_customer_changes` (migration 0340): the last change of each Square customer a customer webhook told of, on
 * any instance, so that every instance drops its cached contacts of that customer before its next batch decides on
 * them (`customerChanges` in domain/payments/customer-cache.ts).
 */
import type pg from 'pg';
import { z } from 'zod';
import type { CustomerChange, CustomerRef } from '../../domain/payments/customer-cache.ts';

/** Records a change of this customer; answers the change's number. */
export async function recordCustomerChange(pool: pg.Pool, tenantId: string, customerId: string): Promise<string> {
  const { rows } = await pool.query(
    `INSERT INTO square_customer_changes (tenant_id, customer_id) VALUES ($1, $2)
     ON CONFLICT (tenant_id, customer_id) DO UPDATE SET change = nextval('square_customer_change_seq')
     RETURNING change::text`,
    [tenantId, customerId],
  );
  return changeRow.parse(rows[0]).change;
}

const changeRow = z.object({ change: z.string() });
const row = z.object({ tenant_id: z.string(), customer_id: z.string(), change: z.string() });

/** The last recorded change of each of these customers; customers never changed are absent. One indexed read. */
export async function customerChangesOf(pool: pg.Pool, customers: readonly CustomerRef[]): Promise<CustomerChange[]> {
  if (!customers.length) return [];
  const { rows } = await pool.query(
    `SELECT c.tenant_id, c.customer_id, c.change::text AS change FROM square_customer_changes c
       JOIN unnest($1::text[], $2::text[]) AS p (tenant_id, customer_id) USING (tenant_id, customer_id)`,
    [customers.map((c) => c.tenantId), customers.map((c) => c.customerId)],
  );
  return rows.map((raw) => {
    const { tenant_id: tenantId, customer_id: customerId, change } = row.parse(raw);
    return { tenantId, customerId, change };
  });
}
