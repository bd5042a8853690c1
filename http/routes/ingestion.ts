/** Operators' view of ingestion: received webhooks with their outcomes, and a re-drive for failed ones. */
import type pg from 'pg';
import { z } from 'zod';
import type { WebhookInbox } from '../../adapters/postgres/webhook-inbox.ts';
import { connectionPollSummary, type ConnectionPollSummary } from '../../domain/payments/poll.ts';
import { findWebhook, listWebhooks, webhookPageView, webhookView } from '../../projections/read/webhooks.ts';
import { HttpError } from '../errors.ts';
import { tenantOf } from '../request.ts';
import { pageCursor, pageLimit, timestamp } from '../schemas.ts';
import { found, listRoute, requireWorkspace, route, type RouteSpec } from './table.ts';

/** Every outcome a stored webhook can have (and `pending`), as the list's filter takes them. */
export const OUTCOMES = [
  'pending',
  'credited',
  'stored_anonymous',
  'no_rule_no_credit',
  'zero_points',
  'before_program',
  'currency_mismatch',
  'same_order',
  'location_excluded',
  'identity_attached',
  'customer_linked',
  'duplicate',
  'recorded',
  'stale',
  'refund_applied',
  'refund_held',
  'refund_pending',
  'ignored',
  'no_connection',
  'revoked',
  'credit_refused',
  'failed',
] as const;

const isoDate = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2026-11-26T10:00:00Z' }).transform((v) => new Date(v));

/** The filters both webhook lists take; strict, as a misspelt filter would silently widen the list. */
const listFilters = z.object({
  outcome: z.enum(OUTCOMES, { error: `outcome must be one of ${OUTCOMES.join(', ')}` }).optional(),
  type: z.string().min(1).max(100).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  cursor: pageCursor(500),
  limit: pageLimit(200, 50),
});
const fromBeforeTo = (query: { from?: Date | undefined; to?: Date | undefined }) => !query.from || !query.to || query.from < query.to;

const listQuery = listFilters
  .extend({ tenantId: z.string().min(1).max(100).optional() })
  .strict()
  .refine(fromBeforeTo, { message: 'from must be before to', path: ['from'] });

const eventIdParams = z.object({ eventId: z.string().min(1).max(200) });

/**
 * A merchant's own webhooks: what each Square payment or refund came to (why a payment earned nothing, say). An
 * administrator names the workspace with `tenantId` (read by the access check, http/access.ts).
 */
const merchantListQuery = listFilters
  .extend({ tenantId: z.string().optional().meta({ description: 'Administrators only: the workspace whose webhooks to list.' }) })
  .strict()
  .refine(fromBeforeTo, { message: 'from must be before to', path: ['from'] });
/** As administrators see a webhook, less the processing error's text (it may name internals): the outcome says what came of it. */
const merchantWebhookView = webhookView.omit({ error: true });

const pollView = z.object({
  polledAt: timestamp,
  connections: z.array(connectionPollSummary),
});

/** Poll runs, one at a time across instances: `ran: false` (and nothing polled) while another run goes on. */
export interface PollRuns {
  runExclusively(): Promise<{ ran: true; result: { connections: ConnectionPollSummary[] } } | { ran: false }>;
}

/** Most failed connections named in the `poll completed` log line; the others are only counted. */
const LOGGED_FAILURES = 20;

/** What the `poll completed` log line carries: totals, and the failed or partial connections (at most 20 named). */
function pollTotals(connections: readonly ConnectionPollSummary[]) {
  const totals = { connections: connections.length, ok: 0, partial: 0, failed: 0, seen: 0, reread: 0, credited: 0, errors: 0 };
  const failures: { tenantId: string; merchantId: string; status: string; errors: number; firstError: string | undefined }[] = [];
  for (const c of connections) {
    totals[c.status]++;
    totals.seen += c.seen;
    totals.reread += c.reread;
    totals.credited += c.credited;
    totals.errors += c.errors.length;
    if (c.status !== 'ok' && failures.length < LOGGED_FAILURES) failures.push({ tenantId: c.tenantId, merchantId: c.merchantId, status: c.status, errors: c.errors.length, firstError: c.errors[0] });
  }
  return { ...totals, failures };
}

export function ingestionRoutes(deps: { pool: pg.Pool; inbox: WebhookInbox; wakeProcessor(): void; poll: PollRuns }): RouteSpec[] {
  return [
    route({
      method: 'post',
      path: '/api/v1/internal/cron/square-poll-payments',
      access: 'cron',
      summary:
        'Poll every active connection for payments and refunds since its cursor (header X-Cron-Secret). One run at a time across instances: 409 CONFLICT, and nothing polled, while another run goes on.',
      response: pollView,
      async handler({ ctx }) {
        const run = await deps.poll.runExclusively();
        if (!run.ran) {
          ctx.log.info('poll skipped: another poll run is under way');
          throw new HttpError('CONFLICT', 'A poll run is already under way (started by an earlier request, on this or another instance); this request polled nothing. The next cron tick after it ends polls again.');
        }
        ctx.log.info(pollTotals(run.result.connections), 'poll completed');
        return { status: 200, body: { polledAt: new Date().toISOString(), ...run.result } };
      },
    }),
    listRoute({
      path: '/api/v1/admin/webhooks',
      access: 'admin',
      summary: 'Received webhooks, newest first: event id, type, merchant, tenant, received, processed, outcome, error, attempts.',
      query: listQuery,
      response: webhookPageView,
      async read(query) {
        await requireWorkspace(deps.pool, query.tenantId);
        return listWebhooks(deps.pool, query);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/webhooks',
      access: 'tenant',
      summary:
        "The workspace's Square webhooks, newest first, with what each came to (`outcome`: credited, stored_anonymous, no_rule_no_credit, zero_points, location_excluded, …; `objectId`: the payment or refund): why a payment earned what it did.",
      query: merchantListQuery,
      response: z.object({ items: z.array(merchantWebhookView), nextCursor: z.string().nullable() }),
      async handler({ query, ctx }) {
        const page = await listWebhooks(deps.pool, { ...query, tenantId: tenantOf(ctx) }, { pendingOfTenant: true });
        return { status: 200, body: { items: page.items.map(({ error: _error, ...shown }) => shown), nextCursor: page.nextCursor } };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/admin/webhooks/:eventId',
      access: 'admin',
      summary: 'One received webhook and its processing state.',
      params: eventIdParams,
      response: webhookView,
      async handler({ params }) {
        return found(await findWebhook(deps.pool, params.eventId), 'No webhook with this event id was received');
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/admin/webhooks/:eventId/retry',
      access: 'admin',
      summary:
        'Re-drive a failed (or no_connection) webhook now. `nextAttemptAt`: when it is due (now); the attempt that follows moves it or settles the webhook (`attempts` restarts at 0).',
      params: eventIdParams,
      response: z.object({ eventId: z.string(), status: z.literal('scheduled'), nextAttemptAt: timestamp }),
      statuses: [202],
      async handler({ params: { eventId } }) {
        const result = await deps.inbox.retry(eventId);
        if (result === 'not_found') throw new HttpError('NOT_FOUND', 'No webhook with this event id was received');
        if (result === 'not_failed') throw new HttpError('CONFLICT', 'Only failed or no_connection webhooks are re-driven; this one was processed');
        if (result === 'emptied') {
          throw new HttpError('CONFLICT', 'Its body was emptied (retention or erasure), so it cannot be processed again; the payments poll covers its payment');
        }
        deps.wakeProcessor();
        return { status: 202, body: { eventId, status: 'scheduled' as const, nextAttemptAt: result.nextAttemptAt.toISOString() } };
      },
    }),
  ];
}
