/**
 * The rule set's evaluation (issue 19), pure: item and category units, tax left out, exclusions, rules adding up,
 * an order shared between tenders, and the rule set's active versions over time.
 */
import test from 'ava';
import { evaluateRules, rulesNeedCategories, rulesNeedOrder, type RuleRef } from '../../domain/rewards/evaluate.ts';
import { purchaseOrderSchema, type PurchaseOrder } from '../../domain/rewards/order.ts';
import { purchaseOrderOf } from '../../domain/payments/order-lookup.ts';
import { rulesInForce, ruleSetDecider } from '../../domain/rewards/rule-set.ts';
import type { RewardRule } from '../../domain/rewards/rule.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const ref = (ruleId: string, rule: RewardRule): RuleRef => ({ ruleId, version: 1, rule });
const spend = (over: Partial<Extract<RewardRule, { kind: 'spend' }>> = {}): RewardRule => ({ kind: 'spend', points: 1, per: 100, basis: 'amount', minimumSpend: 0, ...over });
const order = (input: unknown): PurchaseOrder => purchaseOrderSchema.parse(input);

// Two lattes with tax, a muffin, a gift card: $9.72 + $3.51 + $25.00 = $38.23. Square's gift card line has no
// catalog object: `item_type: "GIFT_CARD"`.
const CAFE_ORDER = order({
  orderId: 'o1',
  lines: [
    { name: 'Latte', itemVariationId: 'VAR-LATTE', categoryIds: ['CAT-COFFEE'], quantity: '2', totalMinor: 972, taxMinor: 72 },
    { name: 'Muffin', itemVariationId: 'VAR-MUFFIN', categoryIds: ['CAT-PASTRY'], quantity: '1', totalMinor: 351, taxMinor: 26 },
    { name: 'Gift card', itemType: 'GIFT_CARD', quantity: '1', totalMinor: 2500 },
  ],
});
const whole = { amountMinor: 3823, totalMinor: 3823, order: CAFE_ORDER, hasOrder: true };

test('item and category rules count units; spend before tax and with exclusions leaves those out; rules add up', (t) => {
  t.is(evaluateRules([ref('i', { kind: 'item', points: 5, itemVariationIds: ['VAR-LATTE'] })], whole).points, 10);
  t.is(evaluateRules([ref('c', { kind: 'category', points: 2, categoryIds: ['CAT-COFFEE', 'CAT-PASTRY'] })], whole).points, 6);
  t.is(evaluateRules([ref('s', spend())], whole).points, 38, 'after tax, nothing excluded: the amount as charged');
  t.is(evaluateRules([ref('s', spend({ taxMode: 'before_tax' }))], whole).points, 12, '$38.23 less the $25.00 gift card and $0.98 tax');
  t.is(evaluateRules([ref('s', spend({ taxMode: 'before_tax', excludedItemVariationIds: ['VAR-MUFFIN'] }))], whole).points, 9, 'the lattes before tax: $9.00');
  const all = evaluateRules([ref('s', spend()), ref('i', { kind: 'item', points: 5, itemVariationIds: ['VAR-LATTE'] }), ref('v', { kind: 'visit', points: 3, minimumSpend: 0 })], whole);
  t.is(all.points, 38 + 10 + 3);
  t.deepEqual(all.contributions.map((c) => [c.ruleId, c.points, c.refundBasis]), [['s', 38, 'amount'], ['i', 10, 'amount'], ['v', 3, 'full_refund']]);
  t.true(all.lines.some((l) => l.ruleId === null && /3 rules in force: their points add up to 51/.test(l.text)));
});

test('a gift card sold earns nothing by a rule that reads the order; a spend rule that reads none counts it and says so', (t) => {
  // A $4.50 latte and a $100 gift card loaded, one payment of $104.50.
  const sale = order({ lines: [{ name: 'Latte', itemVariationId: 'VAR-LATTE', categoryIds: ['CAT-COFFEE'], quantity: '1', totalMinor: 450 }, { name: null, itemType: 'GIFT_CARD', quantity: '1', totalMinor: 10_000 }] });
  const paid = { amountMinor: 10_450, totalMinor: 10_450, order: sale, hasOrder: true };
  const exclusions = evaluateRules([ref('s', spend({ excludedItemVariationIds: ['VAR-MUFFIN'] }))], paid);
  t.is(exclusions.points, 4, 'the latte only, not 104');
  t.true(exclusions.lines.some((l) => /1 × gift card is excluded \(a gift card sale: it earns when spent\): 10000 minor units left out/.test(l.text)));
  t.is(evaluateRules([ref('s', spend({ taxMode: 'before_tax' }))], paid).points, 4);
  t.is(evaluateRules([ref('s', spend({ taxMode: 'before_tax' }))], { ...paid, order: order({ lines: [{ itemType: 'GIFT_CARD', quantity: '1', totalMinor: 10_000 }] }), amountMinor: 10_000, totalMinor: 10_000 }).points, 0, 'a gift card alone');
  // A line Square marks as a gift card earns nothing even when a rule lists its id (a sample order can name one).
  const listed = order({ lines: [{ itemType: 'GIFT_CARD', itemVariationId: 'VAR-GIFT', categoryIds: ['CAT-GIFT'], quantity: '1', totalMinor: 2500 }] });
  const onListed = { amountMinor: 2500, totalMinor: 2500, order: listed, hasOrder: true };
  t.is(evaluateRules([ref('i', { kind: 'item', points: 5, itemVariationIds: ['VAR-GIFT'] })], onListed).points, 0);
  t.is(evaluateRules([ref('c', { kind: 'category', points: 5, categoryIds: ['CAT-GIFT'] })], onListed).points, 0);
  // Payment-only: the order was read for another rule, the spend rule still counts the payment as charged.
  const both = evaluateRules([ref('s', spend()), ref('i', { kind: 'item', points: 5, itemVariationIds: ['VAR-LATTE'] })], paid);
  t.deepEqual(both.contributions.map((c) => c.points), [104, 5]);
  t.true(both.lines.some((l) => l.ruleId === 's' && /reads no order .* gift card sale included/.test(l.text)));
});

test('Square\'s item_type becomes the line\'s: GIFT_CARD kept, absent or unknown an item', (t) => {
  const squareOrder = (itemType: string | null) => ({
    id: 'o', locationId: 'L', state: 'COMPLETED', currency: 'USD', totalMinor: 100, totalTaxMinor: 0, totalTipMinor: 0, totalDiscountMinor: 0,
    lineItems: [{ uid: 'u', name: null, catalogObjectId: null, itemType, quantity: '1', totalMinor: 100, totalTaxMinor: 0, totalDiscountMinor: 0 }],
  });
  const typeOf = (itemType: string | null) => purchaseOrderOf(squareOrder(itemType), new Map()).lines[0]?.itemType;
  t.is(typeOf('GIFT_CARD'), 'GIFT_CARD');
  t.is(typeOf('CUSTOM_AMOUNT'), 'CUSTOM_AMOUNT');
  t.is(typeOf(null), 'ITEM');
  t.is(typeOf('SOMETHING_NEW'), 'ITEM');
  t.is(order({ lines: [{ quantity: '1', totalMinor: 1 }] }).lines[0]?.itemType, 'ITEM', 'a sample order without itemType: an item');
});

test('an order paid with several tenders is shared by amount, floored; decimals of weighed items count exactly', (t) => {
  const half = { ...whole, amountMinor: 1911, totalMinor: 1911 };
  t.is(evaluateRules([ref('i', { kind: 'item', points: 5, itemVariationIds: ['VAR-LATTE'] })], half).points, 4, '10 × 1911/3823, floored');
  const weighed = order({ lines: [{ itemVariationId: 'VAR-BEANS', quantity: '1.25', totalMinor: 1250 }] });
  t.is(evaluateRules([ref('i', { kind: 'item', points: 3, itemVariationIds: ['VAR-BEANS'] })], { amountMinor: 1250, totalMinor: 1250, order: weighed, hasOrder: true }).points, 3, '3 × 1.25 = 3.75, floored');
});

test('without the order: item rules give nothing and say why; spend rules count the payment; only rules that need it read it', (t) => {
  const noOrder = { amountMinor: 1000, totalMinor: 1000, order: null, hasOrder: false };
  const item = evaluateRules([ref('i', { kind: 'item', points: 5, itemVariationIds: ['VAR-LATTE'] })], noOrder);
  t.is(item.points, 0);
  t.regex(item.lines[0]?.text ?? '', /no Square order/);
  t.is(evaluateRules([ref('s', spend({ taxMode: 'before_tax' }))], noOrder).points, 10);
  t.false(rulesNeedOrder([ref('s', spend()), ref('v', { kind: 'visit', points: 1, minimumSpend: 0 })]));
  t.true(rulesNeedOrder([ref('s', spend({ taxMode: 'before_tax' }))]));
  t.false(rulesNeedCategories([ref('i', { kind: 'item', points: 1, itemVariationIds: ['V'] })]));
  t.true(rulesNeedCategories([ref('s', spend({ excludedCategoryIds: ['C'] }))]));
});

test('rule set: activation alongside joins the active set, a plain one replaces it, deactivation takes one out; history keeps each set', (t) => {
  const at = (minute: number) => `2026-11-26T10:${String(minute).padStart(2, '0')}:00.000Z`;
  const created = (ruleId: string, version: number) => ({ type: 'RewardRuleCreated', data: { tenantId: 't', ruleId, version, rule: spend(), createdBy: 'u', createdAt: at(0) } }) as const;
  const activated = (ruleId: string, version: number, deactivatedRuleIds: string[], alongside: boolean, minute: number) =>
    ({ type: 'RewardRuleActivated', data: { tenantId: 't', ruleId, version, deactivatedRuleIds, alongside, activatedBy: 'u', activatedAt: at(minute) } }) as const;
  const spec = deciderSpec(ruleSetDecider);
  const base = [created('r1', 1), created('r2', 2), created('r3', 3), activated('r1', 1, [], false, 1)] as const;
  spec(t).given(...base).when({ type: 'ActivateRewardRule', tenantId: 't', ruleId: 'r2', by: 'u', now: at(2), alongside: true }).then([activated('r2', 2, [], true, 2)]);
  const both = [...base, activated('r2', 2, [], true, 2)] as const;
  spec(t).given(...both).when({ type: 'ActivateRewardRule', tenantId: 't', ruleId: 'r3', by: 'u', now: at(3) }).then([activated('r3', 3, ['r1', 'r2'], false, 3)]);
  spec(t).given(...both).when({ type: 'ActivateRewardRule', tenantId: 't', ruleId: 'r2', by: 'u', now: at(3), alongside: true }).thenNothing();
  const deactivated = { type: 'RewardRuleDeactivated', data: { tenantId: 't', ruleId: 'r1', version: 1, deactivatedBy: 'u', deactivatedAt: at(4) } } as const;
  spec(t).given(...both).when({ type: 'DeactivateRewardRule', tenantId: 't', ruleId: 'r1', by: 'u', now: at(4) }).then([deactivated]);
  spec(t).given(...base).when({ type: 'DeactivateRewardRule', tenantId: 't', ruleId: 'r3', by: 'u', now: at(4) }).thenNothing();
  const state = [...both, deactivated].reduce(ruleSetDecider.evolve, ruleSetDecider.initialState);
  const ids = (when: string) => {
    const r = rulesInForce(state, when);
    return r.kind === 'rules' ? r.rules.map((v) => v.ruleId) : r.kind;
  };
  t.is(ids(at(0)), 'before_program');
  t.deepEqual(ids(at(1)), ['r1']);
  t.deepEqual(ids(at(2)), ['r1', 'r2'], 'the moment of an activation is included');
  t.deepEqual(ids(at(5)), ['r2'], 'a payment after the deactivation earns by the rest');
});
