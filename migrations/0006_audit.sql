-- Up Migration

-- The audit trail (projection `audit`): one row per event of the global feed, with the columns the admin
-- filters on copied out of the event at projection time. `seq` is assigned by the projection in feed order
-- (positions are opaque strings, not sortable): every list is a keyset scan on (filter column, seq).
--
-- Time filters: `recorded_at` follows feed order except for an event whose transaction started before, but
-- committed after, an event recorded later. Such an event is marked `late` when it is projected. Among the
-- other rows recorded_at never decreases as seq grows, so a time bound becomes an exact seq bound through
-- audit_events_in_order (one index probe), and the few late rows are looked up on their own (audit_events_late).
CREATE TABLE audit_events (
  seq             bigint      PRIMARY KEY,
  event_id        uuid        NOT NULL,
  position        text        NOT NULL,
  stream          text        NOT NULL,
  revision        bigint      NOT NULL,
  type            text        NOT NULL,
  recorded_at     timestamptz NOT NULL,
  late            boolean     NOT NULL,
  actor           text,
  tenant_id       text,
  wallet_id       text,
  payment_id      text,
  correlation_id  text,
  causation_id    text,
  data            jsonb       NOT NULL,
  CONSTRAINT audit_events_event_id_unique UNIQUE (event_id)
);

-- One index per filter, (column, seq DESC), partial where the column is often null. Who-did-what and
-- tenant-by-type are the common pairs, and strongly correlated (an admin adjusts, a process
-- credits): they have their own indexes, so the planner never has to guess how the two filters combine.
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, seq DESC) WHERE tenant_id IS NOT NULL;
CREATE INDEX audit_events_tenant_type ON audit_events (tenant_id, type, seq DESC) WHERE tenant_id IS NOT NULL;
CREATE INDEX audit_events_stream ON audit_events (stream, seq DESC);
CREATE INDEX audit_events_type ON audit_events (type, seq DESC);
CREATE INDEX audit_events_actor ON audit_events (actor, seq DESC) WHERE actor IS NOT NULL;
CREATE INDEX audit_events_actor_type ON audit_events (actor, type, seq DESC) WHERE actor IS NOT NULL;
CREATE INDEX audit_events_wallet ON audit_events (wallet_id, seq DESC) WHERE wallet_id IS NOT NULL;
CREATE INDEX audit_events_payment ON audit_events (payment_id, seq DESC) WHERE payment_id IS NOT NULL;
CREATE INDEX audit_events_correlation ON audit_events (correlation_id, seq) WHERE correlation_id IS NOT NULL;
CREATE INDEX audit_events_in_order ON audit_events (recorded_at, seq) WHERE NOT late;
CREATE INDEX audit_events_late ON audit_events (seq DESC) WHERE late;

-- Down Migration
DROP TABLE audit_events;
