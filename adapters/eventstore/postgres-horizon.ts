/**
 * Who holds the PostgreSQL feed back. The feed passes no append still in progress
 * (migrations/0050_feed-horizon.sql), so a transaction that appended and stays open (a stuck request, a
 * session left idle in transaction) stops every subscriber behind it. This names it, for `/readyz` and the
 * `tally_event_feed_horizon_age_seconds` metric. Transactions that append nothing never hold the feed back.
 */
import type pg from 'pg';
import { z } from 'zod';

/** The oldest transaction appending events right now. */
export interface AppendInFlight {
  /** Its backend's process id (`SELECT pg_terminate_backend(<pid>)` ends it). */
  pid: number;
  database: string;
  /** Since its transaction began. */
  ageSeconds: number;
}

const Row = z.object({ pid: z.number().int(), database: z.string(), age_seconds: z.number() });

export async function oldestAppendInFlight(pool: pg.Pool): Promise<AppendInFlight | undefined> {
  const { rows } = await pool.query({
    name: 'tally_oldest_append_in_flight',
    text: `SELECT a.pid, s.datname AS database, extract(epoch FROM clock_timestamp() - s.xact_start)::float8 AS age_seconds
             FROM event_appends_in_flight a JOIN pg_stat_activity s ON s.pid = a.pid
            WHERE s.xact_start IS NOT NULL
            ORDER BY s.xact_start LIMIT 1`,
  });
  if (rows.length === 0) return undefined;
  const row = Row.parse(rows[0]);
  return { pid: row.pid, database: row.database, ageSeconds: Math.max(0, row.age_seconds) };
}
