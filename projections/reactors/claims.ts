/**
 * Points held for a customer nobody could identify are claimed when a consumer with a matching identity
 * registers or adds a phone (or when such a consumer is already known as the purchase is stored), within
 * 90 days, once. The reactor keeps its own two tables in its checkpointed transaction, so both sides of the
 * match are consistent in feed order, whichever arrives first.
 */
import type { EventStore } from '../../domain/ports/event-store.ts';
import { purchaseDecider, purchaseStream } from '../../domain/payments/purchase.ts';
import { heldPointsClaimed, purchaseCompleted } from '../../domain/payments/events.ts';
import { userPersonalDataErased, userPhoneChanged, userRegistered } from '../../domain/users/events.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import { assertNever } from '../../domain/shared/decider.ts';
import { eventCodec, type Decoded, type EventsOf } from '../../domain/shared/codec.ts';
import { projection, type Projection, type ProjectionContext } from '../projection.ts';

/** Identities appearing (and erased), held purchases, and their claims. */
const handled = eventCodec(undefined, userRegistered, userPhoneChanged, userPersonalDataErased, purchaseCompleted, heldPointsClaimed);
type Cause = Decoded<EventsOf<typeof handled>>;

export interface ClaimsDependencies {
  store: EventStore;
  newId(): string;
  walletIdFor(tenantId: string, consumerId: string): string;
}

export function claimsReactor(deps: ClaimsDependencies): Projection {
  async function claim(paymentId: string, tenantId: string, consumerId: string, identityHash: string, cause: Cause) {
    await handleCommand(
      deps.store,
      purchaseStream(paymentId),
      purchaseDecider,
      { type: 'ClaimHeldPoints', consumerId, walletId: deps.walletIdFor(tenantId, consumerId), identityHash, now: cause.recordedAt.toISOString() },
      { newId: deps.newId, metadata: { correlationId: cause.metadata.correlationId ?? cause.id, causationId: cause.id, actor: 'system:claims' } },
    );
  }

  async function claimHeldFor(consumerId: string, hashes: string[], cause: Cause, { db, table }: ProjectionContext) {
    if (!hashes.length) return;
    const { rows } = await db.query<{ payment_id: string; tenant_id: string; identity_hash: string }>(
      `SELECT DISTINCT ON (payment_id) payment_id, tenant_id, identity_hash FROM ${table('held_points')}
        WHERE identity_hash = ANY($1) AND NOT claimed AND completed_at > $2::timestamptz - interval '90 days'
        ORDER BY payment_id`,
      [hashes, cause.recordedAt],
    );
    for (const row of rows) await claim(row.payment_id, row.tenant_id, consumerId, row.identity_hash, cause);
  }

  return projection({
    name: 'claims',
    tables: ['held_points', 'consumer_identities'],
    events: handled,
    async apply(events, context) {
      const { db, table } = context;
      for (const e of events) {
        switch (e.type) {
          case 'UserRegistered': {
            if (e.data.role !== 'consumer') break;
            const hashes = [e.data.emailHash, ...(e.data.phoneHash ? [e.data.phoneHash] : [])];
            for (const hash of hashes) {
              await db.query(`INSERT INTO ${table('consumer_identities')} (identity_hash, consumer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [hash, e.data.userId]);
            }
            await claimHeldFor(e.data.userId, hashes, e, context);
            break;
          }
          case 'UserPhoneChanged': {
            const known = await db.query(`SELECT 1 FROM ${table('consumer_identities')} WHERE consumer_id = $1 LIMIT 1`, [e.data.userId]);
            if (!known.rowCount || !e.data.phoneHash) break;
            await db.query(`INSERT INTO ${table('consumer_identities')} (identity_hash, consumer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [e.data.phoneHash, e.data.userId]);
            await claimHeldFor(e.data.userId, [e.data.phoneHash], e, context);
            break;
          }
          case 'UserPersonalDataErased':
            // An erased person is no longer matched by identity.
            await db.query(`DELETE FROM ${table('consumer_identities')} WHERE consumer_id = $1`, [e.data.userId]);
            break;
          case 'PurchaseCompleted': {
            if (e.data.outcome !== 'stored_anonymous' || e.data.points <= 0 || !e.data.identityHashes.length) break;
            for (const hash of e.data.identityHashes) {
              await db.query(
                `INSERT INTO ${table('held_points')} (payment_id, tenant_id, identity_hash, completed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
                [e.data.paymentId, e.data.tenantId, hash, e.data.completedAt],
              );
            }
            const { rows } = await db.query<{ consumer_id: string; identity_hash: string }>(
              `SELECT consumer_id, identity_hash FROM ${table('consumer_identities')} WHERE identity_hash = ANY($1) ORDER BY consumer_id LIMIT 1`,
              [e.data.identityHashes],
            );
            const match = rows[0];
            if (match) await claim(e.data.paymentId, e.data.tenantId, match.consumer_id, match.identity_hash, e);
            break;
          }
          case 'HeldPointsClaimed':
            await db.query(`UPDATE ${table('held_points')} SET claimed = true WHERE payment_id = $1`, [e.data.paymentId]);
            break;
          default:
            assertNever(e);
        }
      }
    },
  });
}
