-- Up Migration

-- Issue 18, a loyalty program merchants run: reward lifecycle and points expiry on the wallet ledger, the
-- program's settings and issued rewards, and the program summary.

-- Ledger lines for every step of a reward and for expired points, each with its own `kind` (plain text since
-- 0100: merchant_adjustment, reward_issued, reward_redeemed, reward_voided, reward_expired, points_expired). A
-- reward's issue, void and expiry move no balance (0 points): they move the points locked by issued rewards,
-- signed in `locked_change`.
ALTER TABLE wallet_ledger ADD COLUMN locked_change bigint NOT NULL DEFAULT 0;
ALTER TABLE wallet_ledger ADD COLUMN reward_id text;
ALTER TABLE wallet_ledger ADD COLUMN issued_reward_id text;
-- The workspace's ledger in time order (the CSV export): WHERE tenant_id = $1 AND created_at >= $2 ORDER BY created_at, id.
CREATE INDEX wallet_ledger_tenant_time ON wallet_ledger (tenant_id, created_at, id);

ALTER TABLE wallets ADD COLUMN locked_points bigint NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN lifetime_expired bigint NOT NULL DEFAULT 0;

-- The `program` projection: each workspace's expiry policy and merchant adjustment limit, and issued rewards.
CREATE TABLE program_settings (
  tenant_id          text        PRIMARY KEY,
  policy_version     int         NOT NULL DEFAULT 0,
  earned_months      int,
  inactivity_months  int,
  retroactive        boolean     NOT NULL DEFAULT false,
  effective_from     timestamptz,
  adjustment_limit   bigint,
  updated_at         timestamptz NOT NULL
);
CREATE INDEX program_settings_expiring ON program_settings (tenant_id) WHERE earned_months IS NOT NULL OR inactivity_months IS NOT NULL;

CREATE TABLE issued_rewards (
  issued_reward_id  text        PRIMARY KEY,
  wallet_id         text        NOT NULL,
  tenant_id         text        NOT NULL,
  reward_id         text        NOT NULL,
  reward_name       text        NOT NULL,
  points            bigint      NOT NULL,
  status            text        NOT NULL CHECK (status IN ('issued', 'redeemed', 'voided', 'expired')),
  issued_at         timestamptz NOT NULL,
  expires_at        timestamptz NOT NULL,
  settled_at        timestamptz
);
CREATE INDEX issued_rewards_wallet ON issued_rewards (wallet_id, issued_at DESC);
-- The expiry run: rewards still issued past their time.
CREATE INDEX issued_rewards_due ON issued_rewards (expires_at) WHERE status = 'issued';

-- The `program_summary` projection: per workspace and UTC day, what moved; per customer and day, week and month,
-- what they earned and whether they were active (active and top customers of a range of whole intervals read
-- one row per customer and interval). `program_summary_lines` makes applying a line twice change nothing.
CREATE TABLE program_days (
  tenant_id         text   NOT NULL,
  day               date   NOT NULL,
  earned            bigint NOT NULL DEFAULT 0,
  redeemed          bigint NOT NULL DEFAULT 0,
  expired           bigint NOT NULL DEFAULT 0,
  adjusted          bigint NOT NULL DEFAULT 0,
  rewards_issued    int    NOT NULL DEFAULT 0,
  rewards_redeemed  int    NOT NULL DEFAULT 0,
  -- The day's change of all balances: outstanding points at a day's end are the sum of `net` up to it.
  net               bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day)
);
CREATE TABLE program_customer_periods (
  tenant_id    text    NOT NULL,
  -- 'day', 'week' (starting Monday) or 'month'; `period` is the interval's first day.
  granularity  text    NOT NULL CHECK (granularity IN ('day', 'week', 'month')),
  period       date    NOT NULL,
  consumer_id  text    NOT NULL,
  earned       bigint  NOT NULL DEFAULT 0,
  -- The customer earned or spent in the interval (a reversal or a correction alone is not their activity).
  active       boolean NOT NULL DEFAULT false,
  PRIMARY KEY (tenant_id, granularity, period, consumer_id)
);
CREATE TABLE program_summary_lines (
  id text PRIMARY KEY
);

-- Down Migration
DROP TABLE program_summary_lines;
DROP TABLE program_customer_periods;
DROP TABLE program_days;
DROP TABLE issued_rewards;
DROP TABLE program_settings;
ALTER TABLE wallets DROP COLUMN lifetime_expired;
ALTER TABLE wallets DROP COLUMN locked_points;
DROP INDEX wallet_ledger_tenant_time;
ALTER TABLE wallet_ledger DROP COLUMN issued_reward_id;
ALTER TABLE wallet_ledger DROP COLUMN reward_id;
ALTER TABLE wallet_ledger DROP COLUMN locked_change;
