/** A connection's state as a snapshot (plain JSON already); parsed back with its schema. */
import { z } from 'zod';
import type { JsonValue } from '../ports/event-store.ts';
import type { StateSnapshots } from '../shared/decider.ts';
import { connectionLocation, revokedBy, type SquareConnectionState } from './events.ts';

const details = {
  tenantId: z.string(),
  merchantId: z.string(),
  authorizationId: z.string(),
  businessName: z.string().nullable(),
  currency: z.string().nullable(),
  country: z.string().nullable(),
  scopes: z.array(z.string()),
  locations: z.array(connectionLocation),
  tokenExpiresAt: z.string(),
  authorizedAt: z.string(),
  connectedSince: z.string(),
  lastRefreshedAt: z.string().nullable(),
  pollCursor: z.string().nullable(),
  lastPolledAt: z.string().nullable(),
  lastError: z.object({ code: z.string(), detail: z.string(), at: z.string() }).nullable(),
  merchantClaims: z.record(z.string(), z.number()),
};

const connectionStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('not_connected') }),
  z.object({ status: z.literal('active'), ...details }),
  z.object({ status: z.literal('needs_reconnect'), ...details }),
  z.object({ status: z.literal('token_undecryptable'), undecryptableKeyId: z.string(), ...details }),
  z.object({ status: z.literal('revoked'), revokedBy, revokedAt: z.string(), ...details }),
]);

/** Bump `version` when `SquareConnectionState` changes through a helper of evolveConnection (its own code is fingerprinted). */
export const connectionSnapshots: StateSnapshots<SquareConnectionState> = {
  // Version 2: the state carries the merchant's currency and country.
  version: 2,
  toJson: (state) => JSON.parse(JSON.stringify(state)) as JsonValue,
  fromJson: (json): SquareConnectionState => connectionStateSchema.parse(json),
};
