-- Up Migration

-- Who holds a webhook's lease. A worker leases rows for a minute (longer than its slowest Square call), so the
-- rows of a worker killed mid-batch (SIGKILL, an out-of-memory kill, a lost machine) used to wait out that minute
-- before anyone processed them again. Now each worker holds a session-level advisory lock on a connection of its
-- own (`pg_advisory_lock(31251, key)`, adapters/postgres/lease-holder.ts) and writes its key here when it leases.
-- PostgreSQL drops the lock when the worker's connection closes, so any worker, or the same service started again,
-- takes back the leases whose holder no longer holds its lock (`releaseDeadLeases`) and processes them at once.
-- NULL: a lease of a worker without a lock (rows leased before this migration); it runs out as before.
-- A nullable column without a default: a change of the catalog only, no rewrite of the table.
ALTER TABLE pos_webhook_events_raw ADD COLUMN locked_by integer;
