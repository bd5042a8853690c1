-- Up Migration

-- The folded state of a long stream at a revision (a wallet, a connection, a user), so a command reads the
-- snapshot and the events after it instead of the whole stream. A cache: deleting rows changes nothing but
-- speed. One row per stream, replaced by newer snapshots; `decider_version` is the decider's snapshot version
-- and a fingerprint of its code, so a changed decider never reads an old snapshot (it folds from the start and
-- writes a new one). Kept in PostgreSQL whichever event store holds the events.
CREATE TABLE stream_snapshots (
  stream          text PRIMARY KEY,
  revision        bigint NOT NULL CHECK (revision >= 0),
  decider_version text NOT NULL,
  state           jsonb NOT NULL,
  written_at      timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE stream_snapshots;
