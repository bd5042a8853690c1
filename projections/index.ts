import type { FeedReader } from './projection.ts';
import { rewardRulesProjection, usersProjection, workspacesProjection } from './accounts.ts';
import { walletsProjection } from './wallets.ts';
import { programProjection } from './program.ts';
import { programSummaryProjection } from './program-summary.ts';
import { posConnectionsProjection } from './pos-connections.ts';
import { auditProjection } from './audit.ts';
import { heldPointsProjection } from './held-points.ts';
import { walletCreditsReactor } from './reactors/wallet-credits.ts';
import { claimsReactor, type ClaimsDependencies } from './reactors/claims.ts';

/** Every read model the service maintains (rebuildable: each owns its tables). */
export const readModels = [
  usersProjection,
  workspacesProjection,
  rewardRulesProjection,
  walletsProjection,
  programProjection,
  programSummaryProjection,
  posConnectionsProjection,
  auditProjection,
  heldPointsProjection,
] as const;

/** Every read model, and the reactors that carry effects across streams. */
export function allProjections(deps: ClaimsDependencies): FeedReader[] {
  return [
    ...readModels,
    walletCreditsReactor(deps.store, deps.newId, deps.commands),
    claimsReactor(deps),
  ];
}
