/**
 * A Square order as reward rules read it: its lines with the catalog item variation each sold and that item's
 * categories, and the order's totals. Money is in minor units. Built from Square's order and catalog by
 * ingestion (`payments/order-lookup.ts`), or given as a sample order to the preview.
 */
import { z } from 'zod';

/** Square writes quantities as decimal strings (`"2"`, `"1.5"` for weight): at most 5 decimals. */
export const QUANTITY_SCALE = 100_000n;
const quantityPattern = /^\d{1,10}(\.\d{1,5})?$/;

const minor = (what: string) =>
  z
    .number({ error: `${what} must be a number of minor units` })
    .int(`${what} must be a whole number of minor units`)
    .min(0, `${what} must not be negative`)
    .max(Number.MAX_SAFE_INTEGER, `${what} is too large`);

/**
 * Square's `item_type` of a line: `ITEM` (the default, also for a type Square adds later), `CUSTOM_AMOUNT`, or
 * `GIFT_CARD`, a gift card sold or loaded. A gift card line has no catalog object, and earns nothing: the points come
 * when the card is spent, as in Square Loyalty.
 */
export const lineItemTypes = ['ITEM', 'CUSTOM_AMOUNT', 'GIFT_CARD'] as const;
export type LineItemType = (typeof lineItemTypes)[number];

/** Square's `item_type` as rules read it: absent or unknown is an item. */
export const lineItemType = (squareItemType: string | null): LineItemType =>
  (lineItemTypes as readonly string[]).includes(squareItemType ?? '') ? (squareItemType as LineItemType) : 'ITEM';

export const orderLineSchema = z
  .object({
    uid: z.string().max(200).optional(),
    name: z.string().max(500).nullable().default(null),
    itemType: z.enum(lineItemTypes, { error: "itemType must be 'ITEM', 'CUSTOM_AMOUNT' or 'GIFT_CARD'" }).default('ITEM'),
    /** The catalog item variation sold (`catalog_object_id`); null for an ad hoc amount or a gift card. */
    itemVariationId: z.string().max(192).nullable().default(null),
    /** The categories of the variation's item (from the catalog). */
    categoryIds: z.array(z.string().max(192)).max(100).default([]),
    quantity: z.string().regex(quantityPattern, 'quantity must be a decimal number such as "2" or "1.5" (at most 5 decimals)'),
    /** What the line cost after its discounts, tax included (`total_money`). */
    totalMinor: minor('totalMinor'),
    /** The line's tax (`total_tax_money`). */
    taxMinor: minor('taxMinor').default(0),
    /** The line's discounts (`total_discount_money`). */
    discountMinor: minor('discountMinor').default(0),
  })
  .strict();

export const purchaseOrderSchema = z
  .object({
    orderId: z.string().min(1).max(192).default('sample'),
    lines: z.array(orderLineSchema).max(1000, 'an order has at most 1000 lines here'),
    /** `total_money`: lines, service charges and tip. Omitted: the lines' totals. */
    totalMinor: minor('totalMinor').optional(),
    taxMinor: minor('taxMinor').optional(),
    tipMinor: minor('tipMinor').default(0),
    discountMinor: minor('discountMinor').default(0),
  })
  .strict()
  .transform((o) => {
    const lines = o.lines.map((l, i) => ({ ...l, uid: l.uid ?? `line-${i + 1}` }));
    const linesTotal = lines.reduce((sum, l) => sum + l.totalMinor, 0);
    return {
      ...o,
      lines,
      totalMinor: o.totalMinor ?? linesTotal + o.tipMinor,
      taxMinor: o.taxMinor ?? lines.reduce((sum, l) => sum + l.taxMinor, 0),
    };
  });

export type OrderLine = z.output<typeof orderLineSchema> & { uid: string };
export type PurchaseOrder = z.output<typeof purchaseOrderSchema>;

/** A quantity as an exact integer of 1/100000 units; 0 for anything Square should not have sent. */
export function scaledQuantity(quantity: string): bigint {
  if (!quantityPattern.test(quantity)) return 0n;
  const [whole = '0', fraction = ''] = quantity.split('.');
  return BigInt(whole) * QUANTITY_SCALE + BigInt(fraction.padEnd(5, '0'));
}
