import test from 'ava';
import { evaluateRule, rewardRuleSchema, type RewardRule } from '../../domain/rewards/rule.ts';
import { activeRule, ruleSetDecider } from '../../domain/rewards/rule-set.ts';
import { deciderSpec } from '../support/decider-spec.ts';

const spend = (over: Partial<Extract<RewardRule, { kind: 'spend' }>> = {}): RewardRule => ({ kind: 'spend', points: 1, per: 100, basis: 'amount', minimumSpend: 0, ...over });
const visit = (over: Partial<Extract<RewardRule, { kind: 'visit' }>> = {}): RewardRule => ({ kind: 'visit', points: 10, minimumSpend: 0, ...over });

test('spend rules floor: 1 point per $1 on $10.99 earns 10', (t) => {
  t.is(evaluateRule(spend(), { amountMinor: 1099, totalMinor: 1099 }).points, 10);
  t.is(evaluateRule(spend({ points: 3, per: 250 }), { amountMinor: 999, totalMinor: 999 }).points, 9);
});

test('spend rules use the basis they name: amount excludes the tip, total includes it, and the credit records it', (t) => {
  const payment = { amountMinor: 1000, totalMinor: 1250 };
  t.deepEqual(evaluateRule(spend({ basis: 'amount' }), payment), { points: 10, basis: 'amount', basisAmountMinor: 1000 });
  t.deepEqual(evaluateRule(spend({ basis: 'total' }), payment), { points: 12, basis: 'total', basisAmountMinor: 1250 });
});

test('zero amounts earn nothing; the minimum is inclusive', (t) => {
  t.is(evaluateRule(spend(), { amountMinor: 0, totalMinor: 0 }).points, 0);
  t.is(evaluateRule(visit(), { amountMinor: 0, totalMinor: 0 }).points, 10, 'a visit with no minimum counts even at zero');
  t.is(evaluateRule(visit({ minimumSpend: 500 }), { amountMinor: 499, totalMinor: 600 }).points, 0, "a tip doesn't reach a visit minimum");
  t.is(evaluateRule(visit({ minimumSpend: 500 }), { amountMinor: 500, totalMinor: 500 }).points, 10);
  t.is(evaluateRule(spend({ minimumSpend: 1000 }), { amountMinor: 999, totalMinor: 999 }).points, 0);
  t.is(evaluateRule(spend({ minimumSpend: 1000 }), { amountMinor: 1000, totalMinor: 1000 }).points, 10);
});

test('huge amounts are exact, and an unrepresentable result is refused rather than rounded', (t) => {
  t.is(evaluateRule(spend(), { amountMinor: Number.MAX_SAFE_INTEGER, totalMinor: Number.MAX_SAFE_INTEGER }).points, Math.floor(Number.MAX_SAFE_INTEGER / 100));
  const error = t.throws(() => evaluateRule(spend({ points: 1_000_000, per: 1 }), { amountMinor: 2 ** 50, totalMinor: 2 ** 50 }));
  t.is((error as { code?: string }).code, 'UNPROCESSABLE');
  t.throws(() => evaluateRule(spend(), { amountMinor: -1, totalMinor: 0 }), { message: /non-negative whole number/ });
  t.throws(() => evaluateRule(spend(), { amountMinor: 10.5, totalMinor: 0 }), { message: /whole number/ });
});

test('rule validation: integers only, positive rates, sane bounds, no unknown fields', (t) => {
  t.true(rewardRuleSchema.safeParse({ kind: 'spend', points: 1, per: 100, basis: 'total' }).success);
  for (const bad of [
    { kind: 'spend', points: 0, per: 100, basis: 'amount' },
    { kind: 'spend', points: 1, per: 0, basis: 'amount' },
    { kind: 'spend', points: 1, per: 100 },
    { kind: 'visit', points: -5 },
    { kind: 'visit', points: 2.5 },
    { kind: 'visit', points: 5, minimumSpend: -1 },
    { kind: 'visit', points: 5, minimumSpend: 1e15 },
    { kind: 'visit', points: '5' },
    { kind: 'spend', points: 1, per: 100, basis: 'amount', bonus: 2 },
  ]) {
    t.false(rewardRuleSchema.safeParse(bad).success, JSON.stringify(bad));
  }
});

test('rule set: versions number up from 1; activation switches the single active version', (t) => {
  const now = '2026-11-26T10:00:00.000Z';
  const created = (ruleId: string, version: number) =>
    ({ type: 'RewardRuleCreated', data: { tenantId: 't1', ruleId, version, rule: spend(), createdBy: 'u', createdAt: now } }) as const;
  const spec = deciderSpec(ruleSetDecider);
  spec(t).given(created('r1', 1)).when({ type: 'CreateRewardRule', tenantId: 't1', ruleId: 'r2', rule: spend(), by: 'u', now }).then([created('r2', 2)]);
  const activate = (ruleId: string) => ({ type: 'ActivateRewardRule', tenantId: 't1', ruleId, by: 'u', now }) as const;
  const activated = (ruleId: string, version: number, deactivatedRuleId: string | null) =>
    ({ type: 'RewardRuleActivated', data: { tenantId: 't1', ruleId, version, deactivatedRuleIds: deactivatedRuleId ? [deactivatedRuleId] : [], alongside: false, activatedBy: 'u', activatedAt: now } }) as const;
  spec(t).given(created('r1', 1), created('r2', 2), activated('r1', 1, null)).when(activate('r2')).then([activated('r2', 2, 'r1')]);
  spec(t).given(created('r1', 1), activated('r1', 1, null)).when(activate('r1')).thenNothing();
  spec(t).given(created('r1', 1)).when(activate('nope')).thenThrows('NOT_FOUND');
  const state = [created('r1', 1), created('r2', 2), activated('r2', 2, null)].reduce(ruleSetDecider.evolve, ruleSetDecider.initialState);
  t.is(activeRule(state)?.version, 2);
});
