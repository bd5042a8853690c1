-- Up Migration

-- Room on every `wallets` page for the new version of a row: the wallets projection updates a balance for
-- nearly every event, and no index covers the columns it changes, so with free space on the page the update
-- is HOT (no new index entries, the old version pruned in place). Measured in bench/rebuild.ts
-- (rebuild-diagnosis.json, prototype A): the rebuild ran 1.46x faster.
-- Only pages written from now on keep the room; rows already written get it when they are moved or the
-- table is rewritten (a rebuild creates its fresh tables with the live tables' storage options,
-- projections/rebuild.ts). Takes a SHARE UPDATE EXCLUSIVE lock only: reads and writes go on.
ALTER TABLE wallets SET (fillfactor = 50);

-- Down Migration
ALTER TABLE wallets RESET (fillfactor);
