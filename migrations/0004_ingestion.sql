-- Up Migration

-- The webhook inbox (name from the seed). A verified webhook is inserted here before Square gets its 2xx,
-- so an accepted webhook survives a crash; a worker then turns it into domain commands and records the
-- outcome. Raw payloads stay out of the immutable event log (they can carry buyer details).
CREATE TABLE pos_webhook_events_raw (
  event_id         text PRIMARY KEY,
  provider         text        NOT NULL DEFAULT 'square',
  merchant_id      text        NOT NULL,
  tenant_id        text,
  event_type       text        NOT NULL,
  object_id        text,
  raw_body         text        NOT NULL,
  headers          jsonb       NOT NULL DEFAULT '{}',
  received_at      timestamptz NOT NULL DEFAULT now(),
  deliveries       int         NOT NULL DEFAULT 1,
  processed        boolean     NOT NULL DEFAULT false,
  processed_at     timestamptz,
  outcome          text,
  error            text,
  attempts         int         NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  locked_until     timestamptz
);
CREATE INDEX pos_webhook_events_raw_due ON pos_webhook_events_raw (next_attempt_at) WHERE NOT processed;
CREATE INDEX pos_webhook_events_raw_received ON pos_webhook_events_raw (received_at DESC, event_id DESC);
CREATE INDEX pos_webhook_events_raw_tenant ON pos_webhook_events_raw (tenant_id, received_at DESC);
CREATE INDEX pos_webhook_events_raw_merchant ON pos_webhook_events_raw (merchant_id, received_at DESC);
CREATE INDEX pos_webhook_events_raw_outcome ON pos_webhook_events_raw (outcome, received_at DESC);

-- The claims reactor's own view, kept in its checkpointed transaction so it is consistent in feed order:
-- points held for unknown customers, and the identities of registered consumers.
CREATE TABLE held_points (
  payment_id     text        NOT NULL,
  tenant_id      text        NOT NULL,
  identity_hash  text        NOT NULL,
  completed_at   timestamptz NOT NULL,
  claimed        boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (payment_id, identity_hash)
);
CREATE INDEX held_points_identity ON held_points (identity_hash) WHERE NOT claimed;

CREATE TABLE consumer_identities (
  identity_hash  text NOT NULL,
  consumer_id    text NOT NULL,
  PRIMARY KEY (identity_hash, consumer_id)
);

-- Down Migration
DROP TABLE consumer_identities;
DROP TABLE held_points;
DROP TABLE pos_webhook_events_raw;
