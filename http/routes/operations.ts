/** Reconciliation by replay (runbook 5 without SQL). */
import { z } from 'zod';
import type pg from 'pg';
import type { Reconciler } from '../../projections/ops/reconcile.ts';
import { allConnections } from '../../projections/read/connections.ts';
import { HttpError, parseRequest } from '../errors.ts';
import { body, params } from './accounts.ts';
import type { RouteSpec } from './table.ts';

const reconcileBody = z.object({ tenantId: z.string().min(1).max(100).optional() }).strict();

const connectionsQuery = z
  .object({ status: z.enum(['active', 'needs_reconnect', 'token_undecryptable', 'revoked'], { error: 'status must be active, needs_reconnect, token_undecryptable or revoked' }).optional() })
  .strict();

export function operationsRoutes(deps: { reconciler: Reconciler; pool: pg.Pool }): RouteSpec[] {
  return [
    {
      method: 'get',
      path: '/api/v1/admin/connections',
      access: 'admin',
      summary: "Every tenant's Square connection: status, merchant, token expiry, last refresh, last poll and last error (?status=).",
      async handler(ctx) {
        const { status } = parseRequest(connectionsQuery, ctx.query);
        ctx.body = await allConnections(deps.pool, status);
      },
    },
    {
      method: 'post',
      path: '/api/v1/admin/reconcile',
      access: 'admin',
      summary: 'Replay every wallet stream (optionally of one tenant) and compare with the wallet read models. Never repairs.',
      async handler(ctx) {
        const { tenantId } = body(reconcileBody, ctx);
        const report = await deps.reconciler.all(tenantId ? { tenantId } : {});
        ctx.log.info({ walletsChecked: report.walletsChecked, eventsReplayed: report.eventsReplayed, mismatches: report.mismatches.length }, 'reconciliation');
        ctx.body = report;
      },
    },
    {
      method: 'get',
      path: '/api/v1/admin/wallets/:walletId/reconcile',
      access: 'admin',
      summary: "Replay one wallet's stream and compare it with its balance and ledger.",
      async handler(ctx) {
        const { walletId } = params(z.object({ walletId: z.string().min(1).max(200) }), ctx);
        const report = await deps.reconciler.wallet(walletId);
        if (report.walletsChecked === 0 && report.mismatches.length === 0) throw new HttpError('NOT_FOUND', 'No wallet with this id: no events and no read-model row');
        ctx.body = report;
      },
    },
  ];
}
