/** Claiming and releasing a merchant for a tenant, on the merchant's reservation stream. */
import type { EventMetadata } from '../ports/event-store.ts';
import type { ConnectionsContext } from './context.ts';
import { MerchantAlreadyConnected } from './errors.ts';
import { claimStillInUse, type ConnectedState } from './events.ts';
import type { ReleaseReason } from './merchant-reservation.ts';

/** Claims the merchant for the tenant and returns the claim number; throws `MerchantAlreadyConnected`. */
export async function claimMerchant(c: ConnectionsContext, merchantId: string, tenantId: string, metadata: EventMetadata): Promise<number> {
  const claim = async () => {
    const result = await c.onReservation(merchantId, { type: 'ClaimMerchant', merchantId, tenantId, now: c.now() }, metadata);
    return result.state.lastClaim;
  };
  try {
    return await claim();
  } catch (error) {
    if (!(error instanceof MerchantAlreadyConnected) || !(await releaseIfStale(c, merchantId, metadata))) throw error;
    return claim();
  }
}

/**
 * A claim whose holder no longer uses it is released, conditional on the claim read: if the holder claimed again
 * meanwhile, nothing happens. Its release was lost (a crash between recording a revocation and releasing), or the
 * flow that made it never recorded it (see `claimStillInUse`). Returns whether the merchant may be free now.
 */
async function releaseIfStale(c: ConnectionsContext, merchantId: string, metadata: EventMetadata): Promise<boolean> {
  const reservation = await c.loadReservation(merchantId);
  if (reservation.status === 'free') return true;
  // Read after the reservation: a holder that claims again from here on makes the conditional release a no-op.
  const holder = await c.loadConnection(reservation.tenantId);
  if (claimStillInUse(holder, merchantId, { claim: reservation.lastClaim, claimedAt: reservation.claimedAt }, c.now())) return false;
  await releaseClaim(c, merchantId, reservation.tenantId, reservation.lastClaim, 'stale', metadata);
  return true;
}

export async function releaseClaim(
  c: ConnectionsContext,
  merchantId: string,
  tenantId: string,
  onlyClaim: number | null,
  reason: ReleaseReason,
  metadata: EventMetadata,
): Promise<void> {
  await c.onReservation(merchantId, { type: 'ReleaseMerchant', merchantId, tenantId, onlyClaim, reason, now: c.now() }, metadata);
}

/**
 * After a revocation: the merchant is released (if this authorization's claim is still the latest) and the
 * worthless tokens deleted: whatever authorization they belong to while the revoked one is still the latest (a
 * connect that failed after recording its authorization left tokens of an older one), else only the revoked
 * one's (a reconnect recorded since stores its own). Idempotent, so repeating a revocation completes one that was
 * interrupted.
 */
export async function cleanUpRevoked(c: ConnectionsContext, state: ConnectedState, metadata: EventMetadata): Promise<void> {
  await releaseClaim(c, state.merchantId, state.tenantId, state.merchantClaims[state.merchantId] ?? null, 'revoked', metadata);
  const latest = await c.loadConnection(state.tenantId);
  const superseded = latest.status !== 'not_connected' && latest.authorizationId !== state.authorizationId;
  await c.deps.vault.remove(state.tenantId, superseded ? state.authorizationId : null);
}
