-- Up Migration

-- Only a verified identity matches purchases or claims held points (issue 14, item 1).
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN phone_verified boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN erased boolean NOT NULL DEFAULT false;

-- Who owns an identity hash now: the consumer who verified it last (one owner per identity at a time).
-- Kept by the `users` projection; a later verifier takes over from its verification on, never before.
CREATE TABLE identity_owners (
  identity_hash  text PRIMARY KEY,
  consumer_id    text        NOT NULL,
  since          timestamptz NOT NULL
);
CREATE INDEX identity_owners_consumer ON identity_owners (consumer_id);

-- The claims reactor's list of consumers (its identities are now only verified ones, one owner each).
CREATE TABLE claims_consumers (
  consumer_id text PRIMARY KEY
);
INSERT INTO claims_consumers (consumer_id) SELECT DISTINCT consumer_id FROM consumer_identities ON CONFLICT DO NOTHING;
-- Identities recorded before verification existed were never proven: they stop matching until verified.
DELETE FROM consumer_identities;

-- Pending one-time phone codes: the code's keyed hash only, 10 minutes, counted attempts and sends.
CREATE TABLE phone_verifications (
  user_id            text PRIMARY KEY,
  phone_hash         text        NOT NULL,
  code_hash          text        NOT NULL,
  expires_at         timestamptz NOT NULL,
  attempts           int         NOT NULL DEFAULT 0,
  sends_in_window    int         NOT NULL DEFAULT 1,
  window_started_at  timestamptz NOT NULL
);

-- Down Migration
DROP TABLE phone_verifications;
DROP TABLE claims_consumers;
DROP TABLE identity_owners;
ALTER TABLE users DROP COLUMN erased;
ALTER TABLE users DROP COLUMN phone_verified;
ALTER TABLE users DROP COLUMN email_verified;
