/** The audit trail for administrators: the event log filtered and paged, one stream's history, one request's effects. */
import type pg from 'pg';
import { z } from 'zod';
import { auditPage, auditPageView, correlationHistory, streamHistory } from '../../projections/read/audit.ts';
import { NotFound } from '../../domain/shared/errors.ts';
import { eventTypes as types, id, MAX_SUBJECT, pageCursor, pageLimit, streamName, userId, uuid } from '../schemas.ts';
import { requireWorkspace, route, type RouteSpec } from './table.ts';

/** What the audit routes read from. */
export interface AuditRoutesDependencies {
  pool: pg.Pool;
}

const isoDate = (name: string) =>
  z.iso
    .datetime({ offset: true, error: `${name} must be an ISO 8601 date-time, e.g. 2026-11-26T10:00:00Z` })
    .transform((v) => new Date(v));


const listQuery = z
  .object({
    tenantId: id('tenantId').optional(),
    stream: streamName.optional(),
    type: types.optional(),
    // `user:<userId>` or `admin:<userId>`, a user id being any token subject.
    actor: userId('actor', MAX_SUBJECT + 'admin:'.length).optional(),
    walletId: uuid('walletId must be a wallet id (a uuid)').optional(),
    paymentId: id('paymentId').optional(),
    from: isoDate('from').optional(),
    to: isoDate('to').optional(),
    cursor: pageCursor(200),
    limit: pageLimit(200, 50),
  })
  .strict()
  .refine((q) => !q.from || !q.to || q.from < q.to, { message: 'from must be before to', path: ['from'] });

const historyQuery = z.object({ cursor: pageCursor(200), limit: pageLimit(1000, 500) }).strict();

/** The admin audit routes, read from the `audit` projection. */
export function auditRoutes(deps: AuditRoutesDependencies): RouteSpec[] {
  const { pool } = deps;
  return [
    route({
      method: 'get',
      path: '/api/v1/admin/audit',
      access: 'admin',
      summary:
        'The event log, newest first, filtered by any of tenantId, stream, type (repeatable or comma-separated), actor, walletId, paymentId, from, to (?cursor=&limit=1..200).',
      query: listQuery,
      response: auditPageView,
      async handler({ query }) {
        await requireWorkspace(pool, query.tenantId);
        const { type, cursor: after, limit: size, ...filter } = query;
        return { status: 200, body: await auditPage(pool, { ...filter, types: type }, { cursor: after, limit: size }) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/admin/audit/streams/:stream',
      access: 'admin',
      summary: "One stream's full history, oldest first, in pages (?cursor=&limit=1..1000).",
      params: z.object({ stream: streamName }),
      query: historyQuery,
      response: auditPageView.extend({ stream: z.string() }),
      async handler({ params: { stream }, query: page }) {
        const history = await streamHistory(pool, stream, page);
        if (!page.cursor && history.items.length === 0) throw new NotFound('Stream');
        return { status: 200, body: { stream, ...history } };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/admin/audit/correlations/:correlationId',
      access: 'admin',
      summary: 'Every event one request, webhook or process run caused (its correlation id, e.g. the X-Request-Id), in feed order.',
      params: z.object({ correlationId: id('correlationId') }),
      query: historyQuery,
      response: auditPageView.extend({ correlationId: z.string() }),
      async handler({ params: { correlationId }, query: page }) {
        // An X-Request-Id as the client sent it finds its request's trail (`request:<id>`); ours match as they are.
        let resolved = correlationId;
        let history = await correlationHistory(pool, resolved, page);
        if (history.items.length === 0) {
          const request = await correlationHistory(pool, `request:${correlationId}`, page);
          if (request.items.length) [resolved, history] = [`request:${correlationId}`, request];
        }
        if (!page.cursor && history.items.length === 0) throw new NotFound('Correlation id');
        return { status: 200, body: { correlationId: resolved, ...history } };
      },
    }),
  ];
}
