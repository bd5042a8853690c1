-- Up Migration

-- Appends to several streams in one transaction, all or nothing (the event store port's appendMany).
-- One request per stream (p_streams distinct); the events of all requests come flattened, in request order,
-- with p_requests giving each event's 1-based request index.
--
-- Streams are locked in name order, whatever the request order, so two calls that touch the same streams
-- cannot deadlock. Every stream is checked before anything is written: if any expected revision does not hold,
-- it raises SQLSTATE 'TL409' with DETAIL a JSON array of {request, actual} (actual -1: no stream), every
-- conflicting request listed, and the statement (and the caller's transaction) writes nothing.
-- A request whose events are already in its stream at the expected place (a retry after a lost reply) is
-- answered with the original result and not written again, as append_events does.
-- Events are inserted in request order, so within the transaction's id their global_position follows it.
CREATE FUNCTION append_events_many(
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

-- Down Migration
DROP FUNCTION append_events_many(text[], text[], bigint[], int[], uuid[], text[], jsonb[], jsonb[]);
