/**
 * The simulator's orders and catalog (issue 19), in the shapes of Square's Orders API (`GET /v2/orders/{id}`:
 * `RetrieveOrderResponse`) and Catalog API (`POST /v2/catalog/batch-retrieve`: `BatchRetrieveCatalogObjectsResponse`),
 * field names as the `square` SDK's serialisers read them (`line_items`, `catalog_object_id`, `total_tax_money`,
 * `item_variation_data.item_id`, `item_data.categories[].id`…). Money is minor units; a line's tax is given, not
 * computed from a tax rate, so a test states exactly what Square would have charged.
 */

export interface TestCategory {
  id: string;
  name: string;
}

export interface TestVariation {
  id: string;
  name: string;
  priceMinor: number;
}

/** An item with its variations; `categoryIds` as Square's `item_data.categories`. */
export interface TestCatalogItem {
  id: string;
  name: string;
  categoryIds: string[];
  variations: TestVariation[];
  /** Deleted from the catalog (with its variations): batch-retrieve returns it only with `include_deleted_objects`. */
  deleted?: boolean;
}

export interface TestOrderLine {
  /** The variation sold; omitted for an ad hoc amount ("custom amount" at the till) and for a gift card. */
  catalogObjectId?: string;
  /**
   * `GIFT_CARD`: a gift card sold or loaded. Square gives such a line `item_type: "GIFT_CARD"` and no catalog object
   * (its Orders API refuses one), so rules cannot name it by variation or category. Omitted: `ITEM` with a catalog
   * object, else `CUSTOM_AMOUNT`.
   */
  itemType?: 'GIFT_CARD';
  name: string;
  /** Square's decimal string: "2", "1.5". */
  quantity: string;
  /** The price of one unit. */
  basePriceMinor: number;
  /** The line's tax, all units together. */
  taxMinor?: number;
  /** The line's discount, all units together. */
  discountMinor?: number;
}

export interface TestOrder {
  id: string;
  locationId: string;
  lines: TestOrderLine[];
  tipMinor?: number;
  createdAt: string;
  /** `OPEN` until paid, then `COMPLETED`. */
  state?: string;
}

export interface TestCatalog {
  categories: TestCategory[];
  items: TestCatalogItem[];
}

const money = (amount: number, currency: string) => ({ amount, currency });

/** A line's money: gross = unit price × quantity (rounded to the minor unit), total = gross − discount + tax. */
export function lineTotals(line: TestOrderLine) {
  const gross = Math.round(line.basePriceMinor * Number(line.quantity));
  const discount = line.discountMinor ?? 0;
  const tax = line.taxMinor ?? 0;
  return { gross, discount, tax, total: gross - discount + tax };
}

/** What the order charges for goods: the lines' totals (its payments' `amount_money` sum to it). */
export const orderAmount = (order: TestOrder) => order.lines.reduce((sum, line) => sum + lineTotals(line).total, 0);

/** Square's `Order` object. */
export function orderJson(order: TestOrder, currency: string) {
  const lines = order.lines.map((line, i) => {
    const t = lineTotals(line);
    return {
      uid: `${order.id.slice(0, 6)}-${i + 1}`,
      name: line.name,
      quantity: line.quantity,
      ...(line.catalogObjectId ? { catalog_object_id: line.catalogObjectId, catalog_version: 1 } : {}),
      item_type: line.itemType ?? (line.catalogObjectId ? 'ITEM' : 'CUSTOM_AMOUNT'),
      base_price_money: money(line.basePriceMinor, currency),
      variation_total_price_money: money(t.gross, currency),
      gross_sales_money: money(t.gross, currency),
      total_tax_money: money(t.tax, currency),
      total_discount_money: money(t.discount, currency),
      total_money: money(t.total, currency),
      total_service_charge_money: money(0, currency),
    };
  });
  const sum = (pick: (t: ReturnType<typeof lineTotals>) => number) => order.lines.reduce((acc, line) => acc + pick(lineTotals(line)), 0);
  const tip = order.tipMinor ?? 0;
  return {
    id: order.id,
    location_id: order.locationId,
    source: { name: 'Simulated till' },
    line_items: lines,
    net_amounts: {
      total_money: money(sum((t) => t.total) + tip, currency),
      tax_money: money(sum((t) => t.tax), currency),
      discount_money: money(sum((t) => t.discount), currency),
      tip_money: money(tip, currency),
      service_charge_money: money(0, currency),
    },
    created_at: order.createdAt,
    updated_at: order.createdAt,
    state: order.state ?? 'COMPLETED',
    version: 1,
    total_money: money(sum((t) => t.total) + tip, currency),
    total_tax_money: money(sum((t) => t.tax), currency),
    total_discount_money: money(sum((t) => t.discount), currency),
    total_tip_money: money(tip, currency),
    total_service_charge_money: money(0, currency),
    net_amount_due_money: money(0, currency),
  };
}

const catalogBase = (type: string, id: string, deleted = false) => ({
  type,
  id,
  updated_at: '2026-01-05T17:04:02.123Z',
  version: 1767632642123,
  is_deleted: deleted,
  present_at_all_locations: true,
});

function variationJson(item: TestCatalogItem, variation: TestVariation, currency: string) {
  return {
    ...catalogBase('ITEM_VARIATION', variation.id, item.deleted),
    item_variation_data: { item_id: item.id, name: variation.name, ordinal: 1, pricing_type: 'FIXED_PRICING', price_money: money(variation.priceMinor, currency), sellable: true, stockable: true },
  };
}

function itemJson(item: TestCatalogItem, currency: string) {
  return {
    ...catalogBase('ITEM', item.id, item.deleted),
    item_data: {
      name: item.name,
      categories: item.categoryIds.map((id, ordinal) => ({ id, ordinal })),
      ...(item.categoryIds[0] ? { reporting_category: { id: item.categoryIds[0], ordinal: 0 } } : {}),
      product_type: 'REGULAR',
      variations: item.variations.map((v) => variationJson(item, v, currency)),
    },
  };
}

const categoryJson = (category: TestCategory) => ({ ...catalogBase('CATEGORY', category.id), category_data: { name: category.name, category_type: 'REGULAR_CATEGORY', is_top_level: true } });

/**
 * `BatchRetrieveCatalogObjects`: the objects with the given ids (unknown ids left out, as Square does), and with
 * `include_related_objects` the items of the variations and the categories of the items. Deleted items and their
 * variations are left out too unless `include_deleted_objects` is true; then they come with `is_deleted: true`.
 */
export function batchRetrieve(catalog: TestCatalog, body: Record<string, unknown>, currency: string) {
  const ids = Array.isArray(body.object_ids) ? body.object_ids.filter((id): id is string => typeof id === 'string') : [];
  const withDeleted = body.include_deleted_objects === true;
  catalog = { ...catalog, items: catalog.items.filter((item) => withDeleted || !item.deleted) };
  const objects: unknown[] = [];
  const related = new Map<string, unknown>();
  const relate = (item: TestCatalogItem) => {
    related.set(item.id, itemJson(item, currency));
    for (const categoryId of item.categoryIds) {
      const category = catalog.categories.find((c) => c.id === categoryId);
      if (category) related.set(category.id, categoryJson(category));
    }
  };
  for (const id of ids) {
    const category = catalog.categories.find((c) => c.id === id);
    if (category) {
      objects.push(categoryJson(category));
      continue;
    }
    const item = catalog.items.find((i) => i.id === id);
    if (item) {
      objects.push(itemJson(item, currency));
      continue;
    }
    const owner = catalog.items.find((i) => i.variations.some((v) => v.id === id));
    const variation = owner?.variations.find((v) => v.id === id);
    if (owner && variation) {
      objects.push(variationJson(owner, variation, currency));
      if (body.include_related_objects === true) relate(owner);
    }
  }
  for (const id of ids) related.delete(id);
  return { objects, ...(related.size ? { related_objects: [...related.values()] } : {}) };
}

/**
 * Demo Bakery's catalog in development: coffee by the cup and pastries. Its gift cards are not in it: Square sells
 * them as `GIFT_CARD` lines without a catalog object (`giftCardLine`).
 */
export const DEMO_CATALOG: TestCatalog = {
  categories: [
    { id: 'CATCOFFEE', name: 'Coffee' },
    { id: 'CATPASTRY', name: 'Pastries' },
  ],
  items: [
    { id: 'ITEMLATTE', name: 'Latte', categoryIds: ['CATCOFFEE'], variations: [{ id: 'VARLATTE', name: 'Regular', priceMinor: 450 }] },
    { id: 'ITEMESPRESSO', name: 'Espresso', categoryIds: ['CATCOFFEE'], variations: [{ id: 'VARESPRESSO', name: 'Single', priceMinor: 300 }] },
    { id: 'ITEMMUFFIN', name: 'Muffin', categoryIds: ['CATPASTRY'], variations: [{ id: 'VARMUFFIN', name: 'Blueberry', priceMinor: 325 }] },
  ],
};

/** A gift card sold or loaded for `amountMinor`, as Square's point of sale writes it: no catalog object, no tax. */
export const giftCardLine = (amountMinor: number): TestOrderLine => ({ itemType: 'GIFT_CARD', name: 'Gift Card', quantity: '1', basePriceMinor: amountMinor });

/** The variation's name and unit price in a catalog, to make an order line from an id and a quantity. */
export function catalogLine(catalog: TestCatalog, variationId: string, quantity: string): TestOrderLine | undefined {
  for (const item of catalog.items) {
    const variation = item.variations.find((v) => v.id === variationId);
    if (variation) return { catalogObjectId: variation.id, name: `${item.name} (${variation.name})`, quantity, basePriceMinor: variation.priceMinor };
  }
  return undefined;
}
