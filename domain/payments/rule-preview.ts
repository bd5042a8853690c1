/**
 * Checking a rule against the merchant's Square catalog, and previewing what rules would give a payment, line by
 * line (issue 19). Both read Square through the tenant's connection; the preview evaluates with the same pure
 * functions ingestion records with (`rewards/evaluate.ts`, then the promotion in force: `promotions/promotion.ts`),
 * so what it answers is what a payment earns.
 */
import { SquareApiError, type SquareApi, type SquarePayment } from '../ports/square.ts';
import { bestPromotion, purchasePoints, qualifies, type AppliedPromotion, type ScheduledPromotion } from '../promotions/promotion.ts';
import { appliesAtLocation } from '../rewards/rule.ts';
import { evaluateRules, type ExplanationLine, type RuleRef } from '../rewards/evaluate.ts';
import { orderNeed } from './order-need.ts';
import type { PurchaseOrder } from '../rewards/order.ts';
import { activeRules, type RuleSetState } from '../rewards/rule-set.ts';
import { catalogIdsOf, type RewardRule } from '../rewards/rule.ts';
import { DomainError, InvalidFields, NotFound, type FieldIssue } from '../shared/errors.ts';
import { readPurchaseOrder } from './order-lookup.ts';
import { hasCustomerKey } from './promotion-uses.ts';

/**
 * The tenant's Square API, the scopes its connection was granted and the workspace's currency (the connected
 * merchant's; null when unknown: connected before it was recorded); null when it is not connected.
 */
export type TenantSquare = { api: SquareApi; scopes: readonly string[]; currency: string | null } | null;

export interface RulePreviewDependencies {
  ruleSet(tenantId: string): Promise<RuleSetState>;
  square(tenantId: string): Promise<TenantSquare>;
  /** The workspace's promotions, ended ones included (each is matched against the payment's moment). */
  promotions(tenantId: string): Promise<readonly ScheduledPromotion[]>;
  /** The moment a sample order is previewed at when the request names none. */
  now(): Date;
}

/** A 400 naming the field whose ids the merchant's catalog does not hold (or holds as something else). */
class UnknownCatalogIds extends InvalidFields {
  constructor(issues: FieldIssue[]) {
    super(issues);
    this.name = 'UnknownCatalogIds';
  }
}

const squareProblem = (error: unknown) => (error instanceof SquareApiError ? `${error.code}: ${error.detail}` : error instanceof Error ? error.message : String(error));

/**
 * Checks the item variation and category ids a rule names against the merchant's catalog. Unknown ids (or an id of
 * the wrong kind) are a 400 naming the field; when the catalog cannot be read (not connected, no `ITEMS_READ`,
 * Square failing) the rule is accepted and the answer says so in `warnings`.
 */
export async function checkRuleCatalog(rule: RewardRule, square: TenantSquare): Promise<string[]> {
  const fields = rule.kind === 'spend' ? { variations: 'excludedItemVariationIds', categories: 'excludedCategoryIds' } : { variations: 'itemVariationIds', categories: 'categoryIds' };
  return checkCatalogIds(catalogIdsOf(rule), fields, square);
}

/**
 * Checks a promotion's qualifying items: its ids against the catalog (as a rule's), and that the connection may read
 * orders. Without `ORDERS_READ` the promotion is scheduled, with a warning: until the merchant reconnects, a payment
 * with an order fails and is retried (as under an item rule) rather than earn without a promotion it may qualify for.
 */
export async function checkQualifyingItems(ids: { itemVariationIds: readonly string[]; categoryIds: readonly string[] }, square: TenantSquare): Promise<string[]> {
  if (!ids.itemVariationIds.length && !ids.categoryIds.length) return [];
  const warnings = await checkCatalogIds(ids, { variations: 'itemVariationIds', categories: 'categoryIds' }, square);
  if (square && !square.scopes.includes('ORDERS_READ')) {
    warnings.push('The Square connection lacks ORDERS_READ (connect Square again to grant it): until then, payments with an order fail and are retried rather than earn without the promotion');
  }
  return warnings;
}

/**
 * Checks item variation and category ids against the merchant's catalog (a rule's, or a promotion's qualifying
 * items): an unknown id, or one of the wrong kind, is a 400 naming its field (`fields`); when the catalog cannot be
 * read the ids are accepted, and the answer's warnings say so.
 */
export async function checkCatalogIds(
  { itemVariationIds, categoryIds }: { itemVariationIds: readonly string[]; categoryIds: readonly string[] },
  fields: { variations: string; categories: string },
  square: TenantSquare,
): Promise<string[]> {
  const ids = [...new Set([...itemVariationIds, ...categoryIds])];
  if (!ids.length) return [];
  const unchecked = 'the catalog ids were accepted as given, unchecked';
  if (!square) return [`Square is not connected: ${unchecked}`];
  if (!square.scopes.includes('ITEMS_READ')) return [`The Square connection lacks ITEMS_READ (connect Square again to grant it): ${unchecked}`];
  let objects;
  try {
    objects = await square.api.getCatalogObjects(ids);
  } catch (error) {
    return [`Square's catalog could not be read (${squareProblem(error)}): ${unchecked}`];
  }
  const typeOf = new Map(objects.map((o) => [o.id, o.type]));
  const issues: FieldIssue[] = [];
  const wrong = (list: readonly string[], type: string) => list.filter((id) => typeOf.get(id) !== type);
  const describe = (list: string[], type: string) =>
    list.map((id) => (typeOf.has(id) ? `${id} is a ${String(typeOf.get(id)).toLowerCase()}, not ${type === 'CATEGORY' ? 'a category' : 'an item variation'}` : `${id} is not in the merchant's Square catalog`)).join('; ');
  const badVariations = wrong(itemVariationIds, 'ITEM_VARIATION');
  if (badVariations.length) issues.push({ path: fields.variations, message: describe(badVariations, 'ITEM_VARIATION') });
  const badCategories = wrong(categoryIds, 'CATEGORY');
  if (badCategories.length) issues.push({ path: fields.categories, message: describe(badCategories, 'CATEGORY') });
  if (issues.length) throw new UnknownCatalogIds(issues);
  return [];
}

export type PreviewRequest = {
  /** A rule to try (not yet created), or `ruleIds` of versions; neither: the rules active now. */
  rule?: RewardRule;
  ruleIds?: string[];
} & (
  | { paymentId: string }
  /** A sample order, paid at `at` (default: now) at `locationId` (none: promotions limited to locations are left out). */
  | { order: PurchaseOrder; at?: string; locationId?: string }
);

export interface Preview {
  /** What the payment earns: the rules' points and the promotion's. */
  points: number;
  rulePoints: number;
  rules: { ruleId: string | null; version: number | null; kind: RewardRule['kind']; points: number }[];
  lines: ExplanationLine[];
  /** The promotion that adds to it, as ingestion would choose it; null: none. */
  promotion: Pick<AppliedPromotion, 'promotionId' | 'name' | 'points' | 'localDate'> | null;
  payment: { paymentId: string | null; amountMinor: number; totalMinor: number; orderId: string | null; orderRead: boolean; createdAt: string; locationId: string | null };
  warnings: string[];
}

const PREVIEW_RULE = 'preview';

function rulesToPreview(request: PreviewRequest, state: RuleSetState): RuleRef[] {
  if (request.rule) return [{ ruleId: PREVIEW_RULE, version: 0, rule: request.rule }];
  if (request.ruleIds?.length) {
    return request.ruleIds.map((id) => {
      const version = state.versions.find((v) => v.ruleId === id);
      if (!version) throw new NotFound(`Reward rule ${id}`);
      return { ruleId: version.ruleId, version: version.version, rule: version.rule };
    });
  }
  return activeRules(state).map(({ ruleId, version, rule }) => ({ ruleId, version, rule }));
}

/** What the rules and the promotions in force ask of the payment's order: whether to read it, and its items' categories. */
type OrderNeed = (payment: SquarePayment) => { order: boolean; categories: boolean };

/** The payment to preview on, and its order when a rule or a promotion in force needs it (what could not be read is a warning). */
async function paymentToPreview(tenantId: string, request: PreviewRequest, need: OrderNeed, deps: RulePreviewDependencies) {
  const warnings: string[] = [];
  if ('order' in request) {
    const amountMinor = Math.max(0, request.order.totalMinor - request.order.tipMinor);
    const createdAt = request.at ?? deps.now().toISOString();
    return { paymentId: null, amountMinor, totalMinor: request.order.totalMinor, orderId: request.order.orderId, createdAt, locationId: request.locationId ?? null, customerKnown: true, order: request.order, currencyMismatch: false, warnings };
  }
  const square = await deps.square(tenantId);
  if (!square) throw new DomainError('CONNECTION_UNAVAILABLE', 'Square is not connected: connect it first, or preview on a sample order ({ "order": … })', { status: 'not_connected' });
  let payment: SquarePayment | null;
  try {
    payment = await square.api.getPayment(request.paymentId);
  } catch (error) {
    throw new DomainError('SQUARE_REQUEST_FAILED', `Square did not give the payment (${squareProblem(error)}): try again, or preview on a sample order`);
  }
  if (!payment) throw new NotFound(`Square payment ${request.paymentId}`);
  let order: PurchaseOrder | null = null;
  const needed = need(payment);
  if (payment.orderId && needed.order) {
    const missing = ['ORDERS_READ', ...(needed.categories ? ['ITEMS_READ'] : [])].filter((s) => !square.scopes.includes(s));
    if (missing.length) warnings.push(`The Square connection lacks ${missing.join(' and ')}: the order was not read (connect Square again to grant them); ingestion would retry such a payment until then`);
    else {
      try {
        order = await readPurchaseOrder(square.api, payment.orderId, needed.categories);
      } catch (error) {
        warnings.push(`The order could not be read (${squareProblem(error)}): ingestion would retry such a payment`);
      }
    }
  }
  const { id: paymentId, amountMinor, totalMinor, orderId, createdAt, locationId } = payment;
  // As ingestion decides (`payment.ts`, `excluded`): a payment in another currency earns nothing, whatever the rules.
  const currencyMismatch = square.currency !== null && payment.currency !== square.currency;
  if (currencyMismatch) {
    warnings.push(`The payment is in ${payment.currency} and the workspace counts in ${square.currency}: ingestion records it as currency_mismatch, with no points and no promotion`);
  }
  if (payment.status === 'FAILED' || payment.status === 'CANCELED') {
    // Final at Square: it will never complete, so never earn.
    warnings.push(`The payment is ${payment.status}, which is final at Square: it earns nothing, ever (ingestion records it, outcome recorded); the points shown are what it would have earned had it completed`);
  } else if (payment.status !== 'COMPLETED') {
    warnings.push(`The payment is ${payment.status}, not COMPLETED: it earns nothing until it completes (ingestion records it, outcome recorded, and credits it once Square says it completed); the points shown are what it would earn then`);
  }
  // Without a Square customer or a buyer email, ingestion finds nobody to count a daily limit for (`customerKeyOf`).
  return { paymentId, amountMinor, totalMinor, orderId, createdAt, locationId, customerKnown: hasCustomerKey(payment), order, currencyMismatch, warnings };
}

type Paid = Awaited<ReturnType<typeof paymentToPreview>>;

/**
 * The promotion ingestion would add to the rules' points (`bestPromotion`, as the purchase decider calls it), and
 * what the preview could not know: a sample order's location, and a customer's uses of a limited promotion that day
 * (assumed fewer than the limit; a payment with neither a Square customer nor a buyer email cannot be counted, so gets
 * none, as ingested).
 */
function promotionFor(promotions: readonly ScheduledPromotion[], paid: Paid, rulePoints: number, warnings: string[]): Preview['promotion'] {
  const purchase = { createdAt: paid.createdAt, locationId: paid.locationId ?? '', amountMinor: paid.amountMinor, order: paid.order, basePoints: rulePoints };
  const applicable = promotions.filter((p) => qualifies(p, purchase));
  if (paid.locationId === null && promotions.some((p) => p.promotion.locationIds && qualifies(p, { ...purchase, locationId: p.promotion.locationIds[0] ?? '' }))) {
    warnings.push('Promotions limited to locations were left out: give locationId to include them');
  }
  const best = bestPromotion(applicable, { ...purchase, usesToday: () => (paid.customerKnown ? 0 : null) });
  const limited = applicable.filter((p) => p.promotion.limitPerCustomerPerDay !== undefined);
  if (!paid.customerKnown && limited.length) {
    warnings.push(`The payment has no Square customer and no buyer email to count a daily limit against: ${limited.map((p) => `"${p.promotion.name}"`).join(', ')} cannot apply`);
  }
  if (best?.limitPerCustomerPerDay) {
    warnings.push(`"${best.name}" applies to ${best.limitPerCustomerPerDay} purchase(s) per customer per day: the preview assumes the customer has not reached that on ${best.localDate}`);
  }
  return best && { promotionId: best.promotionId, name: best.name, points: best.points, localDate: best.localDate };
}

export function rulePreview(deps: RulePreviewDependencies) {
  return {
    async preview(tenantId: string, request: PreviewRequest): Promise<Preview> {
      const [ruleSet, promotions] = await Promise.all([deps.ruleSet(tenantId), deps.promotions(tenantId)]);
      const requested = rulesToPreview(request, ruleSet);
      const need: OrderNeed = (payment) => orderNeed(requested, promotions, payment);
      const paid = await paymentToPreview(tenantId, request, need, deps);
      const warnings = [...paid.warnings];
      // Rules limited to other locations add nothing to a payment made at this one (issue 19, locations).
      const { locationId } = paid;
      const atLocation = locationId ? requested.filter((r) => appliesAtLocation(r.rule, locationId)) : requested;
      const rules = paid.currencyMismatch ? [] : atLocation;
      if (locationId && atLocation.length < requested.length) {
        warnings.push(
          atLocation.length
            ? `The payment was made at ${locationId}: ${requested.length - atLocation.length} rule(s) limited to other locations add nothing`
            : `The payment was made at ${locationId}, where none of these rules applies: location_excluded, no points`,
        );
      }
      if (!requested.length) warnings.push('No rule is active: activate one, or pass "rule" to try one');
      const evaluation = evaluateRules(rules, { amountMinor: paid.amountMinor, totalMinor: paid.totalMinor, order: paid.order, hasOrder: Boolean(paid.orderId) });
      const versionOf = new Map(rules.map((r) => [r.ruleId, r]));
      const promotion = promotionFor(promotions, paid, evaluation.points, warnings);
      return {
        points: purchasePoints(evaluation.points, promotion),
        rulePoints: evaluation.points,
        rules: evaluation.contributions.map((c) => ({
          ruleId: c.ruleId === PREVIEW_RULE ? null : c.ruleId,
          version: c.ruleId === PREVIEW_RULE ? null : (versionOf.get(c.ruleId)?.version ?? null),
          kind: c.kind,
          points: c.points,
        })),
        lines: evaluation.lines.map((l) => ({ ...l, ruleId: l.ruleId === PREVIEW_RULE ? null : l.ruleId })),
        promotion,
        payment: {
          paymentId: paid.paymentId,
          amountMinor: paid.amountMinor,
          totalMinor: paid.totalMinor,
          orderId: paid.orderId,
          orderRead: Boolean(paid.order),
          createdAt: paid.createdAt,
          locationId: paid.locationId,
        },
        warnings,
      };
    },

    /** The warnings of a rule about to be created (unknown ids throw a 400 naming the field). */
    async checkRule(tenantId: string, rule: RewardRule): Promise<string[]> {
      const ids = catalogIdsOf(rule);
      if (!ids.itemVariationIds.length && !ids.categoryIds.length) return [];
      return checkRuleCatalog(rule, await deps.square(tenantId));
    },
  };
}

export type RulePreview = ReturnType<typeof rulePreview>;
