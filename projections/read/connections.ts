/** Queries over the `pos_connections` read model (and the webhook inbox, for the debug endpoint). Rows are parsed with zod. */
import type pg from 'pg';
import { z } from 'zod';
import { connectionLocation, merchantProfile, revokedBy, type ConnectionStatus } from '../../domain/connections/events.ts';
import { cursorPage, decodeIdCursor, encodeIdCursor, timestamp } from './views.ts';

/** The states a stored connection can be in. */
export const connectionStatus = z.enum(['active', 'needs_reconnect', 'token_undecryptable', 'revoked']);

const connectionRow = z.object({
  tenant_id: z.string(),
  provider: z.string(),
  merchant_id: z.string(),
  business_name: z.string().nullable(),
  currency: z.string().nullable(),
  country: z.string().nullable(),
  status: connectionStatus,
  scopes: z.array(z.string()),
  locations: z.array(connectionLocation),
  token_expires_at: z.date(),
  authorized_at: z.date(),
  last_refreshed_at: z.date().nullable(),
  last_polled_at: z.date().nullable(),
  last_poll_summary: z.record(z.string(), z.unknown()).nullable(),
  last_error_code: z.string().nullable(),
  last_error: z.string().nullable(),
  last_error_at: z.date().nullable(),
  revoked_by: revokedBy.nullable(),
  revoked_at: z.date().nullable(),
  updated_at: z.date(),
  /** The connection's last quiet poll (migration 0350), joined in: such polls append nothing the projection sees. */
  quiet_merchant_id: z.string().nullable().optional(),
  quiet_polled_at: z.date().nullable().optional(),
});

/** `pos_connections` with the tenant's last quiet poll (square_quiet_polls), which no event carries. */
const WITH_QUIET_POLL = `SELECT c.*, q.merchant_id AS quiet_merchant_id, q.polled_at AS quiet_polled_at
    FROM pos_connections c LEFT JOIN square_quiet_polls q ON q.tenant_id = c.tenant_id`;

/** A tenant's POS connection as `GET /api/v1/client/pos/square` shows it. */
export const posConnectionView = z.object({
  provider: z.string(),
  status: z.enum(['not_connected', ...connectionStatus.options]),
  merchantId: z.string().nullable(),
  ...merchantProfile,
  tokenExpiresAt: timestamp.nullable(),
  authorizedAt: timestamp.nullable(),
  lastRefreshedAt: timestamp.nullable(),
  lastPolledAt: timestamp.nullable(),
  lastPollSummary: z.record(z.string(), z.unknown()).nullable(),
  lastError: z.object({ code: z.string(), message: z.string().nullable(), at: timestamp.nullable() }).nullable(),
  revokedBy: revokedBy.nullable(),
  revokedAt: timestamp.nullable(),
});
export type PosConnectionView = z.infer<typeof posConnectionView>;

/** Every tenant's connection, as administrators list them. */
export const tenantConnectionView = posConnectionView.extend({ tenantId: z.string() });

const iso = (date: Date | null) => date?.toISOString() ?? null;
const laterOf = (a: Date | null, b: Date | null) => (a && b ? (a >= b ? a : b) : (a ?? b));

const NOT_CONNECTED: PosConnectionView = {
  provider: 'square',
  status: 'not_connected',
  merchantId: null,
  businessName: null,
  currency: null,
  country: null,
  scopes: [],
  locations: [],
  tokenExpiresAt: null,
  authorizedAt: null,
  lastRefreshedAt: null,
  lastPolledAt: null,
  lastPollSummary: null,
  lastError: null,
  revokedBy: null,
  revokedAt: null,
};

export async function posConnection(pool: pg.Pool, tenantId: string): Promise<PosConnectionView> {
  const { rows } = await pool.query(`${WITH_QUIET_POLL} WHERE c.tenant_id = $1`, [tenantId]);
  return rows[0] ? toView(rows[0]) : NOT_CONNECTED;
}

export const connectionsPageView = cursorPage(tenantConnectionView);

/**
 * Every tenant's connection (`GET /api/v1/admin/connections`), optionally of one status, by tenant id, a page of
 * `limit` at a time: the cursor holds the last row's tenant. The list stopped at 1,000 tenants, silently; then it was
 * paged on the time of the last change, which every poll, refresh and error moves, so a connection that changed
 * while an operator paged jumped above the cursor and was never listed. A tenant id never changes.
 */
export async function allConnections(
  pool: pg.Pool,
  filter: { status?: ConnectionStatus | undefined; cursor?: string | undefined; limit: number },
): Promise<z.infer<typeof connectionsPageView>> {
  const params: unknown[] = [];
  const where: string[] = [];
  if (filter.status) {
    params.push(filter.status);
    where.push(`c.status = $${params.length}`);
  }
  if (filter.cursor) {
    params.push(decodeIdCursor(filter.cursor));
    where.push(`c.tenant_id > $${params.length}`);
  }
  params.push(filter.limit + 1);
  const { rows } = await pool.query(
    `SELECT page.*, q.merchant_id AS quiet_merchant_id, q.polled_at AS quiet_polled_at FROM (
       SELECT c.* FROM pos_connections c ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY c.tenant_id LIMIT $${params.length}) page
     LEFT JOIN square_quiet_polls q ON q.tenant_id = page.tenant_id
     ORDER BY page.tenant_id`,
    params,
  );
  const items = rows.slice(0, filter.limit).map((row) => ({ tenantId: connectionRow.parse(row).tenant_id, ...toView(row) }));
  const last = rows.length > filter.limit ? items.at(-1) : undefined;
  return { items, nextCursor: last ? encodeIdCursor(last.tenantId) : null };
}

function toView(row: unknown): PosConnectionView {
  const r = connectionRow.parse(row);
  return {
    provider: r.provider,
    status: r.status,
    merchantId: r.merchant_id,
    businessName: r.business_name,
    currency: r.currency,
    country: r.country,
    scopes: r.scopes,
    locations: r.locations,
    tokenExpiresAt: iso(r.token_expires_at),
    authorizedAt: iso(r.authorized_at),
    lastRefreshedAt: iso(r.last_refreshed_at),
    lastPolledAt: iso(laterOf(r.last_polled_at, r.quiet_merchant_id === r.merchant_id ? (r.quiet_polled_at ?? null) : null)),
    lastPollSummary: r.last_poll_summary,
    lastError: r.last_error_code ? { code: r.last_error_code, message: r.last_error, at: iso(r.last_error_at) } : null,
    revokedBy: r.revoked_by,
    revokedAt: iso(r.revoked_at),
  };
}

/** Tenants whose connection has one of these statuses, oldest authorization first. */
export async function tenantsWithStatus(pool: pg.Pool, statuses: readonly ConnectionStatus[]): Promise<string[]> {
  const { rows } = await pool.query('SELECT tenant_id FROM pos_connections WHERE status = ANY($1) ORDER BY authorized_at, tenant_id', [statuses]);
  return rows.map((r) => z.object({ tenant_id: z.string() }).parse(r).tenant_id);
}

/**
 * When the newest webhook for this merchant arrived, from the webhook inbox (`pos_webhook_events_raw`, created by
 * the ingestion migration). Null when none arrived, or when that table does not exist yet.
 */
export async function lastWebhookReceivedAt(pool: pg.Pool, merchantId: string): Promise<string | null> {
  const { rows: exists } = await pool.query(`SELECT to_regclass('pos_webhook_events_raw') IS NOT NULL AS present`);
  if (!z.object({ present: z.boolean() }).parse(exists[0]).present) return null;
  const { rows } = await pool.query('SELECT max(received_at) AS at FROM pos_webhook_events_raw WHERE merchant_id = $1', [merchantId]);
  return iso(z.object({ at: z.date().nullable() }).parse(rows[0]).at);
}
