-- Up Migration

-- The version of a projection its live tables were built at. A projection that declares a higher version is
-- rebuilt at start-up (zero-downtime rebuild), and the takeover records the new version. Existing rows were all
-- built at version 1.
ALTER TABLE projection_checkpoints ADD COLUMN version integer NOT NULL DEFAULT 1;

-- Down Migration
ALTER TABLE projection_checkpoints DROP COLUMN version;
