/** Reconciliation by replay (runbook 5 without SQL). */
import { z } from 'zod';
import type pg from 'pg';
import { reconcileReport, type Reconciler } from '../../projections/ops/reconcile.ts';
import { allConnections, connectionStatus, connectionsPageView } from '../../projections/read/connections.ts';
import { HttpError } from '../errors.ts';
import { pageCursor, pageLimit } from '../schemas.ts';
import { listRoute, route, type RouteSpec } from './table.ts';
import { uuid } from '../schemas.ts';

const reconcileBody = z.object({ tenantId: z.string().min(1).max(100).optional() }).strict();

const connectionsQuery = z
  .object({
    status: z.enum(connectionStatus.options, { error: 'status must be active, needs_reconnect, token_undecryptable or revoked' }).optional(),
    cursor: pageCursor(500),
    limit: pageLimit(1000, 1000),
  })
  .strict();

export function operationsRoutes(deps: { reconciler: Reconciler; pool: pg.Pool }): RouteSpec[] {
  return [
    listRoute({
      path: '/api/v1/admin/connections',
      access: 'admin',
      summary:
        "Every tenant's Square connection: status, merchant, token expiry, last refresh, last poll and last error, by tenant id, so a connection that changes while you page is listed once (?status=&cursor=&limit= 1–1000, default 1000).",
      query: connectionsQuery,
      response: connectionsPageView,
      read: (query) => allConnections(deps.pool, query),
    }),
    route({
      method: 'post',
      path: '/api/v1/admin/reconcile',
      access: 'admin',
      summary: 'Replay every wallet stream (optionally of one tenant) and compare with the wallet read models. Never repairs.',
      body: reconcileBody,
      response: reconcileReport,
      async handler({ body: { tenantId }, ctx }) {
        const report = await deps.reconciler.all(tenantId ? { tenantId } : {});
        ctx.log.info({ walletsChecked: report.walletsChecked, eventsReplayed: report.eventsReplayed, mismatches: report.mismatches.length }, 'reconciliation');
        return { status: 200, body: report };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/admin/wallets/:walletId/reconcile',
      access: 'admin',
      summary: "Replay one wallet's stream and compare it with its balance and ledger.",
      params: z.object({ walletId: uuid('walletId must be a wallet id (a uuid)') }),
      response: reconcileReport,
      async handler({ params }) {
        const report = await deps.reconciler.wallet(params.walletId);
        if (report.walletsChecked === 0 && report.mismatches.length === 0) throw new HttpError('NOT_FOUND', 'No wallet with this id: no events and no read-model row');
        return { status: 200, body: report };
      },
    }),
  ];
}
