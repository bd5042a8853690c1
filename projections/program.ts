/**
 * The `program` read model: each workspace's expiry policy and merchant adjustment limit (`program_settings`),
 * and every issued reward with its status (`issued_rewards`). Every write sets absolute values or inserts once,
 * so an event applied twice changes nothing.
 */
import { expiryPolicySet, adjustmentLimitSet } from '../domain/program/events.ts';
import { rewardIssued, rewardRedeemed, rewardVoided, rewardExpired } from '../domain/wallets/events.ts';
import { eventCodec } from '../domain/shared/codec.ts';
import { assertNever } from '../domain/shared/decider.ts';
import { projection, type ProjectionContext } from './projection.ts';

const programReadEvents = eventCodec(undefined, expiryPolicySet, adjustmentLimitSet, rewardIssued, rewardRedeemed, rewardVoided, rewardExpired);

export const programProjection = projection({
  name: 'program',
  version: 1,
  tables: ['program_settings', 'issued_rewards'],
  events: programReadEvents,
  async apply(events, { db, table }: ProjectionContext) {
    const settings = table('program_settings');
    const issued = table('issued_rewards');
    for (const event of events) {
      const at = event.recordedAt.toISOString();
      switch (event.type) {
        case 'ExpiryPolicySet': {
          const d = event.data;
          await db.query(
            `INSERT INTO ${settings} AS s (tenant_id, policy_version, earned_months, inactivity_months, retroactive, effective_from, time_zone, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id) DO UPDATE SET policy_version = EXCLUDED.policy_version, earned_months = EXCLUDED.earned_months,
               inactivity_months = EXCLUDED.inactivity_months, retroactive = EXCLUDED.retroactive, effective_from = EXCLUDED.effective_from,
               time_zone = EXCLUDED.time_zone, updated_at = EXCLUDED.updated_at
             WHERE s.policy_version < EXCLUDED.policy_version`,
            [d.tenantId, d.version, d.earnedMonths, d.inactivityMonths, d.retroactive, d.effectiveFrom, d.timeZone, at],
          );
          break;
        }
        case 'AdjustmentLimitSet':
          await db.query(
            `INSERT INTO ${settings} (tenant_id, adjustment_limit, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET adjustment_limit = EXCLUDED.adjustment_limit, updated_at = EXCLUDED.updated_at`,
            [event.data.tenantId, event.data.limit, at],
          );
          break;
        case 'RewardIssued': {
          const d = event.data;
          await db.query(
            `INSERT INTO ${issued} (issued_reward_id, wallet_id, tenant_id, reward_id, reward_name, points, status, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'issued', $7, $8) ON CONFLICT (issued_reward_id) DO NOTHING`,
            [d.issuedRewardId, d.walletId, d.tenantId, d.rewardId, d.rewardName, d.points, d.issuedAt, d.expiresAt],
          );
          break;
        }
        case 'RewardRedeemed':
        case 'RewardVoided':
        case 'RewardExpired': {
          const status = event.type === 'RewardRedeemed' ? 'redeemed' : event.type === 'RewardVoided' ? 'voided' : 'expired';
          await db.query(`UPDATE ${issued} SET status = $2, settled_at = $3 WHERE issued_reward_id = $1`, [event.data.issuedRewardId, status, at]);
          break;
        }
        default:
          assertNever(event);
      }
    }
  },
});
