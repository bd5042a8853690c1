/**
 * Whether deciding a payment needs its Square order, and its items' categories: only when a rule that applies at
 * the payment's location reads it, or a promotion that could apply to the payment is limited to items. A payment
 * no rule applies to earns nothing (`location_excluded`, `no_rule_no_credit`) whatever its order holds.
 */
import { promotionsNeedOrder, type PromotionPurchase, type ScheduledPromotion } from '../promotions/promotion.ts';
import { rulesNeedCategories, rulesNeedOrder, type RuleRef } from '../rewards/evaluate.ts';
import { appliesAtLocation } from '../rewards/rule.ts';

export function orderNeed(
  rules: readonly RuleRef[],
  promotions: readonly ScheduledPromotion[],
  payment: Pick<PromotionPurchase, 'createdAt' | 'locationId' | 'amountMinor'>,
): { order: boolean; categories: boolean } {
  const here = rules.filter((r) => appliesAtLocation(r.rule, payment.locationId));
  if (!here.length) return { order: false, categories: false };
  const byPromotions = promotionsNeedOrder(promotions, payment);
  return { order: rulesNeedOrder(here) || byPromotions.order, categories: rulesNeedCategories(here) || byPromotions.categories };
}
