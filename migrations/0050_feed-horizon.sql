-- Up Migration

-- The feed's horizon depends only on transactions that append events.
--
-- Before: the feed read below pg_snapshot_xmin(pg_current_snapshot()), the oldest transaction in progress on
-- the whole server. Any transaction left open, in any database of the cluster (on a shared server: another
-- service's), held every subscriber back.
--
-- Now: every transaction that writes events registers first, by taking a shared transaction-level advisory
-- lock (held until it ends, visible to every session in pg_locks), and its events carry an ordering key
-- (transaction_id) chosen at registration:
--   - registered before the transaction had an id (the usual case): its own id, assigned just after the lock;
--   - registered later (it had written something else first): the greater of its own id and the xmax of a
--     snapshot taken after the lock, so the key lies beyond every position any reader can have passed while
--     the transaction was not yet registered.
-- A reader whose statement ran with snapshot S passes only keys below event_feed_horizon(S): the oldest of S's
-- in-progress transactions that is registered now, or that has ended since S (it may have been registered,
-- and its events are invisible to S); with none, S's xmax. Registration is read before the ended check, and a
-- registered transaction keeps its lock until after it has ended, so no appender slips between the two.
-- Registration is the default of events.transaction_id, so every insert that leaves the column out registers,
-- whatever the path (append_events, append_events_many, a bulk load); no writer may set the column itself.
-- (Measured against the old append, interleaved: a BEFORE INSERT trigger doing the same gave 0.87-0.90x of its
-- throughput at concurrency 64; the default 0.95-1.06x at 16 and 64, within the run's noise.)
-- The appending transaction must run in READ COMMITTED when it registers late (the snapshot it takes must be
-- fresh); a late registration under REPEATABLE READ or SERIALIZABLE is refused.

-- (31249, 1…16): the two-key advisory locks of appending transactions (objsubid 2 in pg_locks), one of 16 by
-- backend, so that concurrent appenders do not all share one lock-table entry (no difference measured at 64).
-- Old readers (pg_snapshot_xmin) stay gap-safe with these keys: a key is never below its transaction's id.
CREATE VIEW event_appends_in_flight AS
  WITH locks AS MATERIALIZED (
    SELECT locktype, database, classid, objid, objsubid, virtualtransaction, pid, transactionid, mode, granted
      FROM pg_locks WHERE locktype IN ('advisory', 'transactionid'))
  SELECT a.pid, x.transactionid AS xid
    FROM locks a
    LEFT JOIN locks x ON x.virtualtransaction = a.virtualtransaction AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
   WHERE a.locktype = 'advisory' AND a.granted AND a.classid = 31249 AND a.objid BETWEEN 1 AND 16 AND a.objsubid = 2
     AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database());

-- The calling transaction's ordering key, registering it first if it is not yet (see above).
CREATE FUNCTION register_event_append() RETURNS xid8
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
  PERFORM pg_advisory_xact_lock_shared(31249, 1 + pg_backend_pid() % 16);
  IF v_own IS NULL THEN
    v_own := pg_current_xact_id();
  ELSE
    v_after := pg_snapshot_xmax(pg_current_snapshot());
    IF v_after > v_own THEN
      v_own := v_after;
    END IF;
  END IF;
  PERFORM set_config('tally.event_append_key', v_own::text, true);
  RETURN v_own;
END;
$$;

-- Before: pg_current_xact_id(). The first column, so it is evaluated before global_position's nextval().
ALTER TABLE events ALTER COLUMN transaction_id SET DEFAULT register_event_append();

-- The first key the feed must not pass, for a reader whose statement ran with snapshot p_snapshot.
CREATE FUNCTION event_feed_horizon(p_snapshot pg_snapshot) RETURNS xid8
LANGUAGE plpgsql AS $$
DECLARE
  v_appending xid[];
  v_horizon xid8;
BEGIN
  -- First who is registered now...
  SELECT coalesce(array_agg(a.xid) FILTER (WHERE a.xid IS NOT NULL), '{}') INTO v_appending FROM event_appends_in_flight a;
  -- ...then which of the snapshot's transactions are registered, or have ended since (in this order: see above).
  SELECT min(t) INTO v_horizon
    FROM pg_snapshot_xip(p_snapshot) AS t
   WHERE xid(t) = ANY (v_appending) OR pg_xact_status(t) IS DISTINCT FROM 'in progress';
  RETURN coalesce(v_horizon, pg_snapshot_xmax(p_snapshot));
END;
$$;

-- Down Migration
DROP FUNCTION event_feed_horizon(pg_snapshot);
ALTER TABLE events ALTER COLUMN transaction_id SET DEFAULT pg_current_xact_id();
DROP FUNCTION register_event_append();
DROP VIEW event_appends_in_flight;
