-- Up Migration

-- The seed runbooks' triage SQL (../shared/seed/runbooks.txt), as operators have it, runs verbatim:
--   * `pos_webhook_events_raw.id` and `wallets.id` are the tables' keys (renamed from event_id and wallet_id;
--     a rename is a catalogue change only: no rewrite, a brief ACCESS EXCLUSIVE lock);
--   * ledger points are unsigned, with `entry_type` 'credit' (adds to the balance) or 'debit' (takes from it),
--     and the kind of line in its own column `kind` (earn, reversal, redemption, adjustment, claim, and
--     whatever kinds come later: plain text, no check on it, so a new kind needs no migration).
-- Existing rows are converted in place: a signed line becomes its absolute value with the direction of its
-- sign; the old entry_type becomes the kind ('credit' was a purchase's earn). A rebuild of the `wallets`
-- projection writes the same.
ALTER TABLE pos_webhook_events_raw RENAME COLUMN event_id TO id;
ALTER TABLE wallets RENAME COLUMN wallet_id TO id;

ALTER TABLE wallet_ledger DROP CONSTRAINT wallet_ledger_entry_type_check;
ALTER TABLE wallet_ledger ADD COLUMN kind text;
UPDATE wallet_ledger
   SET kind = CASE entry_type WHEN 'credit' THEN 'earn' ELSE entry_type END,
       entry_type = CASE WHEN points < 0 THEN 'debit' ELSE 'credit' END,
       points = abs(points);
ALTER TABLE wallet_ledger ALTER COLUMN kind SET NOT NULL;
ALTER TABLE wallet_ledger ADD CONSTRAINT wallet_ledger_entry_type_check CHECK (entry_type IN ('credit', 'debit'));
ALTER TABLE wallet_ledger ADD CONSTRAINT wallet_ledger_points_unsigned CHECK (points >= 0);

-- Down Migration
ALTER TABLE wallet_ledger DROP CONSTRAINT wallet_ledger_points_unsigned;
ALTER TABLE wallet_ledger DROP CONSTRAINT wallet_ledger_entry_type_check;
UPDATE wallet_ledger
   SET points = CASE entry_type WHEN 'debit' THEN -points ELSE points END,
       entry_type = CASE kind WHEN 'earn' THEN 'credit' ELSE kind END;
ALTER TABLE wallet_ledger DROP COLUMN kind;
ALTER TABLE wallet_ledger ADD CONSTRAINT wallet_ledger_entry_type_check CHECK (entry_type IN ('credit', 'reversal', 'redemption', 'adjustment', 'claim'));
ALTER TABLE wallets RENAME COLUMN id TO wallet_id;
ALTER TABLE pos_webhook_events_raw RENAME COLUMN id TO event_id;
