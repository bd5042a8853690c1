/**
 * Promotions (issue 19): a merchant's "double points Tuesdays 14:00–17:00" or "+50 points this weekend". A
 * promotion adds to the points a purchase earns by the reward rules: a multiplier gives the rules' points times
 * (multiplier − 1) more, a bonus a fixed number more. Its window is read in its time zone (that of the locations it
 * is limited to, else the workspace's, the Square main location's; recorded with the promotion when it is scheduled),
 * through `Intl`, so daylight-saving changes follow the IANA database Node ships rather than a table of ours.
 *
 * As in Square Loyalty, at most one promotion applies to a purchase: of those that qualify, the one giving the
 * most points (on a tie, the one scheduled first).
 */
import { z } from 'zod';
import { wholeNumber } from '../shared/whole-number.ts';
import type { PurchaseOrder } from '../rewards/order.ts';
import { checkedPoints } from '../rewards/evaluate.ts';
import { wallClock } from '../shared/time-zone.ts';

const MAX_BONUS = 1_000_000;
const MAX_MULTIPLIER = 10;
const MAX_MINOR_UNITS = 1_000_000_000_000;
const MAX_USES_PER_DAY = 1_000;

export const WEEKDAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const localDate = (what: string) =>
  z
    .string({ error: `${what} must be a date, YYYY-MM-DD` })
    .regex(/^\d{4}-\d{2}-\d{2}$/, `${what} must be a date, YYYY-MM-DD (in the workspace's time zone)`)
    .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), `${what} is not a calendar date`);

/** `HH:MM`, 00:00–24:00 (24:00 only as the end of a range: the end of the day). */
const clock = (what: string) => z.string({ error: `${what} must be a time, HH:MM` }).regex(/^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/, `${what} must be a time, HH:MM (00:00 to 24:00)`);

export const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export const incentiveSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('multiplier'), multiplier: wholeNumber('multiplier', 1, MAX_MULTIPLIER) }).strict(),
    z.object({ type: z.literal('bonus'), points: wholeNumber('points (the bonus)', 1, MAX_BONUS) }).strict(),
  ],
  { error: "incentive.type must be 'multiplier' (with multiplier 1–10) or 'bonus' (with points 1–1,000,000)" },
);

const hourRange = z.object({ from: clock('from'), to: clock('to') }).strict();

/** The fields of a promotion as first written (`PromotionScheduled` version 1). */
const promotionFieldsV1 = {
  name: z.string({ error: 'name must be a string' }).trim().min(1, 'name must not be empty').max(100, 'name must be at most 100 characters'),
  incentive: incentiveSchema,
  startsOn: localDate('startsOn'),
  /** Omitted: no end. */
  endsOn: localDate('endsOn').optional(),
  /** Omitted: every day. */
  daysOfWeek: z
    .array(z.enum(WEEKDAYS, { error: `daysOfWeek lists days among ${WEEKDAYS.join(', ')}` }))
    .min(1, 'daysOfWeek must list at least one day (omit it for every day)')
    .refine((days) => new Set(days).size === days.length, 'daysOfWeek lists a day twice')
    .optional(),
  /** Omitted: the whole day. */
  hours: z.array(hourRange).min(1, 'hours must list at least one range (omit it for the whole day)').max(24).optional(),
  /** Omitted: every location of the merchant. Checked against the locations Square lists for the merchant. */
  locationIds: z.array(z.string().min(1).max(64)).min(1, 'locationIds must list at least one location (omit it for all)').max(300).optional(),
  /** On the payment's amount, tip excluded, in minor units of the workspace's currency. */
  minimumSpend: wholeNumber('minimumSpend (minor units of the workspace currency)', 0, MAX_MINOR_UNITS).optional(),
  /** How many purchases of one customer (Square customer) it applies to per local day. */
  limitPerCustomerPerDay: wholeNumber('limitPerCustomerPerDay', 1, MAX_USES_PER_DAY).optional(),
};

/** Checks across fields, for every version. */
function checkPromotion(p: z.output<z.ZodObject<typeof promotionFieldsV1>>, ctx: z.RefinementCtx): void {
  if (p.endsOn && p.endsOn < p.startsOn) ctx.addIssue({ code: 'custom', path: ['endsOn'], message: `endsOn (${p.endsOn}) is before startsOn (${p.startsOn}): the window would end before it starts` });
  const ranges = (p.hours ?? []).map((h, i) => ({ i, from: minutesOf(h.from), to: minutesOf(h.to) }));
  for (const r of ranges) {
    if (r.from === 24 * 60) ctx.addIssue({ code: 'custom', path: ['hours', r.i, 'from'], message: 'from must be before 24:00' });
    else if (r.to <= r.from) ctx.addIssue({ code: 'custom', path: ['hours', r.i, 'to'], message: 'to must be after from: the range would end before it starts (use 24:00 for the end of the day)' });
  }
  // Two ranges sharing a minute would make the promotion apply twice: refuse rather than guess which one counts.
  const sorted = ranges.filter((r) => r.to > r.from).sort((a, b) => a.from - b.from);
  for (let k = 1; k < sorted.length; k++) {
    const [before, after] = [sorted[k - 1], sorted[k]];
    if (before && after && after.from < before.to) {
      ctx.addIssue({ code: 'custom', path: ['hours', after.i], message: `hours[${after.i}] overlaps hours[${before.i}]: the promotion would apply twice in the shared minutes` });
    }
  }
  if (p.locationIds && new Set(p.locationIds).size !== p.locationIds.length) ctx.addIssue({ code: 'custom', path: ['locationIds'], message: 'locationIds lists a location twice' });
}

/** Up to 100 Square catalog ids, none twice. */
const catalogIds = (what: string, kind: string) =>
  z
    .array(z.string({ error: `${what} lists ${kind} ids (strings)` }).min(1).max(64), { error: `${what} must be a list of ${kind} ids` })
    .min(1, `${what} must list at least one id (omit it for any ${kind === 'item variation' ? 'item' : kind})`)
    .max(100, `${what} lists at most 100 ids`)
    .refine((ids) => new Set(ids).size === ids.length, `${what} lists an id twice`);

/** `PromotionScheduled` version 1's promotion: no qualifying items (kept so stored events decode as written). */
export const promotionSchemaV1 = z.object(promotionFieldsV1).strict().superRefine(checkPromotion);

/**
 * What a merchant schedules. Dates and hours are local to the workspace's time zone; `endsOn` is the last day
 * included; each hour range includes `from` and excludes `to`. `itemVariationIds` and `categoryIds` (Square's
 * qualifying items, version 2): the promotion applies only to a payment whose Square order has a line of a listed
 * item variation or of an item in a listed category; given both, either qualifies.
 */
export const promotionSchema = z
  .object({
    ...promotionFieldsV1,
    /** Omitted (with `categoryIds`): any purchase. Checked against the merchant's Square catalog when scheduled. */
    itemVariationIds: catalogIds('itemVariationIds', 'item variation').optional(),
    categoryIds: catalogIds('categoryIds', 'category').optional(),
  })
  .strict()
  .superRefine(checkPromotion);

export type Promotion = z.output<typeof promotionSchema>;
export type Incentive = z.output<typeof incentiveSchema>;

/** A promotion as scheduled: in force from `scheduledAt` until `endedAt` (payments created in between may use it). */
export interface ScheduledPromotion {
  promotionId: string;
  promotion: Promotion;
  /** IANA name, e.g. `America/New_York`: its locations' (`locationIds`), else the workspace's, when it was scheduled. */
  timeZone: string;
  scheduledAt: string;
  endedAt: string | null;
}

/** A payment's wall-clock time in a time zone. */
export interface LocalTime {
  date: string;
  weekday: Weekday;
  minutes: number;
}

/** The wall-clock date, weekday and minute of the day of an instant in a time zone (daylight saving included). */
export function localTime(at: string, timeZone: string): LocalTime {
  const clock = wallClock(new Date(at), timeZone);
  const weekday = WEEKDAYS.find((w) => w === clock.weekday);
  if (!weekday) throw new Error(`unexpected weekday ${clock.weekday}`);
  const pad = (n: number) => String(n).padStart(2, '0');
  return { date: `${clock.year}-${pad(clock.month)}-${pad(clock.day)}`, weekday, minutes: clock.hour * 60 + clock.minute };
}

/** Whether a local time falls in the promotion's dates, days and hours. */
export function inWindow(promotion: Promotion, local: LocalTime): boolean {
  if (local.date < promotion.startsOn || (promotion.endsOn !== undefined && local.date > promotion.endsOn)) return false;
  if (promotion.daysOfWeek && !promotion.daysOfWeek.includes(local.weekday)) return false;
  if (!promotion.hours) return true;
  return promotion.hours.some((h) => local.minutes >= minutesOf(h.from) && local.minutes < minutesOf(h.to));
}

/** What a purchase offers the promotions. */
export interface PromotionPurchase {
  /** Square's `created_at`: the moment the promotion is evaluated at. */
  createdAt: string;
  locationId: string;
  /** Amount excluding tip, in minor units (the minimum spend applies to it). */
  amountMinor: number;
  /** The payment's Square order when it was read (a promotion limited to items needs it); null otherwise. */
  order: PurchaseOrder | null;
  /** The points the rules gave; a promotion adds to a purchase that earns. */
  basePoints: number;
  /**
   * How many purchases of this customer the promotion has applied to on that local day so far, this one aside
   * (another tender of its order is the same purchase); null when the
   * purchase has no customer to count against (a promotion with a limit then does not apply).
   */
  usesToday(promotionId: string, localDate: string): number | null;
}

/** The promotion a purchase earned extra points from, as the purchase event records it. */
export interface AppliedPromotion {
  promotionId: string;
  name: string;
  incentive: Incentive;
  /** Extra points, on top of the rules' points. */
  points: number;
  /** The local day it counted on (its limit per customer per day counts per this day). */
  localDate: string;
  limitPerCustomerPerDay: number | null;
}

/** Extra points a promotion gives over `basePoints` (beyond 2^53 − 1 refused, as the rules' sum is). */
export function promotionPoints(incentive: Incentive, basePoints: number): number {
  return incentive.type === 'multiplier' ? checkedPoints(BigInt(basePoints) * BigInt(incentive.multiplier - 1)) : incentive.points;
}

/** A purchase's points: the rules' plus its promotion's (beyond 2^53 − 1 refused, never rounded). */
export const purchasePoints = (basePoints: number, promotion: Pick<AppliedPromotion, 'points'> | null): number => checkedPoints(BigInt(basePoints) + BigInt(promotion?.points ?? 0));

/** Whether the promotion is limited to qualifying items, so a payment's Square order decides it. */
export const needsOrder = (promotion: Promotion): boolean => Boolean(promotion.itemVariationIds || promotion.categoryIds);

/** Whether the order has a line of a listed item variation, or of an item in a listed category. */
function hasQualifyingItem(promotion: Promotion, order: PurchaseOrder | null): boolean {
  if (!order) return false;
  const variations = new Set(promotion.itemVariationIds ?? []);
  const categories = new Set(promotion.categoryIds ?? []);
  return order.lines.some((line) => (line.itemVariationId !== null && variations.has(line.itemVariationId)) || line.categoryIds.some((c) => categories.has(c)));
}

/**
 * Of the promotions that could apply to a payment, its items aside (in force when it was created, at its location,
 * its spend, its local day and hour): whether any needs its order, and any its items' categories. A promotion
 * limited to items whose window has passed, or of another location, reads no order.
 */
export function promotionsNeedOrder(
  promotions: readonly ScheduledPromotion[],
  payment: Pick<PromotionPurchase, 'createdAt' | 'locationId' | 'amountMinor'>,
): { order: boolean; categories: boolean } {
  // Points are not known before the order is read: any positive amount stands for them.
  const purchase = { createdAt: payment.createdAt, locationId: payment.locationId, amountMinor: payment.amountMinor, basePoints: 1, order: 'not_read_yet' as const };
  const limited = promotions.filter((p) => needsOrder(p.promotion) && qualifies(p, purchase) !== null);
  return { order: limited.length > 0, categories: limited.some((p) => Boolean(p.promotion.categoryIds)) };
}

/** Whether a promotion is in force for a payment created at `at` (scheduled at or before it, not ended by then). */
export const inForce = (p: ScheduledPromotion, at: string): boolean => Date.parse(p.scheduledAt) <= Date.parse(at) && (p.endedAt === null || Date.parse(at) < Date.parse(p.endedAt));

/**
 * Whether a promotion's conditions hold for a purchase, leaving aside its per-day limit; with its local time.
 * `order: 'not_read_yet'` leaves its qualifying items aside too (the streams a decision may need are read before it).
 */
export function qualifies(p: ScheduledPromotion, purchase: Omit<PromotionPurchase, 'usesToday' | 'order'> & { order: PurchaseOrder | null | 'not_read_yet' }): LocalTime | null {
  if (!inForce(p, purchase.createdAt) || purchase.basePoints <= 0) return null;
  const { promotion } = p;
  if (promotion.locationIds && !promotion.locationIds.includes(purchase.locationId)) return null;
  if (promotion.minimumSpend !== undefined && purchase.amountMinor < promotion.minimumSpend) return null;
  if (purchase.order !== 'not_read_yet' && needsOrder(promotion) && !hasQualifyingItem(promotion, purchase.order)) return null;
  const local = localTime(purchase.createdAt, p.timeZone);
  return inWindow(promotion, local) ? local : null;
}

/** The one promotion that applies to a purchase (most points; first scheduled on a tie), or null. */
export function bestPromotion(promotions: readonly ScheduledPromotion[], purchase: PromotionPurchase): AppliedPromotion | null {
  let best: AppliedPromotion | null = null;
  for (const p of promotions) {
    const local = qualifies(p, purchase);
    if (!local) continue;
    const limit = p.promotion.limitPerCustomerPerDay ?? null;
    if (limit !== null) {
      const used = purchase.usesToday(p.promotionId, local.date);
      if (used === null || used >= limit) continue;
    }
    const points = promotionPoints(p.promotion.incentive, purchase.basePoints);
    if (points <= 0 || (best && best.points >= points)) continue;
    best = { promotionId: p.promotionId, name: p.promotion.name, incentive: p.promotion.incentive, points, localDate: local.date, limitPerCustomerPerDay: limit };
  }
  return best;
}
