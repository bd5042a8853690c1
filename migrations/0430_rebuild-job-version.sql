-- Up Migration

-- The version of the projection code that started a rebuild job. A cancelled or orphaned job is resumed only by code
-- of the same version: resumed by another, the rows before its checkpoint would come from one fold and the rest from
-- another, under the new version's name. NULL for jobs started before this column: their version is unknown, and
-- they are never resumed (their fresh tables are dropped and a new job starts). A nullable column, no table rewrite.
ALTER TABLE projection_rebuilds ADD COLUMN version int;

-- Down Migration
ALTER TABLE projection_rebuilds DROP COLUMN version;
