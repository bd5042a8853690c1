/**
 * The last quiet poll of each tenant (migration 0350): a poll that found nothing new records its time here, one row
 * per tenant overwritten, instead of appending a `SquarePaymentsPolled` to the event store.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { QuietPoll, QuietPolls } from '../../domain/connections/poll-log.ts';

const row = z.object({ merchant_id: z.string(), polled_at: z.date() });

export function postgresQuietPolls(pool: pg.Pool): QuietPolls {
  return {
    async record(tenantId: string, poll: QuietPoll) {
      // A later poll wins; a poll of another merchant (the connection switched) replaces the row whatever its time.
      await pool.query(
        `INSERT INTO square_quiet_polls (tenant_id, merchant_id, polled_at) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET merchant_id = EXCLUDED.merchant_id, polled_at = EXCLUDED.polled_at
          WHERE square_quiet_polls.merchant_id <> EXCLUDED.merchant_id OR square_quiet_polls.polled_at < EXCLUDED.polled_at`,
        [tenantId, poll.merchantId, poll.polledAt],
      );
    },
    async last(tenantId: string) {
      const { rows } = await pool.query('SELECT merchant_id, polled_at FROM square_quiet_polls WHERE tenant_id = $1', [tenantId]);
      if (!rows[0]) return undefined;
      const r = row.parse(rows[0]);
      return { merchantId: r.merchant_id, polledAt: r.polled_at.toISOString() };
    },
  };
}
