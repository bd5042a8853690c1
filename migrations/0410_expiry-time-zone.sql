-- Up Migration

-- The time zone whose calendar months a workspace's expiry deadlines follow (ExpiryPolicySet version 2). Every row
-- before this migration came from a version 1 policy, which meant UTC's months. A default: no table rewrite.
ALTER TABLE program_settings ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- Down Migration
ALTER TABLE program_settings DROP COLUMN time_zone;
