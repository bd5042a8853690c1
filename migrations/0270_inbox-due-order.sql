-- Up Migration

-- Leasing walks only what is due. The worker's claim took the oldest unprocessed rows in `received_at` order, and
-- no index had that order among unprocessed rows alone: the planner walked `pos_webhook_events_raw_received`
-- (every row ever received, newest first, read backward) and filtered out the processed ones. The claim's cost grew
-- with the inbox's history. Measured on a copy with 50,000 processed and 3,000 due rows: 577 ms and 25,341 pages read
-- per claim of 64, rows removed by the filter: 50,000.
--
-- Now the claim takes due rows in the order they became due (`next_attempt_at`, then `received_at`, `id`; for a
-- webhook never tried, `next_attempt_at` is when it was received), and this index holds exactly the unprocessed
-- rows in that order: the scan starts at the first due row and stops after the batch (plus the rows other workers
-- hold leased, which it steps over), and rows waiting for a retry later sort after everything due now. The same
-- copy: 0.1 ms in the scan, 44 index and heap pages, 0.5 ms for the whole claim. It replaces `pos_webhook_events_raw_due` (next_attempt_at alone, same rows), so
-- an acknowledgement still writes as many index entries.
--
-- Built without CONCURRENTLY (migrations run in a transaction): it holds a SHARE lock while it reads the table, so
-- webhooks wait for the build (about a second per 100,000 rows here) and Square delivers again what timed out.
CREATE INDEX pos_webhook_events_raw_due_order ON pos_webhook_events_raw (next_attempt_at, received_at, id) WHERE NOT processed;
DROP INDEX pos_webhook_events_raw_due;

-- Down Migration
CREATE INDEX pos_webhook_events_raw_due ON pos_webhook_events_raw (next_attempt_at) WHERE NOT processed;
DROP INDEX pos_webhook_events_raw_due_order;
