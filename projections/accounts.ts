/**
 * Read models of the accounts context: users (for search and admin lists), workspaces, and reward_rules
 * (the seed's table name). Each write is idempotent per event, so replaying a batch changes nothing.
 */
import type { RecordedEvent } from '../domain/ports/event-store.ts';
import type { UserEvent } from '../domain/users/events.ts';
import type { WorkspaceEvent } from '../domain/workspaces/workspace.ts';
import type { RuleSetEvent } from '../domain/rewards/rule-set.ts';
import type { Projection, ProjectionContext } from './projection.ts';

const asEvent = <E>(event: RecordedEvent) => ({ type: event.type, data: event.data }) as unknown as E;

export const usersProjection: Projection = {
  name: 'users',
  tables: ['users', 'identity_owners'],
  async apply(events, { db, table }: ProjectionContext) {
    const users = table('users');
    const owners = table('identity_owners');
    // The consumer who verified an identity last owns it from then on (only consumers own identities).
    const own = (identityHash: string, userId: string, since: string) =>
      db.query(
        `INSERT INTO ${owners} (identity_hash, consumer_id, since) SELECT $1, id, $3 FROM ${users} WHERE id = $2 AND role = 'consumer' AND NOT erased
         ON CONFLICT (identity_hash) DO UPDATE SET consumer_id = EXCLUDED.consumer_id, since = EXCLUDED.since`,
        [identityHash, userId, since],
      );
    for (const recorded of events) {
      const event = asEvent<UserEvent>(recorded);
      const at = recorded.recordedAt;
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
          break; // Not a user event.
      }
    }
  },
};

export const workspacesProjection: Projection = {
  name: 'workspaces',
  tables: ['workspaces'],
  async apply(events, { db, table }) {
    for (const recorded of events) {
      if (recorded.type !== 'WorkspaceProvisioned') continue;
      const { data } = asEvent<WorkspaceEvent>(recorded);
      await db.query(
        `INSERT INTO ${table('workspaces')} (tenant_id, owner_user_id, business_name, provisioned_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO NOTHING`,
        [data.tenantId, data.ownerUserId, data.businessName, data.provisionedAt],
      );
    }
  },
};

export const rewardRulesProjection: Projection = {
  name: 'reward_rules',
  tables: ['reward_rules'],
  async apply(events, { db, table }) {
    const rules = table('reward_rules');
    for (const recorded of events) {
      const event = asEvent<RuleSetEvent>(recorded);
      switch (event.type) {
        case 'RewardRuleCreated':
          await db.query(
            `INSERT INTO ${rules} (id, tenant_id, version, is_active, rule, created_at) VALUES ($1, $2, $3, false, $4, $5)
             ON CONFLICT (id) DO NOTHING`,
            [event.data.ruleId, event.data.tenantId, event.data.version, JSON.stringify(event.data.rule), event.data.createdAt],
          );
          break;
        case 'RewardRuleActivated':
          // Deactivate first: the single-active-version index is checked row by row.
          await db.query(`UPDATE ${rules} SET is_active = false WHERE tenant_id = $1 AND is_active AND id <> $2`, [
            event.data.tenantId,
            event.data.ruleId,
          ]);
          await db.query(`UPDATE ${rules} SET is_active = true, activated_at = $3 WHERE tenant_id = $1 AND id = $2`, [
            event.data.tenantId,
            event.data.ruleId,
            event.data.activatedAt,
          ]);
          break;
        default:
          break;
      }
    }
  },
};
