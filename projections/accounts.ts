/**
 * Read models of the accounts context: users (for search and admin lists), workspaces, and reward_rules
 * (the seed's table name). Each write is idempotent per event, so replaying a batch changes nothing.
 */
import { userEvents } from '../domain/users/events.ts';
import { workspaceEvents } from '../domain/workspaces/events.ts';
import { ruleSetEvents } from '../domain/rewards/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import { projection } from './projection.ts';

export const usersProjection = projection({
  name: 'users',
  // Version 2: verification flags, erasure and the owners of verified identities (issue 14).
  // Version 3: `UserEmailChanged` (2026-12-07). Instances of the release before it skip that type during a rolling
  // deploy and their checkpoint passes it: rebuilt from the log, and the old runners stand down at the takeover.
  version: 3,
  tables: ['users', 'identity_owners'],
  events: userEvents,
  async apply(events, { db, table }) {
    const users = table('users');
    const owners = table('identity_owners');
    // The consumer who verified an identity last owns it from then on (only consumers own identities).
    const own = (identityHash: string, userId: string, since: string) =>
      db.query(
        `INSERT INTO ${owners} (identity_hash, consumer_id, since) SELECT $1, id, $3 FROM ${users} WHERE id = $2 AND role = 'consumer' AND NOT erased
         ON CONFLICT (identity_hash) DO UPDATE SET consumer_id = EXCLUDED.consumer_id, since = EXCLUDED.since`,
        [identityHash, userId, since],
      );
    for (const event of events) {
      const at = event.recordedAt;
      switch (event.type) {
        case 'UserRegistered': {
          const d = event.data;
          await db.query(
            `INSERT INTO ${users} (id, role, status, business_name, email_hash, phone_hash, registered_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
            [d.userId, d.role, d.status, d.businessName, d.emailHash, d.phoneHash, d.registeredAt, at],
          );
          break;
        }
        case 'UserApproved':
          await db.query(`UPDATE ${users} SET status = 'approved', tenant_id = COALESCE($2, tenant_id), updated_at = $3 WHERE id = $1`, [
            event.data.userId,
            event.data.tenantId,
            at,
          ]);
          break;
        case 'UserSuspended':
          await db.query(`UPDATE ${users} SET status = 'suspended', updated_at = $2 WHERE id = $1`, [event.data.userId, at]);
          break;
        case 'UserReinstated':
          await db.query(`UPDATE ${users} SET status = $2, updated_at = $3 WHERE id = $1`, [event.data.userId, event.data.status, at]);
          break;
        case 'UserPhoneChanged':
          await db.query(`UPDATE ${users} SET phone_hash = $2, phone_verified = false, updated_at = $3 WHERE id = $1`, [event.data.userId, event.data.phoneHash, at]);
          await db.query(`DELETE FROM ${owners} WHERE consumer_id = $1 AND identity_hash LIKE 'phone:%'`, [event.data.userId]);
          break;
        case 'UserEmailChanged':
          // The former email stops matching; the new one matches once verified (a `UserEmailVerified` of it follows).
          await db.query(`UPDATE ${users} SET email_hash = $2, email_verified = false, updated_at = $3 WHERE id = $1`, [event.data.userId, event.data.emailHash, at]);
          await db.query(`DELETE FROM ${owners} WHERE consumer_id = $1 AND identity_hash LIKE 'email:%'`, [event.data.userId]);
          break;
        case 'UserEmailVerified':
          await db.query(`UPDATE ${users} SET email_verified = true, updated_at = $3 WHERE id = $1 AND email_hash = $2`, [event.data.userId, event.data.emailHash, at]);
          await own(event.data.emailHash, event.data.userId, event.data.verifiedAt);
          break;
        case 'UserPhoneVerified':
          await db.query(`UPDATE ${users} SET phone_verified = true, updated_at = $3 WHERE id = $1 AND phone_hash = $2`, [event.data.userId, event.data.phoneHash, at]);
          await own(event.data.phoneHash, event.data.userId, event.data.verifiedAt);
          break;
        case 'UserPersonalDataErased':
          // An erased person is matched by nothing any more: no purchase, no claim, no search.
          await db.query(`UPDATE ${users} SET erased = true, email_verified = false, phone_verified = false, updated_at = $2 WHERE id = $1`, [event.data.userId, at]);
          await db.query(`DELETE FROM ${owners} WHERE consumer_id = $1`, [event.data.userId]);
          break;
        default:
          assertNever(event);
      }
    }
  },
});

export const workspacesProjection = projection({
  name: 'workspaces',
  version: 1,
  tables: ['workspaces'],
  events: workspaceEvents,
  async apply(events, { db, table }) {
    for (const { data } of events) {
      await db.query(
        `INSERT INTO ${table('workspaces')} (tenant_id, owner_user_id, business_name, provisioned_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO NOTHING`,
        [data.tenantId, data.ownerUserId, data.businessName, data.provisionedAt],
      );
    }
  },
});

export const rewardRulesProjection = projection({
  name: 'reward_rules',
  // 2: several rules may be active together (issue 19).
  version: 2,
  tables: ['reward_rules'],
  events: ruleSetEvents,
  async apply(events, { db, table }) {
    const rules = table('reward_rules');
    for (const event of events) {
      switch (event.type) {
        case 'RewardRuleCreated':
          await db.query(
            `INSERT INTO ${rules} (id, tenant_id, version, is_active, rule, created_at) VALUES ($1, $2, $3, false, $4, $5)
             ON CONFLICT (id) DO NOTHING`,
            [event.data.ruleId, event.data.tenantId, event.data.version, JSON.stringify(event.data.rule), event.data.createdAt],
          );
          break;
        case 'RewardRuleActivated':
          // The rules this activation replaced (all the active ones, unless it joined them) stop being active.
          await db.query(`UPDATE ${rules} SET is_active = false WHERE tenant_id = $1 AND is_active AND id = ANY($2::text[])`, [
            event.data.tenantId,
            event.data.deactivatedRuleIds,
          ]);
          await db.query(`UPDATE ${rules} SET is_active = true, activated_at = $3 WHERE tenant_id = $1 AND id = $2`, [
            event.data.tenantId,
            event.data.ruleId,
            event.data.activatedAt,
          ]);
          break;
        case 'RewardRuleDeactivated':
          await db.query(`UPDATE ${rules} SET is_active = false WHERE tenant_id = $1 AND id = $2`, [event.data.tenantId, event.data.ruleId]);
          break;
        case 'RewardRulesRetired':
          await db.query(`UPDATE ${rules} SET is_active = false, retired_at = COALESCE(retired_at, $3) WHERE tenant_id = $1 AND version <= $2`, [
            event.data.tenantId,
            event.data.throughVersion,
            event.data.retiredAt,
          ]);
          break;
        default:
          assertNever(event);
      }
    }
  },
});
