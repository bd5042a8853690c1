/**
 * Reward rules and their evaluation. Points and money are integers end to end: money in the currency's
 * minor units (cents), as Square reports it. Evaluation is pure and exact (BigInt arithmetic).
 */
import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import { DomainError } from '../shared/errors.ts';

const MAX_POINTS_PER_UNIT = 1_000_000;
const MAX_MINOR_UNITS = 1_000_000_000_000; // 10 billion in major units: far above any single payment.

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number (no fractions)`)
    .min(min, `${what} must be at least ${min}`)
    .max(max, `${what} must be at most ${max}`);

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
  })
  .strict();

export const visitRuleSchema = z
  .object({
    kind: z.literal('visit'),
    points: wholeNumber('points', 1, MAX_POINTS_PER_UNIT),
    minimumSpend: wholeNumber('minimumSpend (minor units of the workspace currency; JPY has none: 500 = ¥500)', 0, MAX_MINOR_UNITS).default(0),
  })
  .strict();

export const rewardRuleSchema = z.discriminatedUnion('kind', [spendRuleSchema, visitRuleSchema], {
  error: "kind must be 'spend' or 'visit'",
});

export type RewardRule = z.infer<typeof rewardRuleSchema>;

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
    default:
      return unreachable(rule);
  }
}
