-- Up Migration

-- The emails a person had before their current one (registering again with a token that vouches for another email
-- replaces it), so that erasure also empties the webhook bodies naming them. Deleted with the row.
ALTER TABLE personal_data ADD COLUMN former_emails text[] NOT NULL DEFAULT '{}';

-- Down Migration
ALTER TABLE personal_data DROP COLUMN former_emails;
