/**
 * What a rule set gives for one completed payment, and why, line by line: the one evaluation ingestion records
 * and the preview answers with. Pure: the payment's amounts, its Square order (when a rule needs one and the
 * payment has one) and the rules in force go in; per-rule contributions and explanation lines come out.
 *
 * Several active rules **sum**: each rule is evaluated on its own (its own minimum, its own floor) and the
 * purchase earns the sum of their points, every contribution recorded. A café with "1 point per $1" and
 * "5 points per latte" gives a $4.50 latte 4 + 5 = 9 points.
 *
 * An order paid with several tenders (gift card + card) is shared between them: each payment counts the order's
 * lines in proportion to its share of the order's amount (tip excluded), floored; one tender paying the whole
 * order counts every line whole.
 *
 * A gift card sold or loaded (a `GIFT_CARD` line) earns nothing by a rule that reads the order, as in Square
 * Loyalty: its points come when the card is spent. A spend rule that reads no order (after tax, no exclusions)
 * cannot tell, and counts the payment as charged, gift card included (README, Reward rules).
 */
import { DomainError } from '../shared/errors.ts';
import { QUANTITY_SCALE, scaledQuantity, type OrderLine, type PurchaseOrder } from './order.ts';
import { evaluateRule, needsOrder, type RewardRule } from './rule.ts';

/** A rule version as the rule set holds it. */
export interface RuleRef {
  ruleId: string;
  version: number;
  rule: RewardRule;
}

/** For a visit rule and a payment with an order: whether this payment counts the order's visit, on which amount. */
export interface VisitOfOrder {
  counts: boolean;
  amountMinor: number;
}

export interface PaymentToEvaluate {
  /** `amount_money`: tip excluded. */
  amountMinor: number;
  /** `total_money`: amount plus tip. */
  totalMinor: number;
  /** The Square order, when the payment has one and a rule needs it; null otherwise. */
  order: PurchaseOrder | null;
  /** True when the payment names an order (`order_id`), fetched or not. */
  hasOrder: boolean;
  orderVisit?: VisitOfOrder | null;
}

/** How refunds take a contribution back (see `payments/payment.ts`, `reversalFor`). */
export type ContributionRefundBasis = 'amount' | 'total' | 'full_refund';

/** One rule's part of a purchase's points. */
export interface Contribution {
  ruleId: string;
  ruleVersion: number;
  kind: RewardRule['kind'];
  points: number;
  /** Which payment amount the rule counted on, and the value it counted (after tax and exclusions). */
  basis: 'amount' | 'total';
  basisAmountMinor: number;
  refundBasis: ContributionRefundBasis;
}

/** One line of the explanation: which rule (null: the whole set), what it saw, the points it adds. */
export interface ExplanationLine {
  ruleId: string | null;
  text: string;
  points: number;
}

export interface RuleSetEvaluation {
  points: number;
  contributions: Contribution[];
  lines: ExplanationLine[];
  /** A visit rule found the payment to be a later tender of an order whose visit was already counted. */
  sameOrder: boolean;
}

const big = BigInt;

/** Points as a number, refused (never rounded) beyond 2^53 − 1: the rules' sum, a promotion's part, a purchase's total. */
export function checkedPoints(points: bigint): number {
  if (points > big(Number.MAX_SAFE_INTEGER)) throw new DomainError('UNPROCESSABLE', 'The payment is too large to be credited in points');
  return Number(points);
}

/** The order's amount for goods: its total less the tip (lines, service charges, rounding). */
const orderAmount = (order: PurchaseOrder) => Math.max(0, order.totalMinor - order.tipMinor);

/** `value` scaled by the payment's share of the order (1 when it pays the whole order), floored. */
function shareOf(value: bigint, payment: PaymentToEvaluate, order: PurchaseOrder): bigint {
  const whole = orderAmount(order);
  if (whole <= 0 || payment.amountMinor >= whole) return value;
  return (value * big(payment.amountMinor)) / big(whole);
}

const money = (minor: number) => `${minor} minor units`;
const isGiftCard = (line: OrderLine) => line.itemType === 'GIFT_CARD';
const describe = (line: OrderLine) => `${line.quantity} × ${line.name ?? line.itemVariationId ?? (isGiftCard(line) ? 'gift card' : 'custom amount')}`;

// Over 80 lines because it is one switch over the rule kinds, each case the whole of that kind's arithmetic and explanation.
function evaluateOne(ref: RuleRef, payment: PaymentToEvaluate): { contribution: Contribution; lines: ExplanationLine[]; sameOrder: boolean } {
  const { rule, ruleId } = ref;
  const lines: ExplanationLine[] = [];
  const say = (text: string, points = 0) => lines.push({ ruleId, text, points });
  const base = { ruleId, ruleVersion: ref.version, kind: rule.kind };
  const order = payment.order;
  switch (rule.kind) {
    case 'visit': {
      const visit = payment.orderVisit;
      if (visit && !visit.counts) {
        say('visit: another tender of this order already counted its visit (same_order)');
        return { contribution: { ...base, points: 0, basis: 'amount', basisAmountMinor: payment.amountMinor, refundBasis: 'full_refund' }, lines, sameOrder: true };
      }
      const amountMinor = visit ? visit.amountMinor : payment.amountMinor;
      const { points } = evaluateRule(rule, { amountMinor, totalMinor: amountMinor });
      say(
        points
          ? `visit: ${money(amountMinor)}${visit ? ' (the order so far)' : ''} meets the minimum of ${money(rule.minimumSpend)}: ${points} points`
          : `visit: ${money(amountMinor)}${visit ? ' (the order so far)' : ''} is below the minimum of ${money(rule.minimumSpend)}`,
        points,
      );
      return { contribution: { ...base, points, basis: 'amount', basisAmountMinor: amountMinor, refundBasis: 'full_refund' }, lines, sameOrder: false };
    }
    case 'spend': {
      const tip = payment.totalMinor - payment.amountMinor;
      let amount = big(payment.amountMinor);
      if (needsOrder(rule) && order) {
        const excludedVariations = new Set(rule.excludedItemVariationIds ?? []);
        const excludedCategories = new Set(rule.excludedCategoryIds ?? []);
        let eligible = big(orderAmount(order));
        let excludedTax = 0;
        for (const line of order.lines) {
          const byVariation = line.itemVariationId !== null && excludedVariations.has(line.itemVariationId);
          const byCategory = line.categoryIds.some((c) => excludedCategories.has(c));
          if (!isGiftCard(line) && !byVariation && !byCategory) continue;
          eligible -= big(line.totalMinor);
          excludedTax += line.taxMinor;
          const why = isGiftCard(line) ? 'a gift card sale: it earns when spent' : byVariation ? 'item variation' : 'category';
          say(`spend: ${describe(line)} is excluded (${why}): ${money(line.totalMinor)} left out`);
        }
        if (rule.taxMode === 'before_tax') {
          const tax = Math.max(0, order.taxMinor - excludedTax);
          eligible -= big(tax);
          say(`spend: before tax: the order's tax of ${money(tax)} is left out`);
        }
        if (eligible < 0n) eligible = 0n;
        amount = shareOf(eligible, payment, order);
        if (payment.amountMinor < orderAmount(order)) say(`spend: this payment is ${money(payment.amountMinor)} of the order's ${money(orderAmount(order))}: its share counts`);
      } else if (needsOrder(rule)) {
        say(`spend: the payment has ${payment.hasOrder ? 'an order that was not read' : 'no Square order'}: tax and exclusions cannot be applied, the payment's amount counts`);
      } else if (order?.lines.some(isGiftCard)) {
        say("spend: this rule reads no order and counts the payment as charged, its gift card sale included (a spend rule that reads the order, before tax or with exclusions, leaves it out)");
      }
      const basisAmount = Number(amount) + (rule.basis === 'total' ? tip : 0);
      const { points } = evaluateRule({ ...rule, taxMode: undefined, excludedCategoryIds: undefined, excludedItemVariationIds: undefined }, { amountMinor: basisAmount, totalMinor: basisAmount });
      say(
        basisAmount < rule.minimumSpend
          ? `spend: ${money(basisAmount)} is below the minimum of ${money(rule.minimumSpend)}`
          : `spend: ${money(basisAmount)}${rule.basis === 'total' ? ' (tip included)' : ''} at ${rule.points} per ${money(rule.per)}, floored: ${points} points`,
        points,
      );
      return { contribution: { ...base, points, basis: rule.basis, basisAmountMinor: basisAmount, refundBasis: rule.basis }, lines, sameOrder: false };
    }
    case 'item':
    case 'category': {
      if (!order) {
        say(`${rule.kind}: the payment has ${payment.hasOrder ? 'an order that was not read' : 'no Square order'}: no items to count`);
        return { contribution: { ...base, points: 0, basis: 'amount', basisAmountMinor: 0, refundBasis: 'amount' }, lines, sameOrder: false };
      }
      const listed = new Set(rule.kind === 'item' ? rule.itemVariationIds : rule.categoryIds);
      let units = 0n;
      let matchedMinor = 0n;
      for (const line of order.lines) {
        const listedLine = rule.kind === 'item' ? line.itemVariationId !== null && listed.has(line.itemVariationId) : line.categoryIds.some((c) => listed.has(c));
        if (!listedLine || isGiftCard(line)) continue;
        const quantity = scaledQuantity(line.quantity);
        units += quantity;
        matchedMinor += big(line.totalMinor);
        say(`${rule.kind}: ${describe(line)} × ${rule.points} points`, checkedPoints((quantity * big(rule.points)) / QUANTITY_SCALE));
      }
      const points = checkedPoints(shareOf(units * big(rule.points), payment, order) / QUANTITY_SCALE);
      if (!units) say(`${rule.kind}: no line of the order is ${rule.kind === 'item' ? 'a listed item variation' : 'in a listed category'}`);
      else if (payment.amountMinor < orderAmount(order)) say(`${rule.kind}: this payment's share of the order, floored: ${points} points`, points);
      return { contribution: { ...base, points, basis: 'amount', basisAmountMinor: Number(shareOf(matchedMinor, payment, order)), refundBasis: 'amount' }, lines, sameOrder: false };
    }
    default: {
      const unexpected: never = rule;
      return unexpected;
    }
  }
}

/** The points a set of rules gives a payment: the sum of each rule's, with every contribution and why. */
export function evaluateRules(rules: readonly RuleRef[], payment: PaymentToEvaluate): RuleSetEvaluation {
  for (const [name, value] of [['amountMinor', payment.amountMinor], ['totalMinor', payment.totalMinor]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new DomainError('VALIDATION_FAILED', `${name} must be a non-negative whole number of minor units`);
  }
  const contributions: Contribution[] = [];
  const lines: ExplanationLine[] = [];
  let sameOrder = false;
  for (const ref of rules) {
    const one = evaluateOne(ref, payment);
    contributions.push(one.contribution);
    lines.push(...one.lines);
    sameOrder ||= one.sameOrder;
  }
  const points = checkedPoints(contributions.reduce((sum, c) => sum + big(c.points), 0n));
  if (rules.length > 1) lines.push({ ruleId: null, text: `${rules.length} rules in force: their points add up to ${points}`, points });
  return { points, contributions, lines, sameOrder };
}

/** Whether any of the rules needs the payment's Square order: only then is it fetched. */
export const rulesNeedOrder = (rules: readonly RuleRef[]): boolean => rules.some((r) => needsOrder(r.rule));

/** Whether any of the rules reads the categories of the order's items (a catalog read beside the order). */
export const rulesNeedCategories = (rules: readonly RuleRef[]): boolean =>
  rules.some(({ rule }) => rule.kind === 'category' || (rule.kind === 'spend' && Boolean(rule.excludedCategoryIds?.length)));
