-- Up Migration

-- A merchant's webhook list (`GET /api/v1/client/webhooks`) shows the webhooks of its connected merchant that wait
-- to be processed: stored without a tenant (it is recorded when they are processed), they matched no workspace and
-- `outcome=pending` never listed one. This index holds exactly those rows (no tenant yet, not processed) by merchant,
-- newest first: the list reads a merchant's waiting rows from it and stops after a page. Without it PostgreSQL
-- combined the merchant index (every webhook the merchant ever sent) with the unprocessed rows: measured on a copy
-- with 1.1 million rows, 337,000 of one merchant and 3,000 waiting, that merchant's first page took 52 ms, its
-- waiting part 1,339 pages; with it, 1.2 ms, its waiting part 20 pages. The lease changes neither `tenant_id` nor `processed`, so it stays a HOT update; a
-- webhook adds one entry when it is stored and none when it is settled.
--
-- Built without CONCURRENTLY (migrations run in a transaction): it holds a SHARE lock while it reads the table, so
-- webhooks wait for the build (0.3 s on that copy of 1.1 million rows) and Square delivers again what timed out.
CREATE INDEX pos_webhook_events_raw_waiting_merchant ON pos_webhook_events_raw (merchant_id, received_at DESC, id DESC)
  WHERE tenant_id IS NULL AND NOT processed;

-- Down Migration
DROP INDEX pos_webhook_events_raw_waiting_merchant;
