-- Up Migration

-- Rebuild jobs: a projection is rebuilt into fresh tables beside the live ones, then takes over atomically.
CREATE TABLE projection_rebuilds (
  id              uuid        PRIMARY KEY,
  projection      text        NOT NULL,
  state           text        NOT NULL CHECK (state IN ('running', 'completed', 'cancelled', 'failed')),
  -- Suffix of the fresh tables (<table>__rb_<suffix>) and of the rebuild's checkpoint row.
  suffix          text        NOT NULL,
  events_applied  bigint      NOT NULL DEFAULT 0,
  -- Events in the feed when the job started (the live projection's count): for progress and the estimate.
  events_total    bigint,
  started_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  error           text
);
-- Two rebuilds of one projection cannot run at once.
CREATE UNIQUE INDEX projection_rebuilds_one_running ON projection_rebuilds (projection) WHERE state = 'running';
CREATE INDEX projection_rebuilds_recent ON projection_rebuilds (started_at DESC);

-- Down Migration
DROP TABLE projection_rebuilds;
