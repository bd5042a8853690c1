-- Up Migration

-- The phones a person had before their current one (a `PATCH /me` replaces it), so that erasure also empties the
-- webhook bodies naming them. Deleted with the row.
ALTER TABLE personal_data ADD COLUMN former_phones text[] NOT NULL DEFAULT '{}';

-- Down Migration
ALTER TABLE personal_data DROP COLUMN former_phones;
