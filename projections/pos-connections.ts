/**
 * The `pos_connections` read model (the seed's name): one row per tenant with its Square connection's status,
 * merchant, scopes, token expiry, last refresh, last poll and last error. Each write sets values taken from the
 * event, so applying an event twice changes nothing.
 */
import { connectionEvents } from '../domain/connections/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import { projection } from './projection.ts';

/** A connection authorized: the row made or replaced; polling resumes for the same merchant, another is not polled yet. */
const upsertAuthorized = (t: string) => `INSERT INTO ${t} AS c (tenant_id, provider, merchant_id, business_name, status, scopes, locations, token_expires_at, authorized_at, updated_at, currency, country)
   VALUES ($1, 'square', $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10)
   ON CONFLICT (tenant_id) DO UPDATE SET
     merchant_id = EXCLUDED.merchant_id, business_name = EXCLUDED.business_name, status = 'active', scopes = EXCLUDED.scopes,
     currency = EXCLUDED.currency, country = EXCLUDED.country,
     locations = EXCLUDED.locations, token_expires_at = EXCLUDED.token_expires_at, authorized_at = EXCLUDED.authorized_at,
     last_refreshed_at = NULL, last_error_code = NULL, last_error = NULL, last_error_at = NULL, revoked_by = NULL, revoked_at = NULL,
     -- Polling resumes for the same merchant; another merchant has not been polled yet.
     last_polled_at = CASE WHEN c.merchant_id = EXCLUDED.merchant_id THEN c.last_polled_at END,
     last_poll_summary = CASE WHEN c.merchant_id = EXCLUDED.merchant_id THEN c.last_poll_summary END,
     updated_at = EXCLUDED.updated_at`;

/** The connection events, and `SquarePaymentsPolled` of the poll streams (the same type as on old connection streams). */
export const posConnectionsProjection = projection({
  name: 'pos_connections',
  // 2: a poll counts for the row of its merchant only (a previous merchant's late poll set the new connection's).
  version: 2,
  tables: ['pos_connections'],
  events: connectionEvents,
  async apply(events, { db, table }) {
    const t = table('pos_connections');
    for (const event of events) {
      const at = event.recordedAt;
      switch (event.type) {
        case 'SquareConnectionAuthorized': {
          const d = event.data;
          await db.query(
            upsertAuthorized(t),
            [d.tenantId, d.merchantId, d.businessName, d.scopes, JSON.stringify(d.locations), d.tokenExpiresAt, d.authorizedAt, at, d.currency, d.country],
          );
          break;
        }
        case 'SquareTokensRefreshed':
          await db.query(
            `UPDATE ${t} SET token_expires_at = $2, last_refreshed_at = $3, last_error_code = NULL, last_error = NULL, last_error_at = NULL, updated_at = $4
              WHERE tenant_id = $1`,
            [event.data.tenantId, event.data.tokenExpiresAt, event.data.refreshedAt, at],
          );
          break;
        case 'SquareTokenRefreshFailed':
          await db.query(
            `UPDATE ${t} SET status = CASE WHEN $5 THEN 'needs_reconnect' ELSE status END,
                    last_error_code = $2, last_error = $3, last_error_at = $4, updated_at = $6
              WHERE tenant_id = $1`,
            [event.data.tenantId, event.data.code, event.data.detail, event.data.failedAt, event.data.needsReconnect, at],
          );
          break;
        case 'SquareAccessRefused':
          await db.query(
            `UPDATE ${t} SET status = 'needs_reconnect', last_error_code = $2, last_error = $3, last_error_at = $4, updated_at = $5
              WHERE tenant_id = $1`,
            [event.data.tenantId, event.data.code, event.data.detail, event.data.refusedAt, at],
          );
          break;
        case 'SquareConnectionRevoked':
          await db.query(`UPDATE ${t} SET status = 'revoked', revoked_by = $2, revoked_at = $3, updated_at = $4 WHERE tenant_id = $1`, [
            event.data.tenantId,
            event.data.revokedBy,
            event.data.revokedAt,
            at,
          ]);
          break;
        case 'SquareTokenDecryptionFailed':
          await db.query(
            `UPDATE ${t} SET status = 'token_undecryptable', last_error_code = 'TOKEN_UNDECRYPTABLE',
                    last_error = 'The stored token was encrypted under key ' || $2 || ', which is not configured', last_error_at = $3, updated_at = $4
              WHERE tenant_id = $1`,
            [event.data.tenantId, event.data.keyId, event.data.detectedAt, at],
          );
          break;
        case 'SquareTokenDecryptionRecovered':
          await db.query(
            `UPDATE ${t} SET status = 'active', last_error_code = NULL, last_error = NULL, last_error_at = NULL, updated_at = $2 WHERE tenant_id = $1`,
            [event.data.tenantId, at],
          );
          break;
        case 'SquarePaymentsPolled':
          // A poll of the merchant the row names: a run that began before a switch records the previous merchant's.
          await db.query(`UPDATE ${t} SET last_polled_at = $2, last_poll_summary = $3, updated_at = $4 WHERE tenant_id = $1 AND merchant_id = $5`, [
            event.data.tenantId,
            event.data.polledAt,
            JSON.stringify(event.data.summary),
            at,
            event.data.merchantId,
          ]);
          break;
        default:
          assertNever(event);
      }
    }
  },
});
