/** Operators' view of ingestion: received webhooks with their outcomes, and a re-drive for failed ones. */
import { z } from 'zod';
import type { WebhookInbox } from '../../adapters/postgres/webhook-inbox.ts';
import type { pollService } from '../../domain/payments/poll.ts';
import { HttpError } from '../errors.ts';
import { params, query } from './accounts.ts';
import type { RouteSpec } from './table.ts';

const OUTCOMES = [
  'pending',
  'credited',
  'stored_anonymous',
  'no_rule_no_credit',
  'zero_points',
  'before_program',
  'currency_mismatch',
  'same_order',
  'identity_attached',
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

const listQuery = z
  .object({
    outcome: z.enum(OUTCOMES, { error: `outcome must be one of ${OUTCOMES.join(', ')}` }).optional(),
    tenantId: z.string().min(1).max(100).optional(),
    type: z.string().min(1).max(100).optional(),
    from: isoDate.optional(),
    to: isoDate.optional(),
    cursor: z.string().max(500).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();

export function ingestionRoutes(deps: { inbox: WebhookInbox; wakeProcessor(): void; poll: ReturnType<typeof pollService> }): RouteSpec[] {
  return [
    {
      method: 'post',
      path: '/api/v1/internal/cron/square-poll-payments',
      access: 'cron',
      summary: 'Poll every active connection for payments and refunds since its cursor (header X-Cron-Secret).',
      async handler(ctx) {
        const result = await deps.poll.pollAll();
        ctx.log.info({ connections: result.connections.map(({ errors, ...c }) => ({ ...c, errors: errors.length })) }, 'poll completed');
        ctx.body = { polledAt: new Date().toISOString(), ...result };
      },
    },
    {
      method: 'get',
      path: '/api/v1/admin/webhooks',
      access: 'admin',
      summary: 'Received webhooks, newest first: event id, type, merchant, tenant, received, processed, outcome, error, attempts.',
      async handler(ctx) {
        ctx.body = await deps.inbox.list(query(listQuery, ctx));
      },
    },
    {
      method: 'get',
      path: '/api/v1/admin/webhooks/:eventId',
      access: 'admin',
      summary: 'One received webhook and its processing state.',
      async handler(ctx) {
        const { eventId } = params(z.object({ eventId: z.string().min(1).max(200) }), ctx);
        const item = await deps.inbox.get(eventId);
        if (!item) throw new HttpError('NOT_FOUND', 'No webhook with this event id was received');
        ctx.body = item;
      },
    },
    {
      method: 'post',
      path: '/api/v1/admin/webhooks/:eventId/retry',
      access: 'admin',
      summary: 'Re-drive a failed (or no_connection) webhook now.',
      async handler(ctx) {
        const { eventId } = params(z.object({ eventId: z.string().min(1).max(200) }), ctx);
        const result = await deps.inbox.retry(eventId);
        if (result === 'not_found') throw new HttpError('NOT_FOUND', 'No webhook with this event id was received');
        if (result === 'not_failed') throw new HttpError('CONFLICT', 'Only failed or no_connection webhooks are re-driven; this one was processed');
        deps.wakeProcessor();
        ctx.status = 202;
        ctx.body = { eventId, status: 'scheduled' };
      },
    },
  ];
}
