-- Up Migration

-- Phone codes are limited per phone number too, across users (`MAX_CODES_PER_PHONE_PER_HOUR`): several accounts
-- naming one number cannot text it more than that in an hour. The send that would pass the limit sums the window's
-- sends of the other users' rows for the same phone hash, found through this index. A small table (one row per user
-- who asked for a code), so the index builds at once.
CREATE INDEX phone_verifications_phone ON phone_verifications (phone_hash);

-- Down Migration
DROP INDEX phone_verifications_phone;
