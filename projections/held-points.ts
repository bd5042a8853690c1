/**
 * The `held_points` read model: points held for a customer nobody could identify (`held_points`, one row per
 * purchase and identity hash, until claimed), the consumers (`claims_consumers`) and their verified identities
 * (`consumer_identities`: only a verified identity claims, and it has one owner at a time, the last consumer to
 * verify it). The
 * `claims` reactor (reactors/claims.ts) matches the two; this projection only records them, so rebuilding it
 * issues no command. Every write is idempotent per event.
 */
import { heldPointsClaimed, purchaseCompleted, purchaseIdentityAttached } from '../domain/payments/events.ts';
import { userEmailVerified, userPersonalDataErased, userPhoneChanged, userPhoneVerified, userRegistered } from '../domain/users/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import { eventCodec } from '../domain/shared/codec.ts';
import { projection } from './projection.ts';

export const heldPointsEvents = eventCodec(
  undefined,
  userRegistered,
  userPhoneChanged,
  userEmailVerified,
  userPhoneVerified,
  userPersonalDataErased,
  purchaseCompleted,
  heldPointsClaimed,
  purchaseIdentityAttached,
);

export const heldPointsProjection = projection({
  name: 'held_points',
  // Version 2: identities are verified ones only, one owner each (issue 14); consumers listed apart.
  // Version 3: held purchases by Square customer, and identities attached to them later (issue 15).
  version: 3,
  tables: ['held_points', 'consumer_identities', 'claims_consumers', 'held_purchases_by_customer'],
  events: heldPointsEvents,
  async apply(events, { db, table }) {
    const identities = table('consumer_identities');
    const consumers = table('claims_consumers');
    const held = table('held_points');
    const byCustomer = table('held_purchases_by_customer');
    const hold = async (paymentId: string, tenantId: string, hashes: readonly string[], completedAt: string) => {
      for (const hash of hashes) {
        await db.query(`INSERT INTO ${held} (payment_id, tenant_id, identity_hash, completed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [
          paymentId,
          tenantId,
          hash,
          completedAt,
        ]);
      }
    };
    for (const e of events) {
      switch (e.type) {
        case 'UserRegistered':
          if (e.data.role === 'consumer') await db.query(`INSERT INTO ${consumers} (consumer_id) VALUES ($1) ON CONFLICT DO NOTHING`, [e.data.userId]);
          break;
        case 'UserEmailVerified':
        case 'UserPhoneVerified': {
          // Only a verified identity claims, and it has one owner at a time: the last consumer to verify it.
          const hash = e.type === 'UserEmailVerified' ? e.data.emailHash : e.data.phoneHash;
          const consumer = await db.query(`SELECT 1 FROM ${consumers} WHERE consumer_id = $1`, [e.data.userId]);
          if (!consumer.rowCount) break;
          await db.query(`DELETE FROM ${identities} WHERE identity_hash = $1`, [hash]);
          await db.query(`INSERT INTO ${identities} (identity_hash, consumer_id) VALUES ($1, $2)`, [hash, e.data.userId]);
          break;
        }
        case 'UserPhoneChanged':
          // The new phone is unverified: the old one stops claiming, the new one claims nothing yet.
          await db.query(`DELETE FROM ${identities} WHERE consumer_id = $1 AND identity_hash LIKE 'phone:%'`, [e.data.userId]);
          break;
        case 'UserPersonalDataErased':
          // An erased person is no longer matched by identity.
          await db.query(`DELETE FROM ${identities} WHERE consumer_id = $1`, [e.data.userId]);
          await db.query(`DELETE FROM ${consumers} WHERE consumer_id = $1`, [e.data.userId]);
          break;
        case 'PurchaseCompleted':
          if (e.data.outcome !== 'stored_anonymous' || e.data.points <= 0) break;
          await hold(e.data.paymentId, e.data.tenantId, e.data.identityHashes, e.data.completedAt);
          // Square may learn this customer's email or phone later (customer.updated): found by its customer id.
          if (e.data.customerId) {
            await db.query(`INSERT INTO ${byCustomer} (tenant_id, customer_id, payment_id, completed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [
              e.data.tenantId,
              e.data.customerId,
              e.data.paymentId,
              e.data.completedAt,
            ]);
          }
          break;
        case 'PurchaseIdentityAttached':
          await hold(e.data.paymentId, e.data.tenantId, e.data.identityHashes, e.data.completedAt);
          break;
        case 'HeldPointsClaimed':
          await db.query(`UPDATE ${held} SET claimed = true WHERE payment_id = $1`, [e.data.paymentId]);
          await db.query(`DELETE FROM ${byCustomer} WHERE tenant_id = $1 AND payment_id = $2`, [e.data.tenantId, e.data.paymentId]);
          break;
        default:
          assertNever(e);
      }
    }
  },
});
