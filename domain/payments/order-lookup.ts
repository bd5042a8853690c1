/**
 * A payment's Square order as reward rules read it (issue 19): the order (`GET /v2/orders/{id}`), and, when a
 * rule names categories, its variations' items from the catalog (`POST /v2/catalog/batch-retrieve` with related
 * objects: Square's order lines name the variation, not its categories). Cached like the customer lookup: bounded
 * time and size, one lookup in flight per order, a failure never kept (the fact fails and is retried: a webhook
 * by the inbox's backoff, a poll from its cursor). Only asked for when a rule in force needs the order.
 *
 * A connection made before Tally asked for `ORDERS_READ` and `ITEMS_READ` lacks them: the lookup fails with
 * `SQUARE_SCOPES_MISSING`, saying to reconnect, rather than earning as if the order were empty.
 */
import { ORDER_SCOPES, type SquareApi, type SquareOrder } from '../ports/square.ts';
import { lineItemType, type PurchaseOrder } from '../rewards/order.ts';
import { DomainError } from '../shared/errors.ts';
import { boundedCache, type CustomerCacheOptions } from './customer-cache.ts';

/** The active rules need the order but the connection was not granted the scopes to read it. */
export class SquareScopesMissing extends DomainError {
  constructor(missing: readonly string[]) {
    super(
      'SQUARE_SCOPES_MISSING',
      `The active reward rules read the Square order, and this Square connection lacks ${missing.join(' and ')}: reconnect Square (GET /api/v1/client/pos/square/connect) to grant them; payments are retried`,
      { missing },
    );
    this.name = 'SquareScopesMissing';
  }
}

export interface OrderLookupDependencies {
  apiFor(tenantId: string): Promise<SquareApi>;
  /** The scopes the tenant's connection was granted. */
  scopes(tenantId: string): readonly string[];
}

/** The order's lines with their items' categories (none asked: empty lists). */
export async function readPurchaseOrder(api: SquareApi, orderId: string, withCategories: boolean): Promise<PurchaseOrder | null> {
  const order = await api.getOrder(orderId);
  if (!order) return null;
  const categories = withCategories ? await categoriesOfVariations(api, order) : new Map<string, string[]>();
  return purchaseOrderOf(order, categories);
}

async function categoriesOfVariations(api: SquareApi, order: SquareOrder): Promise<Map<string, string[]>> {
  const variationIds = [...new Set(order.lineItems.flatMap((l) => (l.catalogObjectId ? [l.catalogObjectId] : [])))];
  // With the deleted ones: an item deleted after the sale (or before its webhook or poll is processed) still earns
  // by its categories.
  const objects = await api.getCatalogObjects(variationIds, { includeRelated: true, includeDeleted: true });
  const itemCategories = new Map(objects.flatMap((o) => (o.type === 'ITEM' ? [[o.id, o.categoryIds] as const] : [])));
  return new Map(objects.flatMap((o) => (o.type === 'ITEM_VARIATION' ? [[o.id, (o.itemId && itemCategories.get(o.itemId)) || []] as const] : [])));
}

export function purchaseOrderOf(order: SquareOrder, categories: ReadonlyMap<string, readonly string[]>): PurchaseOrder {
  return {
    orderId: order.id,
    lines: order.lineItems.map((line) => ({
      uid: line.uid,
      name: line.name,
      itemType: lineItemType(line.itemType),
      itemVariationId: line.catalogObjectId,
      categoryIds: line.catalogObjectId ? [...(categories.get(line.catalogObjectId) ?? [])] : [],
      quantity: line.quantity,
      totalMinor: line.totalMinor,
      taxMinor: line.totalTaxMinor,
      discountMinor: line.totalDiscountMinor,
    })),
    totalMinor: order.totalMinor,
    taxMinor: order.totalTaxMinor,
    tipMinor: order.totalTipMinor,
    discountMinor: order.totalDiscountMinor,
  };
}

export function orderLookup(deps: OrderLookupDependencies, options: CustomerCacheOptions) {
  const missingScopes = (tenantId: string) => ORDER_SCOPES.filter((scope) => !deps.scopes(tenantId).includes(scope));
  // The key says whether the categories were read: an order read for an item rule lacks them.
  const cache = boundedCache<PurchaseOrder | null>(async (tenantId, key) => {
    const [orderId = '', withCategories] = key.split('\u0000');
    return readPurchaseOrder(await deps.apiFor(tenantId), orderId, withCategories === 'c');
  }, options);
  return {
    /** The order, with its lines' categories when `withCategories`; null when Square does not know it. */
    async get(tenantId: string, orderId: string, withCategories: boolean): Promise<PurchaseOrder | null> {
      const missing = missingScopes(tenantId);
      if (missing.length) throw new SquareScopesMissing(missing);
      return cache.get(tenantId, `${orderId}\u0000${withCategories ? 'c' : ''}`);
    },
    missingScopes,
    stats: () => cache.stats(),
  };
}

export type OrderLookup = ReturnType<typeof orderLookup>;
