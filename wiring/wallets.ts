/** Wallets: reads, redemptions and adjustments, and reconciliation of the wallet read models by replay. */
import { walletsService } from '../domain/wallets/service.ts';
import type { IdentityHasher } from '../domain/ports/identity.ts';
import { reconciler, settleWallets } from '../projections/ops/reconcile.ts';
import type { ProjectionRunner } from '../projections/runner.ts';
import { walletRoutes } from '../http/routes/wallets.ts';
import { operationsRoutes } from '../http/routes/operations.ts';
import type { Infrastructure } from './infrastructure.ts';

export function provideWallets({ pool, store, runtime, commands }: Infrastructure, hasher: IdentityHasher, runner: ProjectionRunner) {
  const wallets = walletsService({ store, runtime, commands });
  const reconciliation = reconciler({ pool, store, settle: settleWallets(runner) });
  return { wallets, routes: [...walletRoutes({ wallets, pool, hasher, now: runtime.now }), ...operationsRoutes({ pool, reconciler: reconciliation })] };
}
