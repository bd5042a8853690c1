/**
 * How far the PostgreSQL event store's feed runs past a projection's checkpoint: the events after it (counted
 * up to a cap, through the primary key, so a scrape stays cheap however far behind) and when the checkpoint's
 * own event was recorded.
 */
import type pg from 'pg';
import type { Position } from '../../domain/ports/event-store.ts';
import { decodePosition } from './postgres.ts';

/** How far the feed runs past one checkpoint. */
export interface CheckpointReading {
  eventsAfter: number;
  recordedAt: Date | undefined;
}

/** Reads a checkpoint's lag (at most `cap` events counted) and its event's recorded time, in one query. */
export function postgresCheckpointProbe(
  pool: pg.Pool,
  cap: number,
): (position: Position | undefined, eventTypes?: readonly string[] | 'all') => Promise<CheckpointReading> {
  return async (position, eventTypes = 'all') => {
    // A filtered projection lags by the events of its types only (its position is the runner's `upTo`, recent).
    const types = eventTypes === 'all' ? null : [...eventTypes];
    if (position === undefined) {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM (SELECT 1 FROM events WHERE ($2::text[] IS NULL OR event_type = ANY($2)) LIMIT $1) e', [cap, types]);
      return { eventsAfter: Number(rows[0]?.n ?? 0), recordedAt: undefined };
    }
    const { tx, seq } = decodePosition(position);
    const { rows } = await pool.query<{ n: string; recorded_at: Date | null }>(
      `SELECT (SELECT count(*) FROM (SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
                                                            AND ($4::text[] IS NULL OR event_type = ANY($4)) LIMIT $3) e) AS n,
              (SELECT recorded_at FROM events WHERE transaction_id = $1::xid8 AND global_position = $2::bigint) AS recorded_at`,
      [tx.toString(), seq.toString(), cap, types],
    );
    return { eventsAfter: Number(rows[0]?.n ?? 0), recordedAt: rows[0]?.recorded_at ?? undefined };
  };
}
