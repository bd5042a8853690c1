/** Promotions and the merchant's Square locations (issue 19). Ingestion reads promotions from its own in-memory state. */
import type { SquareConnectionsService } from '../domain/connections/service.ts';
import { merchantLocations } from '../domain/promotions/locations.ts';
import { promotionsService } from '../domain/promotions/service.ts';
import { promotionRoutes } from '../http/routes/promotions.ts';
import type { Infrastructure } from './infrastructure.ts';
import { tenantSquare } from './rewards.ts';
import { checkQualifyingItems } from '../domain/payments/rule-preview.ts';

export function providePromotions({ store, runtime, commands }: Infrastructure, connections: SquareConnectionsService) {
  const locationsOf = async (tenantId: string) => merchantLocations((await connections.apiFor(tenantId)).api);
  const squareOf = tenantSquare(connections);
  const promotions = promotionsService({
    store,
    runtime,
    commands,
    merchantLocations: locationsOf,
    checkCatalog: async (tenantId, ids) => checkQualifyingItems(ids, await squareOf(tenantId)),
  });
  return { promotions, merchantLocations: locationsOf, routes: promotionRoutes({ promotions, merchantLocations: locationsOf }) };
}
