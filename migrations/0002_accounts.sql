-- Up Migration

-- Personal data lives here, never in the event log: erasing a person deletes their row.
CREATE TABLE personal_data (
  user_id    text PRIMARY KEY,
  email      text,
  phone      text,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Read models (projections).
CREATE TABLE users (
  id             text PRIMARY KEY,
  role           text NOT NULL,
  status         text NOT NULL,
  tenant_id      text,
  business_name  text,
  email_hash     text NOT NULL,
  phone_hash     text,
  registered_at  timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL
);
CREATE INDEX users_email_hash ON users (email_hash);
CREATE INDEX users_phone_hash ON users (phone_hash) WHERE phone_hash IS NOT NULL;
CREATE INDEX users_tenant ON users (tenant_id) WHERE tenant_id IS NOT NULL;

CREATE TABLE workspaces (
  tenant_id       text PRIMARY KEY,
  owner_user_id   text NOT NULL,
  business_name   text NOT NULL,
  provisioned_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX workspaces_owner ON workspaces (owner_user_id);

-- Name and columns from the seed: id, tenant_id, version, is_active.
CREATE TABLE reward_rules (
  id          text PRIMARY KEY,
  tenant_id   text NOT NULL,
  version     int NOT NULL,
  is_active   boolean NOT NULL DEFAULT false,
  rule        jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  activated_at timestamptz,
  UNIQUE (tenant_id, version)
);
CREATE UNIQUE INDEX reward_rules_one_active ON reward_rules (tenant_id) WHERE is_active;

-- Down Migration
DROP TABLE reward_rules;
DROP TABLE workspaces;
DROP TABLE users;
DROP TABLE personal_data;
