-- Up Migration

-- A batch's append without a statement per stream (issue 12, measured with pg_stat_statements in bench:ingest).
--
-- Before, `append_events_many` ran four statements for each stream of the call after its lock: the head revision,
-- the request's event count and its first id (each a scan of the whole batch's arrays, so a batch of n streams did
-- n² work), and the retry probe by event id. A batch of the webhook worker names about a hundred streams: of the
-- 1,535 ms PostgreSQL spent in 109 batch statements of a 6,000-webhook burst, 380 ms went to the two array scans
-- and 95 ms to the per-stream probes. Now the heads are one statement (still after every lock, so its snapshot sees
-- what the previous holders committed), the counts and first ids one pass, the retry probe one join; only a stream
-- whose first event already exists (a retried request) is looked at further. Same answers, same errors, same locks.

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
  v_current bigint[];
  v_counts int[];
  v_first_ids uuid[];
  v_done bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_conflicts jsonb := '[]'::jsonb;
  v_i int;
  v_first_existing bigint;
  v_existing int;
  v_kind text;
  v_key int;
BEGIN
  -- Every stream's lock, in the order of the lock keys (the same order in every transaction, whatever the names and
  -- even when two names share a key, so no two calls deadlock); then the head revisions, read after the locks.
  FOR v_key IN SELECT DISTINCT hashtext(s.name) AS key FROM unnest(p_streams) AS s(name) ORDER BY key LOOP
    PERFORM pg_advisory_xact_lock(31250, v_key);
  END LOOP;
  -- One statement for every head (a backward index-only probe each), after the locks: its snapshot sees what the
  -- previous holders committed.
  SELECT array_agg(h.revision ORDER BY s.ord) INTO v_current
    FROM unnest(p_streams) WITH ORDINALITY AS s(name, ord)
    CROSS JOIN LATERAL (SELECT coalesce(max(e.stream_revision), -1) AS revision FROM events e WHERE e.stream_name = s.name) AS h;
  -- Each request's number of events and first event id, in one pass over the events.
  SELECT array_agg(coalesce(c.n, 0) ORDER BY r.ord), array_agg(c.first_id ORDER BY r.ord) INTO v_counts, v_first_ids
    FROM generate_series(1, v_n) AS r(ord)
    LEFT JOIN (SELECT i.req, count(*)::int AS n, (array_agg(i.id ORDER BY i.ord))[1] AS first_id
                 FROM unnest(p_requests, p_ids) WITH ORDINALITY AS i(req, id, ord) GROUP BY i.req) AS c ON c.req = r.ord;

  -- A retry of a request already written: its ids sit in the stream right after the expected revision. One probe of
  -- the event id index for all the requests; only the requests whose first event exists are looked at further.
  FOR v_i, v_first_existing IN
    SELECT s.ord::int, e.stream_revision
      FROM unnest(p_streams, v_first_ids) WITH ORDINALITY AS s(name, first_id, ord)
      JOIN events e ON e.event_id = s.first_id AND e.stream_name = s.name
  LOOP
    v_kind := p_expected_kinds[v_i];
    SELECT count(*) INTO v_existing FROM events e
      WHERE e.stream_name = p_streams[v_i]
        AND e.event_id IN (SELECT i.id FROM unnest(p_requests, p_ids) AS i(req, id) WHERE i.req = v_i)
        AND e.stream_revision BETWEEN v_first_existing AND v_first_existing + v_counts[v_i] - 1;
    IF v_existing = v_counts[v_i] AND (
         v_kind = 'any'
      OR (v_kind = 'no_stream' AND v_first_existing = 0)
      OR (v_kind = 'stream_exists' AND v_first_existing > 0)
      OR (v_kind = 'exact' AND v_first_existing = p_expected_revisions[v_i] + 1)) THEN
      v_done[v_i] := v_first_existing + v_counts[v_i] - 1;
    END IF;
  END LOOP;

  FOR v_i IN 1 .. v_n LOOP
    CONTINUE WHEN v_done[v_i] IS NOT NULL;
    v_kind := p_expected_kinds[v_i];
    IF (v_kind = 'no_stream' AND v_current[v_i] <> -1)
       OR (v_kind = 'stream_exists' AND v_current[v_i] = -1)
       OR (v_kind = 'exact' AND v_current[v_i] <> p_expected_revisions[v_i]) THEN
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
    SELECT s.ord::int, e.stream_revision, e.transaction_id, e.global_position
      FROM generate_series(1, v_n) AS s(ord)
      JOIN events e ON e.stream_name = p_streams[s.ord]
                   AND e.stream_revision = coalesce(v_done[s.ord], v_current[s.ord] + v_counts[s.ord])
     WHERE v_counts[s.ord] > 0
     ORDER BY s.ord;
END;
$$;

-- Down Migration

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
