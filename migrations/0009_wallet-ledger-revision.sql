-- Up Migration

-- A ledger line's place in its wallet: the event's revision in the wallet's stream. Lines used to be ordered by
-- (created_at, id), which misorders the lines of one append (they share created_at). Existing rows get their
-- place in that old order, which equals the stream order except within such an append; a rebuild of the
-- `wallets` projection (npm run rebuild -- wallets) writes the exact revisions.
ALTER TABLE wallet_ledger ADD COLUMN revision bigint;
UPDATE wallet_ledger l
   SET revision = o.n
  FROM (SELECT id, row_number() OVER (PARTITION BY wallet_id ORDER BY created_at, id) - 1 AS n FROM wallet_ledger) o
 WHERE o.id = l.id;
ALTER TABLE wallet_ledger ALTER COLUMN revision SET NOT NULL;
DROP INDEX wallet_ledger_page;
-- Newest-first keyset pages: WHERE wallet_id = $1 AND revision < cursor ORDER BY revision DESC.
CREATE UNIQUE INDEX wallet_ledger_page ON wallet_ledger (wallet_id, revision DESC);

-- Down Migration
DROP INDEX wallet_ledger_page;
CREATE INDEX wallet_ledger_page ON wallet_ledger (wallet_id, created_at DESC, id DESC);
ALTER TABLE wallet_ledger DROP COLUMN revision;
