/**
 * Which tenant a Square merchant is connected to (stream `square-merchant-<merchantId>`): one at a time.
 * A connect flow claims the merchant before it records the authorization; a revocation releases it. Deciding
 * this on one stream with expected revisions (not by reading a read model) makes two tenants racing for the
 * same merchant impossible: one claim wins, the other is decided again and refused.
 *
 * Every claim, even by the holder itself, gets the next claim number, and a release can be made conditional on
 * one: a release decided on an older reading of the stream then does nothing (see `claimStillInUse`).
 */
import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import type { Decider } from '../shared/decider.ts';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';
import { MerchantAlreadyConnected } from './errors.ts';

const releaseReason = z.enum(['revoked', 'reconnected_elsewhere', 'abandoned', 'stale']);
export type ReleaseReason = z.output<typeof releaseReason>;

export const squareMerchantClaimed = EventType.define(
  'SquareMerchantClaimed',
  z.object({ merchantId: z.string(), tenantId: z.string(), claim: z.number().int(), claimedAt: z.string() }),
);
export const squareMerchantReleased = EventType.define(
  'SquareMerchantReleased',
  z.object({ merchantId: z.string(), tenantId: z.string(), claim: z.number().int(), reason: releaseReason, releasedAt: z.string() }),
);

export const merchantReservationEvents = eventCodec(
  { stream: 'square-merchant-<merchantId>', writtenBy: 'merchantReservationDecider' },
  squareMerchantClaimed,
  squareMerchantReleased,
);

export type MerchantReservationEvent = EventsOf<typeof merchantReservationEvents>;

export type MerchantReservationState =
  | { status: 'free'; lastClaim: number }
  | { status: 'claimed'; tenantId: string; lastClaim: number; claimedAt: string };

export type MerchantReservationCommand =
  | { type: 'ClaimMerchant'; merchantId: string; tenantId: string; now: string }
  | {
      type: 'ReleaseMerchant';
      merchantId: string;
      /** Released only while this tenant holds it… */
      tenantId: string;
      /** …and, when given, only if this is still its latest claim. */
      onlyClaim: number | null;
      reason: ReleaseReason;
      now: string;
    };

export const merchantReservationStream = (merchantId: string) => `square-merchant-${merchantId}`;

export const merchantReservationDecider: Decider<MerchantReservationCommand, MerchantReservationEvent, MerchantReservationState> = {
  codec: merchantReservationEvents,
  initialState: { status: 'free', lastClaim: 0 },
  decide(command, state) {
    switch (command.type) {
      case 'ClaimMerchant':
        if (state.status === 'claimed' && state.tenantId !== command.tenantId) throw new MerchantAlreadyConnected(command.merchantId);
        return [
          {
            type: 'SquareMerchantClaimed',
            data: { merchantId: command.merchantId, tenantId: command.tenantId, claim: state.lastClaim + 1, claimedAt: command.now },
          },
        ];
      case 'ReleaseMerchant':
        if (state.status !== 'claimed' || state.tenantId !== command.tenantId) return [];
        if (command.onlyClaim !== null && command.onlyClaim !== state.lastClaim) return [];
        return [
          {
            type: 'SquareMerchantReleased',
            data: { merchantId: command.merchantId, tenantId: command.tenantId, claim: state.lastClaim, reason: command.reason, releasedAt: command.now },
          },
        ];
      default:
        return unreachable(command);
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'SquareMerchantClaimed':
        return { status: 'claimed', tenantId: event.data.tenantId, lastClaim: event.data.claim, claimedAt: event.data.claimedAt };
      case 'SquareMerchantReleased':
        return { status: 'free', lastClaim: state.lastClaim };
      default:
        return unreachable(event);
    }
  },
};
