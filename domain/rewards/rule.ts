/**
 * Reward rules and their evaluation. Points and money are integers end to end: money in the currency's
 * minor units (cents), as Square reports it. Evaluation is pure and exact (BigInt arithmetic).
 */
import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import { DomainError } from '../shared/errors.ts';
import { wholeNumber } from '../shared/whole-number.ts';

const MAX_POINTS_PER_UNIT = 1_000_000;
const MAX_MINOR_UNITS = 1_000_000_000_000; // 10 billion in major units: far above any single payment.

/** A Square catalog object id (item variation or category): letters, digits, `_` and `-`, as Square writes them. */
const catalogId = (what: string) =>
  z
    .string({ error: `${what} must be Square catalog object ids (strings)` })
    .trim()
    .min(1, `${what} must not hold an empty id`)
    .max(192, `${what}: a Square catalog id is at most 192 characters`)
    .regex(/^[A-Za-z0-9_-]+$/, `${what} must be Square catalog object ids (letters, digits, _ and -)`);

const catalogIds = (what: string, min: number) =>
  z
    .array(catalogId(what), { error: `${what} must be a list of Square catalog object ids` })
    .min(min, `${what} must list at least ${min} id`)
    .max(100, `${what} may list at most 100 ids`)
    .refine((ids) => new Set(ids).size === ids.length, `${what} lists an id twice`);

/**
 * `after_tax` (the default, today's behaviour): the payment's amount as Square charged it, tax included.
 * `before_tax`: the tax of the Square order is left out ($100 + $10 tax earns on $100). Needs the order.
 */
export const taxModes = ['before_tax', 'after_tax'] as const;
export type TaxMode = (typeof taxModes)[number];

/**
 * Square location ids a rule is limited to (issue 19); omitted, every location. Checked against the locations Square
 * lists for the merchant when the rule is created. A payment at another location gets `location_excluded`.
 */
export const locationIdsSchema = z
  .array(z.string({ error: 'locationIds must be Square location ids (strings)' }).min(1, 'locationIds must not hold an empty id').max(64, 'locationIds: a Square location id is at most 64 characters'), {
    error: 'locationIds must be a list of Square location ids',
  })
  .min(1, 'locationIds must list at least one location (omit it for every location)')
  .max(300, 'locationIds may list at most 300 locations')
  .refine((ids) => new Set(ids).size === ids.length, 'locationIds lists a location twice');

export const spendRuleSchema = z
  .object({
    kind: z.literal('spend'),
    points: wholeNumber('points', 1, MAX_POINTS_PER_UNIT),
    per: wholeNumber(
      "per (in minor units of the workspace's currency: 100 = $1.00 in USD; a zero-decimal currency such as JPY has no minor unit, so 100 = ¥100)",
      1,
      100_000_000,
    ),
    basis: z.enum(['amount', 'total'], { error: "basis must be 'amount' (excludes tips) or 'total' (includes tips)" }),
    minimumSpend: wholeNumber('minimumSpend (minor units of the workspace currency; JPY has none: 500 = ¥500)', 0, MAX_MINOR_UNITS).default(0),
    taxMode: z.enum(taxModes, { error: "taxMode must be 'before_tax' (tax left out) or 'after_tax' (tax counted, the default)" }).optional(),
    excludedCategoryIds: catalogIds('excludedCategoryIds', 0).optional(),
    excludedItemVariationIds: catalogIds('excludedItemVariationIds', 0).optional(),
    locationIds: locationIdsSchema.optional(),
  })
  .strict();

export const visitRuleSchema = z
  .object({
    kind: z.literal('visit'),
    points: wholeNumber('points', 1, MAX_POINTS_PER_UNIT),
    minimumSpend: wholeNumber('minimumSpend (minor units of the workspace currency; JPY has none: 500 = ¥500)', 0, MAX_MINOR_UNITS).default(0),
    locationIds: locationIdsSchema.optional(),
  })
  .strict();

/** `points` per unit sold of any of the listed Square item variations (Square Loyalty's ITEM_VARIATION rule). */
export const itemRuleSchema = z
  .object({
    kind: z.literal('item'),
    points: wholeNumber('points', 1, MAX_POINTS_PER_UNIT),
    itemVariationIds: catalogIds('itemVariationIds', 1),
    locationIds: locationIdsSchema.optional(),
  })
  .strict();

/** `points` per unit sold of any item in one of the listed Square categories (Square Loyalty's CATEGORY rule). */
export const categoryRuleSchema = z
  .object({
    kind: z.literal('category'),
    points: wholeNumber('points', 1, MAX_POINTS_PER_UNIT),
    categoryIds: catalogIds('categoryIds', 1),
    locationIds: locationIdsSchema.optional(),
  })
  .strict();

export const rewardRuleSchema = z.discriminatedUnion('kind', [spendRuleSchema, visitRuleSchema, itemRuleSchema, categoryRuleSchema], {
  error: "kind must be 'spend', 'visit', 'item' or 'category'",
});

export type RewardRule = z.infer<typeof rewardRuleSchema>;

/** Whether a rule takes payments at a location (a rule without `locationIds` takes them everywhere). */
export const appliesAtLocation = (rule: RewardRule, locationId: string): boolean => !rule.locationIds || rule.locationIds.includes(locationId);

/** What a completed payment offers a rule: both Square amounts, in minor units. */
export interface PaymentAmounts {
  /** `amount_money`: excludes the tip. */
  amountMinor: number;
  /** `total_money`: amount plus tip. */
  totalMinor: number;
}

export interface Evaluation {
  points: number;
  /** Which Square amount the rule used, and its value, recorded with the credit so replay never recomputes. */
  basis: 'amount' | 'total';
  basisAmountMinor: number;
}

/** Points a rule grants for one completed payment. Spend rules floor: 1 point per $1 on $10.99 earns 10. */
export function evaluateRule(rule: RewardRule, payment: PaymentAmounts): Evaluation {
  for (const [name, value] of Object.entries(payment)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new DomainError('VALIDATION_FAILED', `${name} must be a non-negative whole number of minor units`);
    }
  }
  switch (rule.kind) {
    case 'spend': {
      const basisAmountMinor = rule.basis === 'amount' ? payment.amountMinor : payment.totalMinor;
      if (basisAmountMinor < rule.minimumSpend) return { points: 0, basis: rule.basis, basisAmountMinor };
      const points = (BigInt(basisAmountMinor) / BigInt(rule.per)) * BigInt(rule.points);
      if (points > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new DomainError('UNPROCESSABLE', 'The payment is too large to be credited in points');
      }
      return { points: Number(points), basis: rule.basis, basisAmountMinor };
    }
    case 'visit': {
      // The minimum for a visit applies to what the customer was charged for goods, excluding the tip.
      const basisAmountMinor = payment.amountMinor;
      return { points: basisAmountMinor >= rule.minimumSpend ? rule.points : 0, basis: 'amount', basisAmountMinor };
    }
    case 'item':
    case 'category':
      // Units sold are on the Square order, not the payment: see `evaluate.ts`, which has the order.
      return { points: 0, basis: 'amount', basisAmountMinor: 0 };
    default:
      return unreachable(rule);
  }
}

/** Whether a rule needs the payment's Square order (its lines, tax) to be evaluated. */
export function needsOrder(rule: RewardRule): boolean {
  switch (rule.kind) {
    case 'spend':
      return rule.taxMode === 'before_tax' || Boolean(rule.excludedCategoryIds?.length) || Boolean(rule.excludedItemVariationIds?.length);
    case 'visit':
      return false;
    case 'item':
    case 'category':
      return true;
    default:
      return unreachable(rule);
  }
}

/** The catalog ids a rule names, by what they must be at Square: checked against the merchant's catalog. */
export function catalogIdsOf(rule: RewardRule): { itemVariationIds: string[]; categoryIds: string[] } {
  switch (rule.kind) {
    case 'spend':
      return { itemVariationIds: rule.excludedItemVariationIds ?? [], categoryIds: rule.excludedCategoryIds ?? [] };
    case 'item':
      return { itemVariationIds: rule.itemVariationIds, categoryIds: [] };
    case 'category':
      return { itemVariationIds: [], categoryIds: rule.categoryIds };
    case 'visit':
      return { itemVariationIds: [], categoryIds: [] };
    default:
      return unreachable(rule);
  }
}
