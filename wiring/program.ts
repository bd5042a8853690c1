/**
 * The loyalty program: the reward catalog and rewards issued to wallets, the expiry policy and its daily run,
 * merchants' adjustments within their limit, the program summary and the ledger export.
 */
import { rewardCatalogService } from '../domain/rewards/catalog-service.ts';
import { programService, type ProgramDependencies } from '../domain/program/service.ts';
import { expiryRun } from '../domain/program/expiry-run.ts';
import type { WalletsService } from '../domain/wallets/service.ts';
import { issuedRewardsDue, tenantsWithExpiryPolicy, walletsWithPoints } from '../projections/read/program.ts';
import { rewardRoutes } from '../http/routes/rewards.ts';
import { programRoutes } from '../http/routes/program.ts';
import type { Infrastructure } from './infrastructure.ts';

export function provideProgram({ pool, store, runtime, commands, log }: Infrastructure, wallets: WalletsService, merchantLocations: ProgramDependencies['merchantLocations']) {
  const program = programService({ store, runtime, commands, merchantLocations });
  const expire = expiryRun({
    wallets,
    program,
    tenantsWithPolicy: () => tenantsWithExpiryPolicy(pool),
    walletsWithPoints: (tenantId, after, limit) => walletsWithPoints(pool, tenantId, after, limit),
    rewardsDue: (asOf, after, limit) => issuedRewardsDue(pool, asOf, after, limit),
    onFailure: (failure, error) => log.error({ ...failure, err: error }, 'expiry run: passed over a wallet it could not expire; the next run tries it again'),
    onWorkspaceFailure: (tenantId, error) => log.error({ tenantId, err: error }, 'expiry run: passed over a workspace whose expiry policy could not be read; the next run tries it again'),
  });
  return {
    routes: [
      ...rewardRoutes({ catalog: rewardCatalogService({ store, runtime, commands }), wallets, pool }),
      ...programRoutes({ program, wallets, expire, store, pool, now: runtime.now }),
    ],
  };
}
