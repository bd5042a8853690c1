/**
 * Points held for a customer nobody could identify are claimed when a consumer verifies a matching identity
 * (or when such a consumer is already known as the purchase is stored), within the
 * claim window (`CLAIM_WINDOW_DAYS`, the decider's, the last instant included), once. The matching reads the
 * `held_points` read model, which the runner has brought at least to the events handed here, so both sides of a
 * match are seen whichever arrives first. The purchase decider makes a repeated claim a no-op. Only an approved,
 * unerased consumer claims (the `users` read model, as ingestion credits only them): a suspended one's purchases
 * stay held, and are claimed on reinstatement if still within the window.
 */
import type { EventStore } from '../../domain/ports/event-store.ts';
import { CLAIM_WINDOW_DAYS, paymentDecider, paymentStream } from '../../domain/payments/payment.ts';
import { purchaseCompleted, purchaseCustomerLinked, purchaseIdentityAttached } from '../../domain/payments/events.ts';
import { userEmailVerified, userPhoneVerified, userReinstated } from '../../domain/users/events.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import type { CommandPath } from '../../domain/shared/command-path.ts';
import { assertNever } from '../../domain/shared/decider.ts';
import { eventCodec, type Decoded, type EventsOf } from '../../domain/shared/codec.ts';
import { reactor, type Reactor, type ReactorContext } from '../projection.ts';
import { heldPointsProjection } from '../held-points.ts';
import { usersProjection } from '../accounts.ts';
import { contactsKey, customerContactsOf } from '../../adapters/postgres/customer-contacts.ts';

export interface ClaimsDependencies {
  store: EventStore;
  newId(): string;
  /** This process's command path (queue, recent states, snapshots, retries). */
  commands: CommandPath;
  walletIdFor(tenantId: string, consumerId: string): string;
}

/** An identity verified, a purchase held for one (or linked to its customer after it completed), or a consumer reinstated. */
export const claimsEvents = eventCodec(undefined, userEmailVerified, userPhoneVerified, userReinstated, purchaseCompleted, purchaseIdentityAttached, purchaseCustomerLinked);

/** Joined to `consumer_identities c`: its consumer may claim (as ingestion credits: approved, not erased). */
const MAY_CLAIM = `JOIN users u ON u.id = c.consumer_id AND u.status = 'approved' AND NOT u.erased`;
type Cause = Decoded<EventsOf<typeof claimsEvents>>;

/** A walk-in's purchase held for nobody, or one Square linked to its customer after it completed. */
const holdsFor = (e: Cause): e is Extract<Cause, { type: 'PurchaseCompleted' | 'PurchaseCustomerLinked' }> =>
  (e.type === 'PurchaseCompleted' && e.data.outcome === 'stored_anonymous' && e.data.points > 0) || e.type === 'PurchaseCustomerLinked';

/** The held purchases of `events` (a walk-in's purchase, or an identity or a customer attached to one later) and their identities. */
const heldIn = (e: Cause) => (holdsFor(e) || e.type === 'PurchaseIdentityAttached' ? e.data.identityHashes : []);

/**
 * Who owns each identity of the batch's held purchases: one read for the batch (walk-ins were one read each). Claims
 * change no ownership, and the read model is at least at the batch's last event, so one read answers as one per
 * event did.
 */
async function ownersOf(events: readonly Cause[], { db }: ReactorContext): Promise<Map<string, string>> {
  const hashes = [...new Set(events.flatMap(heldIn))];
  const owners = new Map<string, string>();
  if (!hashes.length) return owners;
  const { rows } = await db.query<{ consumer_id: string; identity_hash: string }>(
    `SELECT c.identity_hash, c.consumer_id FROM consumer_identities c ${MAY_CLAIM} WHERE c.identity_hash = ANY($1) ORDER BY c.identity_hash, c.consumer_id`,
    [hashes],
  );
  for (const row of rows) if (!owners.has(row.identity_hash)) owners.set(row.identity_hash, row.consumer_id);
  return owners;
}

/**
 * A walk-in's purchase decided with its customer's contacts from before a change Square reported (the change's
 * webhook attached its identities to the held purchases the read model listed then; this one was not listed
 * yet, or got its customer only later, `PurchaseCustomerLinked`): the identities recorded at the change are attached now. Keyed by tenant and customer; one read a batch.
 */
async function attachRecordedContacts(deps: ClaimsDependencies, events: readonly Cause[], { db }: ReactorContext) {
  const held = events.flatMap((e) => (holdsFor(e) && e.data.customerId !== null ? [{ e, customerId: e.data.customerId }] : []));
  if (!held.length) return;
  const recorded = await customerContactsOf(db, held.map(({ e, customerId }) => ({ tenantId: e.data.tenantId, customerId })));
  for (const { e, customerId } of held) {
    const hashes = recorded.get(contactsKey(e.data.tenantId, customerId));
    if (!hashes?.some((h) => !e.data.identityHashes.includes(h))) continue;
    await handleCommand(
      deps.store,
      paymentStream(e.data.paymentId),
      paymentDecider,
      { type: 'AttachIdentity', customerId, identityHashes: hashes, now: e.recordedAt.toISOString(), source: 'customer-contacts' },
      { newId: deps.newId, path: deps.commands, metadata: { correlationId: e.metadata.correlationId ?? e.id, causationId: e.id, actor: 'system:claims' } },
    );
  }
}

export function claimsReactor(deps: ClaimsDependencies): Reactor {
  async function claim(paymentId: string, tenantId: string, consumerId: string, identityHash: string, cause: Cause) {
    await handleCommand(
      deps.store,
      paymentStream(paymentId),
      paymentDecider,
      { type: 'ClaimHeldPoints', consumerId, walletId: deps.walletIdFor(tenantId, consumerId), identityHash, now: cause.recordedAt.toISOString() },
      { newId: deps.newId, path: deps.commands, metadata: { correlationId: cause.metadata.correlationId ?? cause.id, causationId: cause.id, actor: 'system:claims' } },
    );
  }

  async function claimHeldFor(consumerId: string, hashes: string[], cause: Cause, { db }: ReactorContext) {
    if (!hashes.length) return;
    const { rows } = await db.query<{ payment_id: string; tenant_id: string; identity_hash: string }>(
      `SELECT DISTINCT ON (payment_id) payment_id, tenant_id, identity_hash FROM held_points
        WHERE identity_hash = ANY($1) AND NOT claimed AND completed_at >= $2::timestamptz - make_interval(secs => $3 * 86400)
        ORDER BY payment_id`,
      [hashes, cause.recordedAt, CLAIM_WINDOW_DAYS],
    );
    for (const row of rows) await claim(row.payment_id, row.tenant_id, consumerId, row.identity_hash, cause);
  }

  /** A held purchase whose identity a consumer has verified already is claimed by that consumer (its first identity that has an owner). */
  async function claimByKnownIdentity(paymentId: string, tenantId: string, hashes: readonly string[], owners: Map<string, string>, cause: Cause) {
    const hash = hashes.find((h) => owners.has(h));
    if (hash !== undefined) await claim(paymentId, tenantId, owners.get(hash)!, hash, cause);
  }

  return reactor({
    name: 'claims',
    events: claimsEvents,
    reads: [heldPointsProjection.name, usersProjection.name],
    async handle(events, context) {
      const owners = await ownersOf(events, context);
      for (const e of events) {
        switch (e.type) {
          case 'UserEmailVerified':
          case 'UserPhoneVerified': {
            // Only a verified identity claims, and only its owner (held_points has recorded who that is).
            const hash = e.type === 'UserEmailVerified' ? e.data.emailHash : e.data.phoneHash;
            const owner = await context.db.query(`SELECT 1 FROM consumer_identities c ${MAY_CLAIM} WHERE c.consumer_id = $1 AND c.identity_hash = $2`, [e.data.userId, hash]);
            if (owner.rowCount) await claimHeldFor(e.data.userId, [hash], e, context);
            break;
          }
          case 'UserReinstated': {
            // What was held while the consumer was suspended (their payments were not credited) is theirs again.
            const { rows } = await context.db.query<{ identity_hash: string }>(
              `SELECT c.identity_hash FROM consumer_identities c ${MAY_CLAIM} WHERE c.consumer_id = $1 ORDER BY c.identity_hash`,
              [e.data.userId],
            );
            await claimHeldFor(e.data.userId, rows.map((r) => r.identity_hash), e, context);
            break;
          }
          case 'PurchaseCompleted':
          case 'PurchaseIdentityAttached':
          case 'PurchaseCustomerLinked':
            // A walk-in's purchase, or an identity or a customer Square learnt after the sale: a consumer who already verified it claims at once.
            await claimByKnownIdentity(e.data.paymentId, e.data.tenantId, heldIn(e), owners, e);
            break;
          default:
            assertNever(e);
        }
      }
      await attachRecordedContacts(deps, events, context);
    },
  });
}
