/**
 * The `held_points` read model: points held for a customer nobody could identify (`held_points`, one row per
 * purchase and identity hash, until claimed) and the identities of known consumers (`consumer_identities`). The
 * `claims` reactor (reactors/claims.ts) matches the two; this projection only records them, so rebuilding it
 * issues no command. Every write is idempotent per event.
 */
import { heldPointsClaimed, purchaseCompleted } from '../domain/payments/events.ts';
import { userPersonalDataErased, userPhoneChanged, userRegistered } from '../domain/users/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import { eventCodec } from '../domain/shared/codec.ts';
import { projection } from './projection.ts';

export const heldPointsEvents = eventCodec(undefined, userRegistered, userPhoneChanged, userPersonalDataErased, purchaseCompleted, heldPointsClaimed);

export const heldPointsProjection = projection({
  name: 'held_points',
  version: 1,
  tables: ['held_points', 'consumer_identities'],
  events: heldPointsEvents,
  async apply(events, { db, table }) {
    const identities = table('consumer_identities');
    const held = table('held_points');
    const addIdentity = (hash: string, consumerId: string) =>
      db.query(`INSERT INTO ${identities} (identity_hash, consumer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [hash, consumerId]);
    for (const e of events) {
      switch (e.type) {
        case 'UserRegistered':
          if (e.data.role !== 'consumer') break;
          await addIdentity(e.data.emailHash, e.data.userId);
          if (e.data.phoneHash) await addIdentity(e.data.phoneHash, e.data.userId);
          break;
        case 'UserPhoneChanged': {
          if (!e.data.phoneHash) break;
          // Only consumers have identities to match; another user's phone is none of this model's business.
          const known = await db.query(`SELECT 1 FROM ${identities} WHERE consumer_id = $1 LIMIT 1`, [e.data.userId]);
          if (known.rowCount) await addIdentity(e.data.phoneHash, e.data.userId);
          break;
        }
        case 'UserPersonalDataErased':
          // An erased person is no longer matched by identity.
          await db.query(`DELETE FROM ${identities} WHERE consumer_id = $1`, [e.data.userId]);
          break;
        case 'PurchaseCompleted':
          if (e.data.outcome !== 'stored_anonymous' || e.data.points <= 0) break;
          for (const hash of e.data.identityHashes) {
            await db.query(`INSERT INTO ${held} (payment_id, tenant_id, identity_hash, completed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [
              e.data.paymentId,
              e.data.tenantId,
              hash,
              e.data.completedAt,
            ]);
          }
          break;
        case 'HeldPointsClaimed':
          await db.query(`UPDATE ${held} SET claimed = true WHERE payment_id = $1`, [e.data.paymentId]);
          break;
        default:
          assertNever(e);
      }
    }
  },
});
