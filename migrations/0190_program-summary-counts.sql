-- Up Migration

-- The program summary without a pass over the customers per interval (issue 18, measured in bench/summary.ts).
--
-- `program_period_customers`: per workspace, granularity and interval, how many customers were active in it. The
-- projection adds a customer when its row of `program_customer_periods` turns active (its first activity in the
-- interval), so the summary's "active customers" per interval is one row read, not a count over the customers.
--
-- `program_customer_periods` gains whole years ('year'): the distinct active customers and the top customers of a
-- range are summed over the coarsest intervals that tile it (a year by month reads one row per customer, not
-- twelve), and its primary key carries `earned` and `active` (INCLUDE) so that the summary reads the index alone.
-- Rows of 'year' and the counts are written by the projection's version 2, whose rebuild fills them beside the
-- live tables (README "Zero-downtime rebuild"); until it takes over, version 1 answers as before.
ALTER TABLE program_customer_periods DROP CONSTRAINT program_customer_periods_granularity_check;
ALTER TABLE program_customer_periods ADD CONSTRAINT program_customer_periods_granularity_check
  CHECK (granularity IN ('day', 'week', 'month', 'year'));

CREATE UNIQUE INDEX program_customer_periods_covering ON program_customer_periods (tenant_id, granularity, period, consumer_id)
  INCLUDE (earned, active);
ALTER TABLE program_customer_periods DROP CONSTRAINT program_customer_periods_pkey;
ALTER TABLE program_customer_periods ADD CONSTRAINT program_customer_periods_pkey PRIMARY KEY USING INDEX program_customer_periods_covering;

CREATE TABLE program_period_customers (
  tenant_id         text NOT NULL,
  -- As in `program_customer_periods`: 'day', 'week' (starting Monday), 'month' or 'year'; `period` is its first day.
  granularity       text NOT NULL CHECK (granularity IN ('day', 'week', 'month', 'year')),
  period            date NOT NULL,
  active_customers  int  NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, granularity, period)
);

-- Down Migration
DROP TABLE program_period_customers;
ALTER TABLE program_customer_periods DROP CONSTRAINT program_customer_periods_pkey;
ALTER TABLE program_customer_periods ADD PRIMARY KEY (tenant_id, granularity, period, consumer_id);
DELETE FROM program_customer_periods WHERE granularity = 'year';
ALTER TABLE program_customer_periods DROP CONSTRAINT program_customer_periods_granularity_check;
ALTER TABLE program_customer_periods ADD CONSTRAINT program_customer_periods_granularity_check
  CHECK (granularity IN ('day', 'week', 'month'));
