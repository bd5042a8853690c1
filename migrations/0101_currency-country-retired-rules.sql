-- Up Migration

-- Issue 15. The workspace's currency and country, from the Square merchant profile at connect (null for a
-- connection recorded before they were); reward rule versions the merchant retired; and Square customers of
-- purchases whose points are held for nobody (the claims reactor attaches an email or phone Square learns later).
-- Adding nullable columns without defaults rewrites nothing.
ALTER TABLE pos_connections ADD COLUMN currency text;
ALTER TABLE pos_connections ADD COLUMN country text;
ALTER TABLE reward_rules ADD COLUMN retired_at timestamptz;

CREATE TABLE held_purchases_by_customer (
  tenant_id     text        NOT NULL,
  customer_id   text        NOT NULL,
  payment_id    text        NOT NULL,
  completed_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, customer_id, payment_id)
);

-- Down Migration
DROP TABLE held_purchases_by_customer;
ALTER TABLE reward_rules DROP COLUMN retired_at;
ALTER TABLE pos_connections DROP COLUMN country;
ALTER TABLE pos_connections DROP COLUMN currency;
