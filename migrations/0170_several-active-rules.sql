-- Up Migration

-- Several reward rules may be active together in a workspace (issue 19: their points add up). The index that
-- allowed one active version per tenant goes; the reward_rules projection (version 2) keeps is_active per rule.
-- Dropping an index takes a brief ACCESS EXCLUSIVE lock on reward_rules, a small table written only by its projection.
DROP INDEX IF EXISTS reward_rules_one_active;
CREATE INDEX IF NOT EXISTS reward_rules_active ON reward_rules (tenant_id) WHERE is_active;

-- Down Migration
DROP INDEX IF EXISTS reward_rules_active;
CREATE UNIQUE INDEX reward_rules_one_active ON reward_rules (tenant_id) WHERE is_active;
