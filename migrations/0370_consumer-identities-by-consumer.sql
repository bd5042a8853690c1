-- Up Migration

-- The identities of one consumer, found by the consumer: a phone change, an erasure (the held_points projection
-- deletes the consumer's phone, or every identity) and a reinstatement (the claims reactor lists them) filtered
-- `consumer_identities` by `consumer_id` alone, which its primary key (identity_hash, consumer_id) cannot serve: a
-- scan of the whole table per such event, inside the projection's batch (measured on 3,000,000 rows: 440–727 ms
-- each). Built in the migration's transaction: writes to the table wait while it is read (a few seconds per million
-- rows); nothing on the webhooks' acknowledgement path writes it.
CREATE INDEX consumer_identities_consumer ON consumer_identities (consumer_id);

-- Down Migration
DROP INDEX consumer_identities_consumer;
