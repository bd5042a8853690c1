/**
 * The `held_points` read model: points held for a customer nobody could identify (`held_points`, one row per
 * purchase and identity hash, until claimed), the consumers (`claims_consumers`) and their verified identities
 * (`consumer_identities`: only a verified identity claims, and it has one owner at a time, the last consumer to
 * verify it). The
 * `claims` reactor (reactors/claims.ts) matches the two; this projection only records them, so rebuilding it
 * issues no command. Every write is idempotent per event.
 */
import { heldPointsClaimed, purchaseCompleted, purchaseCustomerLinked, purchaseIdentityAttached } from '../domain/payments/events.ts';
import { userEmailChanged, userEmailVerified, userPersonalDataErased, userPhoneChanged, userPhoneVerified, userRegistered } from '../domain/users/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import { eventCodec } from '../domain/shared/codec.ts';
import { insertRecordsetSql, recordsetParameter } from '../adapters/postgres/recordset.ts';
import { named } from '../adapters/postgres/named.ts';
import { projection } from './projection.ts';

export const heldPointsEvents = eventCodec(
  undefined,
  userRegistered,
  userPhoneChanged,
  userEmailChanged,
  userEmailVerified,
  userPhoneVerified,
  userPersonalDataErased,
  purchaseCompleted,
  heldPointsClaimed,
  purchaseIdentityAttached,
  purchaseCustomerLinked,
);

export const heldPointsProjection = projection({
  name: 'held_points',
  // Version 2: identities are verified ones only, one owner each (issue 14); consumers listed apart.
  // Version 3: held purchases by Square customer, and identities attached to them later (issue 15).
  // Version 4: `UserEmailChanged` (2026-12-07). Instances of the release before it skip that type during a rolling
  // deploy and their checkpoint passes it: rebuilt from the log, and the old runners stand down at the takeover.
  // Version 5: `PurchaseCustomerLinked`, a customer Square attached to a held purchase after it completed (2026-12-08).
  version: 5,
  tables: ['held_points', 'consumer_identities', 'claims_consumers', 'held_purchases_by_customer'],
  events: heldPointsEvents,
  async apply(events, { db, table }) {
    const identities = table('consumer_identities');
    const consumers = table('claims_consumers');
    const held = table('held_points');
    const byCustomer = table('held_purchases_by_customer');
    // A purchase held (one row per identity hash) and held by Square customer are inserted for a run of events at
    // once, one statement per table, before any other statement of the batch (the inserts are idempotent and
    // independent of each other; what deletes or updates rows runs after the inserts of the events before it).
    // Walk-ins are one payment in 20 of the ingestion benchmark's mix: two statements each before (bench:ingest).
    const holding: { payment_id: string; tenant_id: string; identity_hash: string; completed_at: string }[] = [];
    const holdingByCustomer: { tenant_id: string; customer_id: string; payment_id: string; completed_at: string }[] = [];
    const hold = (paymentId: string, tenantId: string, hashes: readonly string[], completedAt: string) => {
      for (const hash of hashes) holding.push({ payment_id: paymentId, tenant_id: tenantId, identity_hash: hash, completed_at: completedAt });
    };
    const flush = async () => {
      if (holding.length) await db.query(named(insertRecordsetSql(held, HOLD_COLUMNS)), [recordsetParameter(holding.splice(0))]);
      if (holdingByCustomer.length) await db.query(named(insertRecordsetSql(byCustomer, HOLD_BY_CUSTOMER_COLUMNS)), [recordsetParameter(holdingByCustomer.splice(0))]);
    };
    // Every statement but the held inserts: the inserts of the events before it first.
    const query = async (text: string, values: unknown[]) => {
      await flush();
      return db.query(text, values);
    };
    for (const e of events) {
      switch (e.type) {
        case 'UserRegistered':
          if (e.data.role === 'consumer') await query(`INSERT INTO ${consumers} (consumer_id) VALUES ($1) ON CONFLICT DO NOTHING`, [e.data.userId]);
          break;
        case 'UserEmailVerified':
        case 'UserPhoneVerified': {
          // Only a verified identity claims, and it has one owner at a time: the last consumer to verify it.
          const hash = e.type === 'UserEmailVerified' ? e.data.emailHash : e.data.phoneHash;
          const consumer = await query(`SELECT 1 FROM ${consumers} WHERE consumer_id = $1`, [e.data.userId]);
          if (!consumer.rowCount) break;
          await query(`DELETE FROM ${identities} WHERE identity_hash = $1`, [hash]);
          await query(`INSERT INTO ${identities} (identity_hash, consumer_id) VALUES ($1, $2)`, [hash, e.data.userId]);
          break;
        }
        case 'UserPhoneChanged':
        case 'UserEmailChanged': {
          // The new phone or email is unverified: the old one stops claiming, the new one claims once verified.
          const kind = e.type === 'UserPhoneChanged' ? 'phone:%' : 'email:%';
          await query(`DELETE FROM ${identities} WHERE consumer_id = $1 AND identity_hash LIKE $2`, [e.data.userId, kind]);
          break;
        }
        case 'UserPersonalDataErased':
          // An erased person is no longer matched by identity.
          await query(`DELETE FROM ${identities} WHERE consumer_id = $1`, [e.data.userId]);
          await query(`DELETE FROM ${consumers} WHERE consumer_id = $1`, [e.data.userId]);
          break;
        case 'PurchaseCompleted':
          if (e.data.outcome !== 'stored_anonymous' || e.data.points <= 0) break;
          hold(e.data.paymentId, e.data.tenantId, e.data.identityHashes, e.data.completedAt);
          // Square may learn this customer's email or phone later (customer.updated): found by its customer id.
          if (e.data.customerId) {
            holdingByCustomer.push({ tenant_id: e.data.tenantId, customer_id: e.data.customerId, payment_id: e.data.paymentId, completed_at: e.data.completedAt });
          }
          break;
        case 'PurchaseIdentityAttached':
          hold(e.data.paymentId, e.data.tenantId, e.data.identityHashes, e.data.completedAt);
          break;
        case 'PurchaseCustomerLinked':
          // A customer Square named after the sale: its contacts hold the points, and its later changes attach.
          hold(e.data.paymentId, e.data.tenantId, e.data.identityHashes, e.data.completedAt);
          if (e.data.customerId) {
            holdingByCustomer.push({ tenant_id: e.data.tenantId, customer_id: e.data.customerId, payment_id: e.data.paymentId, completed_at: e.data.completedAt });
          }
          break;
        case 'HeldPointsClaimed':
          await query(`UPDATE ${held} SET claimed = true WHERE payment_id = $1`, [e.data.paymentId]);
          await query(`DELETE FROM ${byCustomer} WHERE tenant_id = $1 AND payment_id = $2`, [e.data.tenantId, e.data.paymentId]);
          break;
        default:
          assertNever(e);
      }
    }
    await flush();
  },
});

const HOLD_COLUMNS = [['payment_id', 'text'], ['tenant_id', 'text'], ['identity_hash', 'text'], ['completed_at', 'timestamptz']] as const;
const HOLD_BY_CUSTOMER_COLUMNS = [['tenant_id', 'text'], ['customer_id', 'text'], ['payment_id', 'text'], ['completed_at', 'timestamptz']] as const;
