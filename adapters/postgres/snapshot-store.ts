/**
 * The snapshot store in PostgreSQL (table `stream_snapshots`, migration 0030), used with either event store:
 * on KurrentDB the events live there and the snapshots here, which is safe because a snapshot is only a
 * cache checked against the stream (the command reads the events after its revision, and appends expecting
 * the stream's real revision).
 */
import type pg from 'pg';
import { z } from 'zod';
import type { JsonValue } from '../../domain/ports/event-store.ts';
import type { SnapshotStore } from '../../domain/ports/snapshot-store.ts';

const row = z.object({
  stream: z.string(),
  revision: z.coerce.number().int().nonnegative(),
  decider_version: z.string(), // The state's shape is the decider's to check (`StateSnapshots.fromJson`); jsonb always reads back as JSON.
  state: z.custom<JsonValue>((value) => value !== undefined),
});

export function postgresSnapshotStore(pool: pg.Pool): SnapshotStore {
  return {
    async read(stream, version) {
      const { rows } = await pool.query(
        'SELECT stream, revision, decider_version, state FROM stream_snapshots WHERE stream = $1 AND decider_version = $2',
        [stream, version],
      );
      if (!rows[0]) return undefined;
      const parsed = row.parse(rows[0]);
      return { stream: parsed.stream, revision: parsed.revision, version: parsed.decider_version, state: parsed.state };
    },
    async write(snapshot) {
      // A newer snapshot of the same version stays; one of another version is replaced (the running code's wins).
      await pool.query(
        `INSERT INTO stream_snapshots (stream, revision, decider_version, state) VALUES ($1, $2, $3, $4)
         ON CONFLICT (stream) DO UPDATE SET revision = EXCLUDED.revision, decider_version = EXCLUDED.decider_version,
                                            state = EXCLUDED.state, written_at = now()
          WHERE stream_snapshots.revision < EXCLUDED.revision OR stream_snapshots.decider_version <> EXCLUDED.decider_version`,
        [snapshot.stream, snapshot.revision, snapshot.version, JSON.stringify(snapshot.state)],
      );
    },
  };
}
