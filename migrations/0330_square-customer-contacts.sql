-- Up Migration

-- The identities (keyed hashes, never an email or a phone) Square last gave each customer in a `customer.created` /
-- `customer.updated` webhook. The webhook attaches them to the customer's held purchases that the `held_points`
-- read model lists; a purchase it could not see yet (committed, or still being decided, while the read model
-- lagged) takes them from here when the claims reactor meets it: one row per customer that changed, replaced by
-- its next change.
CREATE TABLE square_customer_contacts (
  tenant_id text NOT NULL,
  customer_id text NOT NULL,
  identity_hashes text[] NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, customer_id)
);

-- Down Migration
DROP TABLE square_customer_contacts;
