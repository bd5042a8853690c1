-- Up Migration

-- The event log. The global order is (transaction_id, global_position): a sequence number alone is not
-- gap-safe, because a transaction can take a lower number and commit after a higher one became visible.
-- Readers of the feed only read below the oldest transaction still in progress (pg_snapshot_xmin), so an
-- event can never appear behind a position that a subscriber has already passed.
CREATE TABLE event_streams (
  stream_name text PRIMARY KEY,
  revision    bigint NOT NULL
);

CREATE TABLE events (
  transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
  global_position bigserial   NOT NULL,
  event_id        uuid        NOT NULL,
  stream_name     text        NOT NULL,
  stream_revision bigint      NOT NULL,
  event_type      text        NOT NULL,
  data            jsonb       NOT NULL,
  metadata        jsonb       NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (transaction_id, global_position),
  CONSTRAINT events_event_id_unique UNIQUE (event_id),
  CONSTRAINT events_stream_revision_unique UNIQUE (stream_name, stream_revision)
);

-- Appends one batch to one stream atomically, checking the expected revision under a row lock on the stream.
-- p_expected_kind: 'no_stream' | 'any' | 'stream_exists' | 'exact' (then p_expected_revision applies).
-- Returns status 'ok' with the stream's new revision and the last event's position, or 'conflict' with the
-- actual revision (-1 for no stream). A retried batch whose ids are already in the stream at the expected
-- place returns 'ok' with the original result and writes nothing (idempotent append after a lost reply).
CREATE FUNCTION append_events(
  p_stream text,
  p_expected_kind text,
  p_expected_revision bigint,
  p_ids uuid[],
  p_types text[],
  p_data jsonb[],
  p_metadata jsonb[]
) RETURNS TABLE (status text, current_revision bigint, last_transaction_id xid8, last_global_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_current bigint;
  v_count int := cardinality(p_ids);
  v_first_existing bigint;
  v_existing int;
  v_last record;
BEGIN
  SELECT e.stream_revision INTO v_first_existing
    FROM events e WHERE e.event_id = p_ids[1] AND e.stream_name = p_stream;
  IF FOUND THEN
    SELECT count(*) INTO v_existing FROM events e
      WHERE e.stream_name = p_stream AND e.event_id = ANY (p_ids)
        AND e.stream_revision BETWEEN v_first_existing AND v_first_existing + v_count - 1;
    IF v_existing = v_count AND (
         p_expected_kind = 'any'
      OR (p_expected_kind = 'no_stream' AND v_first_existing = 0)
      OR (p_expected_kind = 'stream_exists' AND v_first_existing > 0)
      OR (p_expected_kind = 'exact' AND v_first_existing = p_expected_revision + 1)) THEN
      SELECT e.transaction_id, e.global_position INTO v_last FROM events e
        WHERE e.stream_name = p_stream AND e.stream_revision = v_first_existing + v_count - 1;
      RETURN QUERY SELECT 'ok'::text, v_first_existing + v_count - 1, v_last.transaction_id, v_last.global_position;
      RETURN;
    END IF;
  END IF;

  SELECT s.revision INTO v_current FROM event_streams s WHERE s.stream_name = p_stream FOR UPDATE;
  IF NOT FOUND THEN
    IF p_expected_kind IN ('stream_exists', 'exact') THEN
      RETURN QUERY SELECT 'conflict'::text, -1::bigint, NULL::xid8, NULL::bigint;
      RETURN;
    END IF;
    INSERT INTO event_streams (stream_name, revision) VALUES (p_stream, -1) ON CONFLICT DO NOTHING;
    -- A concurrent creator may have won the insert: lock its row and check against it.
    SELECT s.revision INTO v_current FROM event_streams s WHERE s.stream_name = p_stream FOR UPDATE;
  END IF;

  IF (p_expected_kind = 'no_stream' AND v_current <> -1)
     OR (p_expected_kind = 'stream_exists' AND v_current = -1)
     OR (p_expected_kind = 'exact' AND v_current <> p_expected_revision) THEN
    RETURN QUERY SELECT 'conflict'::text, v_current, NULL::xid8, NULL::bigint;
    RETURN;
  END IF;

  INSERT INTO events (event_id, stream_name, stream_revision, event_type, data, metadata)
    SELECT i.id, p_stream, v_current + i.ord, i.type, i.data, i.metadata
      FROM unnest(p_ids, p_types, p_data, p_metadata) WITH ORDINALITY AS i(id, type, data, metadata, ord)
      ORDER BY i.ord;
  UPDATE event_streams SET revision = v_current + v_count WHERE stream_name = p_stream;

  SELECT e.transaction_id, e.global_position INTO v_last FROM events e
    WHERE e.stream_name = p_stream AND e.stream_revision = v_current + v_count;
  RETURN QUERY SELECT 'ok'::text, v_current + v_count, v_last.transaction_id, v_last.global_position;
END;
$$;

-- Projection checkpoints and status, one row per projection.
CREATE TABLE projection_checkpoints (
  name            text PRIMARY KEY,
  position        text,
  events_applied  bigint      NOT NULL DEFAULT 0,
  status          text        NOT NULL DEFAULT 'idle',
  last_error      text,
  error_position  text,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE projection_checkpoints;
DROP FUNCTION append_events(text, text, bigint, uuid[], text[], jsonb[], jsonb[]);
DROP TABLE events;
DROP TABLE event_streams;
