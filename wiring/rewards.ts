/** Reward rules: their versions and active set, the catalog check of new rules, and the preview (issue 19). */
import type { SquareConnectionsService } from '../domain/connections/service.ts';
import { rulePreview, type TenantSquare } from '../domain/payments/rule-preview.ts';
import { rewardRulesService } from '../domain/rewards/service.ts';
import { merchantLocations } from '../domain/promotions/locations.ts';
import type { PromotionsService } from '../domain/promotions/service.ts';
import { rewardRuleRoutes } from '../http/routes/reward-rules.ts';
import type { Infrastructure } from './infrastructure.ts';

export function provideRewardRules({ pool, store, runtime, commands }: Infrastructure, connections: SquareConnectionsService, promotions: PromotionsService) {
  // A rule limited to locations names only locations Square lists for the merchant (issue 19).
  const merchantLocationIds = async (tenantId: string) => (await merchantLocations((await connections.apiFor(tenantId)).api)).locations.map((l) => l.id);
  const rules = rewardRulesService({ store, runtime, commands, merchantLocationIds });
  // The preview adds the promotion in force, as ingestion does.
  const preview = rulePreview({ ruleSet: (tenantId) => rules.current(tenantId), square: tenantSquare(connections), promotions: (tenantId) => promotions.scheduled(tenantId), now: runtime.now });
  return { rules, routes: rewardRuleRoutes({ rules, preview, pool }) };
}

/** A tenant's Square API, granted scopes and currency, for reading its catalog and payments; null unless its connection is active. */
export function tenantSquare(connections: SquareConnectionsService): (tenantId: string) => Promise<TenantSquare> {
  return async (tenantId) => {
    const connection = await connections.connection(tenantId);
    if (connection.status !== 'active') return null;
    return { api: (await connections.apiFor(tenantId)).api, scopes: connection.scopes, currency: connection.currency };
  };
}
