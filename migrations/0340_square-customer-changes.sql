-- Up Migration

-- The last change of each Square customer a `customer.created` / `customer.updated` / `customer.deleted` webhook
-- told of, whichever instance handled it. Every instance caches customers' contacts (domain/payments/customer-cache.ts)
-- and the instance handling the webhook drops its own entry at once; the others read this table for the customers of
-- each batch before deciding it (one indexed read per batch) and drop an entry whose customer changed since they
-- last looked here. `change` grows with every change (a sequence, not a clock: instances' clocks differ).
CREATE SEQUENCE square_customer_change_seq;
CREATE TABLE square_customer_changes (
  tenant_id text NOT NULL,
  customer_id text NOT NULL,
  change bigint NOT NULL DEFAULT nextval('square_customer_change_seq'),
  PRIMARY KEY (tenant_id, customer_id)
);

-- Down Migration
DROP TABLE square_customer_changes;
DROP SEQUENCE square_customer_change_seq;
