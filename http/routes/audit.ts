/** The audit trail for administrators: the event log filtered and paged, one stream's history, one request's effects. */
import type pg from 'pg';
import { z } from 'zod';
import { auditPage, correlationHistory, streamHistory } from '../../projections/read/audit.ts';
import { NotFound } from '../../domain/shared/errors.ts';
import { params, query } from './accounts.ts';
import type { RouteSpec } from './table.ts';

/** What the audit routes read from. */
export interface AuditRoutesDependencies {
  pool: pg.Pool;
}

const MAX_TYPES = 20;

export const id = (name: string) =>
  z
    .string({ error: `${name} must be given once, as an id` })
    .min(1, `${name} must not be empty`)
    .max(200, `${name} must be at most 200 characters`)
    .regex(/^[A-Za-z0-9._:@|-]+$/, `${name} must be an id (letters, digits, . _ : @ | -)`);

export const streamName = z
  .string({ error: 'stream must be given once, as a stream name such as wallet-<walletId>' })
  .min(1, 'stream must not be empty')
  .max(300, 'stream must be at most 300 characters')
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'stream must be a stream name such as wallet-<walletId>');

const isoDate = (name: string) =>
  z.iso
    .datetime({ offset: true, error: `${name} must be an ISO 8601 date-time, e.g. 2026-11-26T10:00:00Z` })
    .transform((v) => new Date(v));

/** `type=A&type=B`, `type=A,B` or a mix of both. */
export const types = z
  .union([z.string(), z.array(z.string())], { error: 'type must be an event type name, e.g. type=PointsCredited' })
  .transform((value) => [...new Set((Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean))])
  .pipe(
    z
      .array(z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/, 'type must be an event type name, e.g. PointsCredited'))
      .min(1, 'type must name at least one event type')
      .max(MAX_TYPES, `type may name at most ${MAX_TYPES} event types`),
  );

const limit = (max: number, fallback: number) =>
  z.coerce
    .number({ error: `limit must be a whole number from 1 to ${max}` })
    .int(`limit must be a whole number from 1 to ${max}`)
    .min(1, 'limit must be at least 1')
    .max(max, `limit must be at most ${max}`)
    .default(fallback);

const cursor = z.string({ error: 'cursor must be given once' }).min(1).max(200, 'cursor is not valid: pass the nextCursor of the previous page unchanged');

const listQuery = z
  .object({
    tenantId: id('tenantId').optional(),
    stream: streamName.optional(),
    type: types.optional(),
    actor: id('actor').optional(),
    walletId: id('walletId').optional(),
    paymentId: id('paymentId').optional(),
    from: isoDate('from').optional(),
    to: isoDate('to').optional(),
    cursor: cursor.optional(),
    limit: limit(200, 50),
  })
  .strict()
  .refine((q) => !q.from || !q.to || q.from < q.to, { message: 'from must be before to', path: ['from'] });

const historyQuery = z.object({ cursor: cursor.optional(), limit: limit(1000, 500) }).strict();

/** The admin audit routes, read from the `audit` projection. */
export function auditRoutes(deps: AuditRoutesDependencies): RouteSpec[] {
  const { pool } = deps;
  return [
    {
      method: 'get',
      path: '/api/v1/admin/audit',
      access: 'admin',
      summary:
        'The event log, newest first, filtered by any of tenantId, stream, type (repeatable or comma-separated), actor, walletId, paymentId, from, to (?cursor=&limit=1..200).',
      async handler(ctx) {
        const { type, cursor: after, limit: size, ...filter } = query(listQuery, ctx);
        ctx.body = await auditPage(pool, { ...filter, types: type }, { cursor: after, limit: size });
      },
    },
    {
      method: 'get',
      path: '/api/v1/admin/audit/streams/:stream',
      access: 'admin',
      summary: "One stream's full history, oldest first, in pages (?cursor=&limit=1..1000).",
      async handler(ctx) {
        const { stream } = params(z.object({ stream: streamName }), ctx);
        const page = query(historyQuery, ctx);
        const history = await streamHistory(pool, stream, page);
        if (!page.cursor && history.items.length === 0) throw new NotFound('Stream');
        ctx.body = { stream, ...history };
      },
    },
    {
      method: 'get',
      path: '/api/v1/admin/audit/correlations/:correlationId',
      access: 'admin',
      summary: 'Every event one request, webhook or process run caused (its correlation id, e.g. the X-Request-Id), in feed order.',
      async handler(ctx) {
        const { correlationId } = params(z.object({ correlationId: id('correlationId') }), ctx);
        const page = query(historyQuery, ctx);
        // An X-Request-Id as the client sent it finds its request's trail (`request:<id>`); ours match as they are.
        let resolved = correlationId;
        let history = await correlationHistory(pool, resolved, page);
        if (history.items.length === 0) {
          const request = await correlationHistory(pool, `request:${correlationId}`, page);
          if (request.items.length) [resolved, history] = [`request:${correlationId}`, request];
        }
        if (!page.cursor && history.items.length === 0) throw new NotFound('Correlation id');
        ctx.body = { correlationId: resolved, ...history };
      },
    },
  ];
}
