-- Up Migration

-- The last poll of each tenant's connection that found nothing new (no payment or refund processed for the first
-- time, its cursor unchanged, no error). Such a poll appends no `SquarePaymentsPolled` (at 10,000 merchants polled
-- every 5 minutes they were 2.9 million events a day); it overwrites this tenant's one row instead, so "last polled"
-- (pos_connections' view, the debug endpoint, the admin console) stays current. Read only when `merchant_id` is the
-- connection's merchant: after a switch, the previous merchant's poll is not this connection's.
CREATE TABLE square_quiet_polls (
  tenant_id text PRIMARY KEY,
  merchant_id text NOT NULL,
  polled_at timestamptz NOT NULL
);

-- Down Migration
DROP TABLE square_quiet_polls;
