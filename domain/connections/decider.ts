import { unreachable } from '../shared/exhaustive.ts';
import { connectionSnapshots } from './snapshots.ts';
import type { Decider } from '../shared/decider.ts';
import { NotFound } from '../shared/errors.ts';
import {
  connectionEvents,
  evolveConnection,
  initialConnectionState,
  isLive,
  type ConnectionLocation,
  type RevokedBy,
  type SquareConnectionEvent,
  type SquareConnectionState,
} from './events.ts';

export type SquareConnectionCommand =
  | {
      type: 'AuthorizeConnection';
      tenantId: string;
      merchantId: string;
      authorizationId: string;
      merchantClaim: number;
      businessName: string | null;
      currency: string | null;
      country: string | null;
      scopes: string[];
      tokenExpiresAt: string;
      locations: ConnectionLocation[];
      by: string;
      now: string;
    }
  | { type: 'RecordTokenRefresh'; tenantId: string; authorizationId: string; tokenExpiresAt: string; now: string }
  | { type: 'RecordRefreshFailure'; tenantId: string; authorizationId: string; code: string; detail: string; needsReconnect: boolean; now: string }
  | { type: 'RecordAccessRefused'; tenantId: string; authorizationId: string; operation: string; code: string; detail: string; now: string }
  | { type: 'RecordDecryptionFailure'; tenantId: string; keyId: string; now: string }
  | { type: 'RecordDecryptionRecovery'; tenantId: string; keyId: string; now: string }
  | {
      type: 'RevokeConnection';
      tenantId: string;
      revokedBy: RevokedBy;
      /**
       * Only revoke if the connection is to this merchant (a webhook names the merchant it is about); `now` is then
       * when Square says the app was revoked, and a revocation from before the connection's authorization is about
       * an earlier one (delivered late: a backlog, a retry) and revokes nothing.
       */
      merchantId: string | null;
      by: string | null;
      now: string;
    };

/**
 * The grant an authorization event names (tenant, merchant, authorization), when `authorizationId` is the active
 * connection's: what is recorded about an authorization (a refresh, its failure, a refused access) is recorded only
 * then; one that raced a reconnect or a revocation is no longer ours (undefined).
 */
function activeGrant(state: SquareConnectionState, { tenantId, authorizationId }: { tenantId: string; authorizationId: string }) {
  return state.status === 'active' && state.authorizationId === authorizationId ? { tenantId, merchantId: state.merchantId, authorizationId } : undefined;
}

// Over 80 lines because it is one switch over every command of the connection, each case short and the switch exhaustive.
function decide(command: SquareConnectionCommand, state: SquareConnectionState): SquareConnectionEvent[] {
  switch (command.type) {
    case 'AuthorizeConnection': {
      // Reconnecting is always allowed: the new authorization replaces the old one. The previous merchant is one this
      // workspace still holds: a revoked connection's grant is gone at Square and its merchant released (perhaps held
      // by another workspace now, whose grant a revoke by merchant would cut).
      const previous = isLive(state) && state.merchantId !== command.merchantId ? state.merchantId : null;
      return [
        {
          type: 'SquareConnectionAuthorized',
          data: {
            tenantId: command.tenantId,
            merchantId: command.merchantId,
            authorizationId: command.authorizationId,
            merchantClaim: command.merchantClaim,
            businessName: command.businessName,
            currency: command.currency,
            country: command.country,
            scopes: command.scopes,
            tokenExpiresAt: command.tokenExpiresAt,
            locations: command.locations,
            previousMerchantId: previous,
            authorizedBy: command.by,
            authorizedAt: command.now,
          },
        },
      ];
    }
    case 'RecordTokenRefresh': {
      const grant = activeGrant(state, command);
      if (!grant) return [];
      return [{ type: 'SquareTokensRefreshed', data: { ...grant, tokenExpiresAt: command.tokenExpiresAt, refreshedAt: command.now } }];
    }
    case 'RecordRefreshFailure': {
      const grant = activeGrant(state, command);
      if (!grant) return [];
      const { code, detail, needsReconnect } = command;
      return [{ type: 'SquareTokenRefreshFailed', data: { ...grant, code, detail, needsReconnect, failedAt: command.now } }];
    }
    case 'RecordAccessRefused': {
      // Recorded once, and only against the authorization whose token was refused (a reconnect since is fine).
      const grant = activeGrant(state, command);
      if (!grant) return [];
      const { operation, code, detail } = command;
      return [{ type: 'SquareAccessRefused', data: { ...grant, operation, code, detail, refusedAt: command.now } }];
    }
    case 'RecordDecryptionFailure':
      // Recorded once: an undecryptable connection stays so until the key is fixed or the merchant reconnects.
      if (state.status !== 'active') return [];
      return [{ type: 'SquareTokenDecryptionFailed', data: { tenantId: command.tenantId, merchantId: state.merchantId, keyId: command.keyId, detectedAt: command.now } }];
    case 'RecordDecryptionRecovery':
      if (state.status !== 'token_undecryptable') return [];
      return [
        { type: 'SquareTokenDecryptionRecovered', data: { tenantId: command.tenantId, merchantId: state.merchantId, keyId: command.keyId, recoveredAt: command.now } },
      ];
    case 'RevokeConnection': {
      if (state.status === 'not_connected') throw new NotFound('Square connection');
      if (!isLive(state)) return [];
      if (command.merchantId !== null && command.merchantId !== state.merchantId) return [];
      if (command.merchantId !== null && revocationPredates(command.now, state.authorizedAt)) return [];
      return [
        {
          type: 'SquareConnectionRevoked',
          data: { tenantId: command.tenantId, merchantId: state.merchantId, revokedBy: command.revokedBy, revokedAt: command.now, by: command.by },
        },
      ];
    }
    default:
      return unreachable(command);
  }
}

/** A revocation Square timed before the current authorization (both ISO-8601, perhaps of different precision). */
export function revocationPredates(revokedAt: string, authorizedAt: string): boolean {
  return Date.parse(revokedAt) < Date.parse(authorizedAt);
}

export const squareConnectionDecider: Decider<SquareConnectionCommand, SquareConnectionEvent, SquareConnectionState> = {
  codec: connectionEvents,
  decide,
  evolve: evolveConnection,
  initialState: initialConnectionState,
  snapshots: connectionSnapshots,
};
