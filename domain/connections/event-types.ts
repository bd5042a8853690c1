/**
 * Events of a tenant's Square connection (stream `square-connection-<tenantId>`). They record facts only:
 * tokens never enter the log (they live encrypted in the token vault, see `domain/ports/token-vault.ts`).
 * `events.ts` builds the family's codec from this module.
 */
import { z } from 'zod';
import { EventType } from '../shared/codec.ts';

/** Who ended a connection: Tally (`app`), the merchant in Square's dashboard, or Square. */
export const revokedBy = z.enum(['app', 'merchant', 'square']);
export type RevokedBy = z.output<typeof revokedBy>;

/** A location of the merchant, as Square lists it when the connection is authorized. */
export const connectionLocation = z.object({ id: z.string(), name: z.string().nullable(), status: z.string() });
export type ConnectionLocation = z.output<typeof connectionLocation>;

/** `authorizationId` identifies an authorization's tokens in the vault: a refresh only replaces tokens of the same one. */
export const connectionGrant = { tenantId: z.string(), merchantId: z.string(), authorizationId: z.string() };

const squareConnectionAuthorizedV1 = z.object({
    ...connectionGrant,
    /** The merchant reservation's claim number this authorization holds (see `merchant-reservation.ts`). */
    merchantClaim: z.number().int(),
    businessName: z.string().nullable(),
    scopes: z.array(z.string()),
    tokenExpiresAt: z.string(),
    locations: z.array(connectionLocation),
    /** The merchant this tenant was connected to before, when it was another one (its reservation is released). */
    previousMerchantId: z.string().nullable(),
    /** Who started the connect flow (`user:<id>` or `admin:<id>`). */
    authorizedBy: z.string(),
    authorizedAt: z.string(),
  });

/**
 * Version 2 (issue 15) records the merchant profile's currency (ISO 4217: the workspace's currency, in whose minor
 * units rules count) and country (ISO 3166 alpha-2: the default region of phone numbers). Version 1 did not: null,
 * unknown (no currency check, phones read as US numbers, as then).
 */
export const squareConnectionAuthorized = EventType.define('SquareConnectionAuthorized', squareConnectionAuthorizedV1).next(
  squareConnectionAuthorizedV1.extend({ currency: z.string().nullable(), country: z.string().nullable() }),
  (v1) => ({ ...v1, currency: null, country: null }),
);
export const squareTokensRefreshed = EventType.define('SquareTokensRefreshed', z.object({ ...connectionGrant, tokenExpiresAt: z.string(), refreshedAt: z.string() }));
export const squareTokenRefreshFailed = EventType.define(
  'SquareTokenRefreshFailed',
  z.object({
    ...connectionGrant,
    /** Square's error code (or ours: TIMEOUT, NETWORK, TOKEN_MISSING…). */
    code: z.string(),
    detail: z.string(),
    needsReconnect: z.boolean(),
    failedAt: z.string(),
  }),
);
export const squareAccessRefused = EventType.define(
  'SquareAccessRefused',
  z.object({
    ...connectionGrant,
    /** The merchant-token call Square refused (`payments.list`, `customers.get`…). */
    operation: z.string(),
    /** Square's code: ACCESS_TOKEN_REVOKED, UNAUTHORIZED or INSUFFICIENT_SCOPES. */
    code: z.string(),
    detail: z.string(),
    refusedAt: z.string(),
  }),
);
export const squareConnectionRevoked = EventType.define(
  'SquareConnectionRevoked',
  z.object({ tenantId: z.string(), merchantId: z.string(), revokedBy, revokedAt: z.string(), by: z.string().nullable() }),
);
export const squareTokenDecryptionFailed = EventType.define(
  'SquareTokenDecryptionFailed',
  z.object({ tenantId: z.string(), merchantId: z.string(), keyId: z.string(), detectedAt: z.string() }),
);
export const squareTokenDecryptionRecovered = EventType.define(
  'SquareTokenDecryptionRecovered',
  z.object({ tenantId: z.string(), merchantId: z.string(), keyId: z.string(), recoveredAt: z.string() }),
);

const pollRecord = z.object({
  tenantId: z.string(),
  merchantId: z.string(),
  /** Where the next poll of this merchant resumes (opaque to everything but `domain/payments/poll.ts`). */
  cursor: z.string().nullable(),
  polledAt: z.string(),
  summary: z.record(z.string(), z.json()),
});
export type PollRecord = z.output<typeof pollRecord>;

/** A finished poll: written on the tenant's poll stream (poll-log.ts), on the connection stream by older deployments. */
export const squarePaymentsPolled = EventType.define('SquarePaymentsPolled', pollRecord);
