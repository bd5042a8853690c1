-- Up Migration

-- Square OAuth tokens, one row per tenant, outside the event log. The tokens are sealed with AES-256-GCM
-- (tenant id as additional authenticated data); key_id names the key (a short hash of it) so rows written
-- under ENCRYPTION_KEY_PREVIOUS are still opened, and `npm run rotate-keys` finds the rows to re-encrypt.
CREATE TABLE square_token_vault (
  tenant_id         text        PRIMARY KEY,
  merchant_id       text        NOT NULL,
  authorization_id  text        NOT NULL,
  key_id            text        NOT NULL,
  iv                bytea       NOT NULL,
  ciphertext        bytea       NOT NULL,
  auth_tag          bytea       NOT NULL,
  expires_at        timestamptz NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX square_token_vault_key ON square_token_vault (key_id);

-- Nonces of OAuth states already used by a callback: a state is accepted once.
CREATE TABLE oauth_states (
  nonce       text        PRIMARY KEY,
  tenant_id   text        NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

-- Read model (projection `pos_connections`, the seed's name): a tenant's POS connection as the runbooks check it.
CREATE TABLE pos_connections (
  tenant_id          text        PRIMARY KEY,
  provider           text        NOT NULL DEFAULT 'square',
  merchant_id        text        NOT NULL,
  business_name      text,
  status             text        NOT NULL,
  scopes             text[]      NOT NULL,
  locations          jsonb       NOT NULL DEFAULT '[]',
  token_expires_at   timestamptz NOT NULL,
  authorized_at      timestamptz NOT NULL,
  last_refreshed_at  timestamptz,
  last_polled_at     timestamptz,
  last_poll_summary  jsonb,
  last_error_code    text,
  last_error         text,
  last_error_at      timestamptz,
  revoked_by         text,
  revoked_at         timestamptz,
  updated_at         timestamptz NOT NULL
);
CREATE INDEX pos_connections_merchant ON pos_connections (merchant_id);
CREATE INDEX pos_connections_status ON pos_connections (status);

-- Down Migration
DROP TABLE pos_connections;
DROP TABLE oauth_states;
DROP TABLE square_token_vault;
