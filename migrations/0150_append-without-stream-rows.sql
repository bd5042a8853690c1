-- Up Migration

-- Appends without the `event_streams` row (issue 16 item 5, measured in bench/store.ts).
--
-- Before: every append locked its stream's row in `event_streams` (FOR UPDATE, creating it for a new stream) and
-- updated its revision: one more row written per append (a heap tuple and its WAL, a dead tuple to vacuum), and
-- under contention a hot row. Now a stream's writers serialise on a transaction-level advisory lock,
-- (31250, hashtext(stream)) in pg_locks (two streams sharing a key only wait for each other), and the head
-- revision is read after the lock from the UNIQUE (stream_name, stream_revision) index that `events` already has.
-- Under READ COMMITTED each statement of the function takes a fresh snapshot, so the read after the lock sees what
-- the previous holder committed. The unique index still refuses a second event at one revision, whatever happens.
-- The adapter's one-event append with an exact or no_stream expectation is one prepared INSERT that takes the same
-- lock (adapters/eventstore/postgres.ts); these functions remain for everything else, and answer its conflicts.
--
-- Gap safety is untouched: every insert into `events` still registers through the column's default
-- (migrations/0050_feed-horizon.sql). `event_streams` is no longer written nor read; it stays, empty for new streams.

CREATE OR REPLACE FUNCTION append_events(
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

  -- The stream's lock, then its head revision (read after the lock: the previous holder has committed or aborted).
  PERFORM pg_advisory_xact_lock(31250, hashtext(p_stream));
  SELECT coalesce(max(e.stream_revision), -1) INTO v_current FROM events e WHERE e.stream_name = p_stream;

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

  SELECT e.transaction_id, e.global_position INTO v_last FROM events e
    WHERE e.stream_name = p_stream AND e.stream_revision = v_current + v_count;
  RETURN QUERY SELECT 'ok'::text, v_current + v_count, v_last.transaction_id, v_last.global_position;
END;
$$;

CREATE OR REPLACE FUNCTION append_events_many(
  p_streams text[],
  p_expected_kinds text[],
  p_expected_revisions bigint[],
  p_requests int[],
  p_ids uuid[],
  p_types text[],
  p_data jsonb[],
  p_metadata jsonb[]
) RETURNS TABLE (request int, current_revision bigint, last_transaction_id xid8, last_global_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_n int := coalesce(cardinality(p_streams), 0);
  v_current bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_done bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_conflicts jsonb := '[]'::jsonb;
  v_stream text;
  v_revision bigint;
  v_i int;
  v_first_id uuid;
  v_count int;
  v_first_existing bigint;
  v_existing int;
  v_kind text;
  v_expected bigint;
  v_key int;
BEGIN
  -- Every stream's lock, in the order of the lock keys (the same order in every transaction, whatever the names and
  -- even when two names share a key, so no two calls deadlock); then the head revisions, read after the locks.
  FOR v_key IN SELECT DISTINCT hashtext(s.name) AS key FROM unnest(p_streams) AS s(name) ORDER BY key LOOP
    PERFORM pg_advisory_xact_lock(31250, v_key);
  END LOOP;
  FOR v_i, v_stream IN SELECT s.ord::int, s.name FROM unnest(p_streams) WITH ORDINALITY AS s(name, ord) LOOP
    SELECT coalesce(max(e.stream_revision), -1) INTO v_revision FROM events e WHERE e.stream_name = v_stream;
    v_current[v_i] := v_revision;
  END LOOP;

  FOR v_i IN 1 .. v_n LOOP
    v_stream := p_streams[v_i];
    v_kind := p_expected_kinds[v_i];
    v_expected := p_expected_revisions[v_i];
    SELECT count(*) INTO v_count FROM unnest(p_requests) AS r(req) WHERE r.req = v_i;
    SELECT i.id INTO v_first_id FROM unnest(p_requests, p_ids) WITH ORDINALITY AS i(req, id, ord) WHERE i.req = v_i ORDER BY i.ord LIMIT 1;

    -- A retry of a request already written: its ids sit in the stream right after the expected revision.
    SELECT e.stream_revision INTO v_first_existing FROM events e WHERE e.event_id = v_first_id AND e.stream_name = v_stream;
    IF FOUND THEN
      SELECT count(*) INTO v_existing FROM events e
        WHERE e.stream_name = v_stream
          AND e.event_id IN (SELECT i.id FROM unnest(p_requests, p_ids) AS i(req, id) WHERE i.req = v_i)
          AND e.stream_revision BETWEEN v_first_existing AND v_first_existing + v_count - 1;
      IF v_existing = v_count AND (
           v_kind = 'any'
        OR (v_kind = 'no_stream' AND v_first_existing = 0)
        OR (v_kind = 'stream_exists' AND v_first_existing > 0)
        OR (v_kind = 'exact' AND v_first_existing = v_expected + 1)) THEN
        v_done[v_i] := v_first_existing + v_count - 1;
        CONTINUE;
      END IF;
    END IF;

    IF (v_kind = 'no_stream' AND v_current[v_i] <> -1)
       OR (v_kind = 'stream_exists' AND v_current[v_i] = -1)
       OR (v_kind = 'exact' AND v_current[v_i] <> v_expected) THEN
      v_conflicts := v_conflicts || jsonb_build_object('request', v_i, 'actual', v_current[v_i]);
    END IF;
  END LOOP;

  IF jsonb_array_length(v_conflicts) > 0 THEN
    RAISE EXCEPTION 'append_events_many: wrong expected revision' USING ERRCODE = 'TL409', DETAIL = v_conflicts::text;
  END IF;

  INSERT INTO events (event_id, stream_name, stream_revision, event_type, data, metadata)
    SELECT i.id, p_streams[i.req], v_current[i.req] + row_number() OVER (PARTITION BY i.req ORDER BY i.ord), i.type, i.data, i.metadata
      FROM unnest(p_requests, p_ids, p_types, p_data, p_metadata) WITH ORDINALITY AS i(req, id, type, data, metadata, ord)
     WHERE v_done[i.req] IS NULL
     ORDER BY i.ord;

  RETURN QUERY
    SELECT c.req, e.stream_revision, e.transaction_id, e.global_position
      FROM (SELECT r.req, count(*) AS n FROM unnest(p_requests) AS r(req) GROUP BY r.req) AS c
      JOIN events e ON e.stream_name = p_streams[c.req]
                   AND e.stream_revision = coalesce(v_done[c.req], v_current[c.req] + c.n)
     ORDER BY c.req;
END;
$$;

-- Down Migration
-- The functions as before, with `event_streams` brought up to date first (appends since the up migration skipped it).
INSERT INTO event_streams (stream_name, revision)
  SELECT stream_name, max(stream_revision) FROM events GROUP BY stream_name
  ON CONFLICT (stream_name) DO UPDATE SET revision = EXCLUDED.revision;

CREATE OR REPLACE FUNCTION append_events(
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

CREATE OR REPLACE FUNCTION append_events_many(
  p_streams text[],
  p_expected_kinds text[],
  p_expected_revisions bigint[],
  p_requests int[],
  p_ids uuid[],
  p_types text[],
  p_data jsonb[],
  p_metadata jsonb[]
) RETURNS TABLE (request int, current_revision bigint, last_transaction_id xid8, last_global_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_n int := coalesce(cardinality(p_streams), 0);
  v_current bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_done bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_conflicts jsonb := '[]'::jsonb;
  v_stream text;
  v_revision bigint;
  v_i int;
  v_first_id uuid;
  v_count int;
  v_first_existing bigint;
  v_existing int;
  v_kind text;
  v_expected bigint;
BEGIN
  -- Lock (creating where missing) every stream row, in name order.
  FOR v_i, v_stream IN SELECT s.ord::int, s.name FROM unnest(p_streams) WITH ORDINALITY AS s(name, ord) ORDER BY s.name LOOP
    SELECT s.revision INTO v_revision FROM event_streams s WHERE s.stream_name = v_stream FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO event_streams (stream_name, revision) VALUES (v_stream, -1) ON CONFLICT DO NOTHING;
      SELECT s.revision INTO v_revision FROM event_streams s WHERE s.stream_name = v_stream FOR UPDATE;
    END IF;
    v_current[v_i] := v_revision;
  END LOOP;

  FOR v_i IN 1 .. v_n LOOP
    v_stream := p_streams[v_i];
    v_kind := p_expected_kinds[v_i];
    v_expected := p_expected_revisions[v_i];
    SELECT count(*) INTO v_count FROM unnest(p_requests) AS r(req) WHERE r.req = v_i;
    SELECT i.id INTO v_first_id FROM unnest(p_requests, p_ids) WITH ORDINALITY AS i(req, id, ord) WHERE i.req = v_i ORDER BY i.ord LIMIT 1;

    -- A retry of a request already written: its ids sit in the stream right after the expected revision.
    SELECT e.stream_revision INTO v_first_existing FROM events e WHERE e.event_id = v_first_id AND e.stream_name = v_stream;
    IF FOUND THEN
      SELECT count(*) INTO v_existing FROM events e
        WHERE e.stream_name = v_stream
          AND e.event_id IN (SELECT i.id FROM unnest(p_requests, p_ids) AS i(req, id) WHERE i.req = v_i)
          AND e.stream_revision BETWEEN v_first_existing AND v_first_existing + v_count - 1;
      IF v_existing = v_count AND (
           v_kind = 'any'
        OR (v_kind = 'no_stream' AND v_first_existing = 0)
        OR (v_kind = 'stream_exists' AND v_first_existing > 0)
        OR (v_kind = 'exact' AND v_first_existing = v_expected + 1)) THEN
        v_done[v_i] := v_first_existing + v_count - 1;
        CONTINUE;
      END IF;
    END IF;

    IF (v_kind = 'no_stream' AND v_current[v_i] <> -1)
       OR (v_kind = 'stream_exists' AND v_current[v_i] = -1)
       OR (v_kind = 'exact' AND v_current[v_i] <> v_expected) THEN
      v_conflicts := v_conflicts || jsonb_build_object('request', v_i, 'actual', v_current[v_i]);
    END IF;
  END LOOP;

  IF jsonb_array_length(v_conflicts) > 0 THEN
    RAISE EXCEPTION 'append_events_many: wrong expected revision' USING ERRCODE = 'TL409', DETAIL = v_conflicts::text;
  END IF;

  INSERT INTO events (event_id, stream_name, stream_revision, event_type, data, metadata)
    SELECT i.id, p_streams[i.req], v_current[i.req] + row_number() OVER (PARTITION BY i.req ORDER BY i.ord), i.type, i.data, i.metadata
      FROM unnest(p_requests, p_ids, p_types, p_data, p_metadata) WITH ORDINALITY AS i(req, id, type, data, metadata, ord)
     WHERE v_done[i.req] IS NULL
     ORDER BY i.ord;

  UPDATE event_streams s SET revision = s.revision + c.n
    FROM (SELECT r.req, count(*) AS n FROM unnest(p_requests) AS r(req) GROUP BY r.req) AS c
   WHERE v_done[c.req] IS NULL AND s.stream_name = p_streams[c.req];

  RETURN QUERY
    SELECT c.req, e.stream_revision, e.transaction_id, e.global_position
      FROM (SELECT r.req, count(*) AS n FROM unnest(p_requests) AS r(req) GROUP BY r.req) AS c
      JOIN events e ON e.stream_name = p_streams[c.req]
                   AND e.stream_revision = coalesce(v_done[c.req], v_current[c.req] + c.n)
     ORDER BY c.req;
END;
$$;
