-- Up Migration

-- Read models of wallets, both owned by the one `wallets` projection so that a balance and the ledger row
-- that explains it are written in the same transaction. The balance is always the sum of the wallet's
-- ledger points (points are signed: credits positive, reversals and redemptions negative).
CREATE TABLE wallets (
  wallet_id          text        PRIMARY KEY,
  tenant_id          text        NOT NULL,
  consumer_id        text        NOT NULL,
  points_balance     bigint      NOT NULL,
  lifetime_earned    bigint      NOT NULL,
  lifetime_redeemed  bigint      NOT NULL,
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL
);
CREATE INDEX wallets_tenant ON wallets (tenant_id);
CREATE INDEX wallets_consumer ON wallets (consumer_id);
CREATE UNIQUE INDEX wallets_tenant_consumer ON wallets (tenant_id, consumer_id);

-- One row per balance-changing event; `id` is the event id, so replaying an event inserts nothing.
CREATE TABLE wallet_ledger (
  id               text        PRIMARY KEY,
  wallet_id        text        NOT NULL,
  tenant_id        text        NOT NULL,
  entry_type       text        NOT NULL CHECK (entry_type IN ('credit', 'reversal', 'redemption', 'adjustment', 'claim')),
  points           bigint      NOT NULL,
  balance_after    bigint      NOT NULL,
  payment_id       text,
  refund_id        text,
  admin_id         text,
  reason           text,
  reference        text,
  idempotency_key  text,
  -- The event's global position in the feed (opaque; compare through the event store only).
  position         text        NOT NULL,
  -- When the event was recorded.
  created_at       timestamptz NOT NULL
);
-- Newest-first keyset pages: WHERE wallet_id = $1 AND (created_at, id) < cursor ORDER BY created_at DESC, id DESC.
CREATE INDEX wallet_ledger_page ON wallet_ledger (wallet_id, created_at DESC, id DESC);

-- Down Migration
DROP TABLE wallet_ledger;
DROP TABLE wallets;
