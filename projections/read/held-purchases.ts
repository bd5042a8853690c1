/** Purchases whose points are held for nobody, by Square customer (the `held_points` projection keeps them). */
import type pg from 'pg';
import { z } from 'zod';

const row = z.object({ payment_id: z.string() });

/** The tenant's purchases of this customer still held for nobody and completed within the last `windowDays`. */
export async function heldPurchasesOf(pool: pg.Pool, tenantId: string, customerId: string, now: Date, windowDays: number): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT payment_id FROM held_purchases_by_customer
      WHERE tenant_id = $1 AND customer_id = $2 AND completed_at >= $3::timestamptz - make_interval(secs => $4 * 86400)
      ORDER BY completed_at, payment_id LIMIT 1000`,
    [tenantId, customerId, now, windowDays],
  );
  return rows.map((r) => row.parse(r).payment_id);
}
