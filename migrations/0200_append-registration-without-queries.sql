-- Up Migration

-- The gap-safe registration of appends (migrations/0050_feed-horizon.sql), the same steps without queries.
--
-- register_event_append() runs as the default of events.transaction_id, once per inserted row: it is part of every
-- append. Its two PERFORMs (the shared advisory lock and the set_config remembering the key) each ran a query through
-- the executor (plpgsql evaluates an assignment of a simple expression in place, but runs PERFORM as a SELECT).
-- Now both are expressions: the lock is taken with pg_try_advisory_xact_lock_shared, which cannot fail here (no
-- session takes these keys in exclusive mode; if one ever did, the waiting PERFORM below still takes it), and
-- set_config's result is assigned. What it does, in which order, and what it registers are unchanged: the lock before
-- the transaction id is assigned (or before the snapshot of a late registration), the key remembered for the rest of
-- the transaction, the same refusal of a late registration outside READ COMMITTED. Measured in bench/store.ts
-- (diagnostics: "registration as in 0050" against the adapter as is).
CREATE OR REPLACE FUNCTION register_event_append() RETURNS xid8
LANGUAGE plpgsql AS $$
DECLARE
  v_key text := current_setting('tally.event_append_key', true);
  v_own xid8;
  v_after xid8;
BEGIN
  IF v_key IS NOT NULL AND v_key <> '' THEN
    RETURN v_key::xid8;
  END IF;
  v_own := pg_current_xact_id_if_assigned();
  IF v_own IS NOT NULL AND current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'events must be the first write of a % transaction, or be written in READ COMMITTED', current_setting('transaction_isolation')
      USING ERRCODE = '55000';
  END IF;
  IF NOT pg_try_advisory_xact_lock_shared(31249, 1 + pg_backend_pid() % 16) THEN
    PERFORM pg_advisory_xact_lock_shared(31249, 1 + pg_backend_pid() % 16);
  END IF;
  IF v_own IS NULL THEN
    v_own := pg_current_xact_id();
  ELSE
    v_after := pg_snapshot_xmax(pg_current_snapshot());
    IF v_after > v_own THEN
      v_own := v_after;
    END IF;
  END IF;
  v_key := set_config('tally.event_append_key', v_own::text, true);
  RETURN v_own;
END;
$$;

-- Down Migration
-- Nothing to undo: the function above does what 0050's did, step for step (its text is in
-- migrations/0050_feed-horizon.sql; bench/store.ts reads it from there to measure the two against each other).
