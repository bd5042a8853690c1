-- Up Migration

-- Raw webhook bodies can hold names, emails and phones: kept WEBHOOK_BODY_RETENTION_DAYS after processing (and
-- erased with a person's data), then emptied. The row stays, with what the log and the admin list need.
ALTER TABLE pos_webhook_events_raw ADD COLUMN body_redacted_at timestamptz;
CREATE INDEX pos_webhook_events_raw_retention ON pos_webhook_events_raw (processed_at) WHERE processed AND body_redacted_at IS NULL;

-- Down Migration
DROP INDEX pos_webhook_events_raw_retention;
ALTER TABLE pos_webhook_events_raw DROP COLUMN body_redacted_at;
