-- Up Migration

-- How many times a projection's live tables were replaced by a rebuild's takeover. Every write of a live checkpoint
-- compares it (with the position), so an owner that kept feeding through a takeover finds out at its next write
-- even when the takeover left the position where it was, or when its own checkpoint had only advanced in memory:
-- it starts again from the stored checkpoint, and stands down if the takeover raised the version beyond its code.
-- A column with a constant default: a change of the catalog only, no rewrite of the table.
ALTER TABLE projection_checkpoints ADD COLUMN generation bigint NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE projection_checkpoints DROP COLUMN generation;
