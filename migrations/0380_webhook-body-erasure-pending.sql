-- Up Migration

-- Erasure reaches webhooks not processed yet: a body naming the erased person that a worker still has to process
-- (waiting for a retry, or under way) is marked here and emptied by the very statement that settles it. The mark is
-- a flag, not what was searched for: no contact detail is kept to search later. Adding a column with a constant
-- default rewrites nothing.
ALTER TABLE pos_webhook_events_raw ADD COLUMN body_erasure_pending boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE pos_webhook_events_raw DROP COLUMN body_erasure_pending;
