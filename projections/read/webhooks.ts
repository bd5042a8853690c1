/**
 * Queries over the webhook inbox (`pos_webhook_events_raw`, written by adapters/postgres/webhook-inbox.ts) for
 * operators: one received webhook, and pages of them. The statements name their columns as the view's fields and
 * compute what the answer derives (a webhook not processed yet and without an outcome is `pending`; a processed
 * one has no next attempt), so the rows are parsed by the view itself.
 */
import type pg from 'pg';
import { z } from 'zod';
import { cursorPage, decodeCursor, encodeCursor, timestamp, timestampColumn } from './views.ts';

/** One received webhook and its processing state. */
export const webhookView = z.object({
  eventId: z.string(),
  type: z.string(),
  merchantId: z.string(),
  tenantId: z.string().nullable(),
  objectId: z.string().nullable(),
  receivedAt: timestamp,
  processed: z.boolean(),
  processedAt: timestamp.nullable(),
  outcome: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z.number().int(),
  deliveries: z.number().int(),
  nextAttemptAt: timestamp.nullable(),
});
export type WebhookView = z.infer<typeof webhookView>;

/** A page of received webhooks, newest first. */
export const webhookPageView = cursorPage(webhookView);

const webhookRow = webhookView.extend({ receivedAt: timestampColumn, processedAt: timestampColumn.nullable(), nextAttemptAt: timestampColumn.nullable() });

const COLUMNS = `id AS "eventId", event_type AS type, merchant_id AS "merchantId", tenant_id AS "tenantId", object_id AS "objectId",
        received_at AS "receivedAt", processed, processed_at AS "processedAt",
        CASE WHEN outcome IS NULL AND NOT processed THEN 'pending' ELSE outcome END AS outcome, error, attempts, deliveries,
        CASE WHEN processed THEN NULL ELSE next_attempt_at END AS "nextAttemptAt"`;

/** Which webhooks: each filter given narrows the list (`outcome` `pending`: not processed yet, no outcome). */
export interface WebhookFilter {
  outcome?: string | undefined;
  tenantId?: string | undefined;
  type?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Opaque cursor from a previous page. */
  cursor?: string | undefined;
  limit: number;
}

/**
 * The cursor holds the row's `received_at` to the microsecond, as stored: at the answers' milliseconds, the rows of
 * one millisecond after a page's last were skipped (a burst recorded by one statement shares one `received_at`).
 */
const CURSOR_AT = `to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "cursorAt"`;

/** The webhook received with this event id, if any. */
export async function findWebhook(pool: pg.Pool, eventId: string): Promise<WebhookView | undefined> {
  const { rows } = await pool.query(`SELECT ${COLUMNS} FROM pos_webhook_events_raw WHERE id = $1`, [eventId]);
  return rows[0] ? webhookRow.parse(rows[0]) : undefined;
}

/**
 * Newest first, filtered, cursor-paginated. With `pendingOfTenant`, the tenant's list also holds the webhooks of its
 * connected merchant that no tenant was recorded on yet: a webhook is stored without one and gets it when processed,
 * so a merchant never saw the ones waiting (`pending`). Each part is read in `received_at` order from its own index
 * (the tenant's, `pos_webhook_events_raw_tenant`; the waiting rows, `pos_webhook_events_raw_waiting_merchant`,
 * migration 0420) and the two are merged: an `OR` of both would read every row of the tenant and sort them.
 */
export async function listWebhooks(pool: pg.Pool, filter: WebhookFilter, options: { pendingOfTenant?: boolean } = {}): Promise<z.infer<typeof webhookPageView>> {
  const params: unknown[] = [];
  const where: string[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.outcome) filter.outcome === 'pending' ? where.push('NOT processed AND outcome IS NULL') : add('outcome = ?', filter.outcome);
  if (filter.type) add('event_type = ?', filter.type);
  if (filter.from) add('received_at >= ?', filter.from);
  if (filter.to) add('received_at < ?', filter.to);
  if (filter.cursor) {
    const [at, id] = decodeCursor(filter.cursor);
    params.push(at, id);
    where.push(`(received_at, id) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  const scopes: string[] = [];
  if (filter.tenantId) {
    params.push(filter.tenantId);
    const tenant = `$${params.length}`;
    // A row gets its tenant when settled or failed (then `failed`): one with a tenant is never pending, so a list of
    // the pending reads the waiting rows alone (the tenant's part would walk all of its rows for none).
    if (!(options.pendingOfTenant && filter.outcome === 'pending')) scopes.push(`tenant_id = ${tenant}`);
    if (options.pendingOfTenant) {
      // The merchant the workspace holds now: a workspace that let its merchant go (revoked) keeps the row with its
      // merchant id, and must not see the waiting webhooks of the workspace that connected that merchant since.
      scopes.push(`tenant_id IS NULL AND NOT processed AND merchant_id = (SELECT merchant_id FROM pos_connections WHERE tenant_id = ${tenant} AND status <> 'revoked')`);
    }
  }
  params.push(filter.limit + 1);
  const limit = `LIMIT $${params.length}`;
  const select = (conditions: string[]) =>
    `SELECT ${COLUMNS}, ${CURSOR_AT} FROM pos_webhook_events_raw ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''}
      ORDER BY received_at DESC, id DESC ${limit}`;
  const statement =
    scopes.length > 1
      ? `${scopes.map((scope) => `(${select([scope, ...where])})`).join(' UNION ALL ')} ORDER BY "receivedAt" DESC, "eventId" DESC ${limit}`
      : select([...scopes, ...where]);
  const { rows } = await pool.query<{ cursorAt: string }>(statement, params);
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  const items = page.map((r) => webhookRow.parse(r));
  return { items, nextCursor: rows.length > filter.limit && last ? encodeCursor(last.cursorAt, items.at(-1)!.eventId) : null };
}
