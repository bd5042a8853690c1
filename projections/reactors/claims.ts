/**
 * Points held for a customer nobody could identify are claimed when a consumer verifies a matching identity
 * (or when such a consumer is already known as the purchase is stored), within
 * 90 days, once. The reactor keeps its own two tables in its checkpointed transaction, so both sides of the
 * match are consistent in feed order, whichever arrives first.
 */
import type { EventStore, RecordedEvent } from '../../domain/ports/event-store.ts';
import { purchaseDecider, purchaseStream, type PurchaseEvent } from '../../domain/payments/purchase.ts';
import type { UserEvent } from '../../domain/users/events.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import type { Projection, ProjectionContext } from '../projection.ts';

export interface ClaimsDependencies {
  store: EventStore;
  newId(): string;
  walletIdFor(tenantId: string, consumerId: string): string;
}

export function claimsReactor(deps: ClaimsDependencies): Projection {
  async function claim(paymentId: string, tenantId: string, consumerId: string, identityHash: string, cause: RecordedEvent) {
    await handleCommand(
      deps.store,
      purchaseStream(paymentId),
      purchaseDecider,
      { type: 'ClaimHeldPoints', consumerId, walletId: deps.walletIdFor(tenantId, consumerId), identityHash, now: cause.recordedAt.toISOString() },
      { newId: deps.newId, metadata: { correlationId: cause.metadata.correlationId ?? cause.id, causationId: cause.id, actor: 'system:claims' } },
    );
  }

  async function claimHeldFor(consumerId: string, hashes: string[], cause: RecordedEvent, { db, table }: ProjectionContext) {
    if (!hashes.length) return;
    const { rows } = await db.query<{ payment_id: string; tenant_id: string; identity_hash: string }>(
      `SELECT DISTINCT ON (payment_id) payment_id, tenant_id, identity_hash FROM ${table('held_points')}
        WHERE identity_hash = ANY($1) AND NOT claimed AND completed_at > $2::timestamptz - interval '90 days'
        ORDER BY payment_id`,
      [hashes, cause.recordedAt],
    );
    for (const row of rows) await claim(row.payment_id, row.tenant_id, consumerId, row.identity_hash, cause);
  }

  return {
    name: 'claims',
    tables: ['held_points', 'consumer_identities', 'claims_consumers'],
    async apply(events, context) {
      const { db, table } = context;
      for (const event of events) {
        const e = { type: event.type, data: event.data } as PurchaseEvent | UserEvent;
        switch (e.type) {
          case 'UserRegistered':
            if (e.data.role === 'consumer') {
              await db.query(`INSERT INTO ${table('claims_consumers')} (consumer_id) VALUES ($1) ON CONFLICT DO NOTHING`, [e.data.userId]);
            }
            break;
          case 'UserEmailVerified':
          case 'UserPhoneVerified': {
            // Only a verified identity claims, and it has one owner at a time: the last consumer to verify it.
            const hash = e.type === 'UserEmailVerified' ? e.data.emailHash : e.data.phoneHash;
            const consumer = await db.query(`SELECT 1 FROM ${table('claims_consumers')} WHERE consumer_id = $1`, [e.data.userId]);
            if (!consumer.rowCount) break;
            await db.query(`DELETE FROM ${table('consumer_identities')} WHERE identity_hash = $1`, [hash]);
            await db.query(`INSERT INTO ${table('consumer_identities')} (identity_hash, consumer_id) VALUES ($1, $2)`, [hash, e.data.userId]);
            await claimHeldFor(e.data.userId, [hash], event, context);
            break;
          }
          case 'UserPhoneChanged':
            // The new phone is unverified: the old one stops claiming, the new one claims nothing yet.
            await db.query(`DELETE FROM ${table('consumer_identities')} WHERE consumer_id = $1 AND identity_hash LIKE 'phone:%'`, [e.data.userId]);
            break;
          case 'UserPersonalDataErased':
            // An erased person is no longer matched by identity.
            await db.query(`DELETE FROM ${table('consumer_identities')} WHERE consumer_id = $1`, [e.data.userId]);
            await db.query(`DELETE FROM ${table('claims_consumers')} WHERE consumer_id = $1`, [e.data.userId]);
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
              `SELECT consumer_id, identity_hash FROM ${table('consumer_identities')} WHERE identity_hash = ANY($1)
                ORDER BY array_position($1::text[], identity_hash) LIMIT 1`,
              [e.data.identityHashes],
            );
            const match = rows[0];
            if (match) await claim(e.data.paymentId, e.data.tenantId, match.consumer_id, match.identity_hash, event);
            break;
          }
          case 'HeldPointsClaimed':
            await db.query(`UPDATE ${table('held_points')} SET claimed = true WHERE payment_id = $1`, [e.data.paymentId]);
            break;
          default:
            break;
        }
      }
    },
  };
}
