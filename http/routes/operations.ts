/** Reconciliation by replay (runbook 5 without SQL). */
import { z } from 'zod';
import type { Reconciler } from '../../projections/ops/reconcile.ts';
import { body, params } from './accounts.ts';
import type { RouteSpec } from './table.ts';

const reconcileBody = z.object({ tenantId: z.string().min(1).max(100).optional() }).strict();

export function operationsRoutes(deps: { reconciler: Reconciler }): RouteSpec[] {
  return [
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
        ctx.body = await deps.reconciler.wallet(walletId);
      },
    },
  ];
}
