/**
 * Points expiry, pure: which of a wallet's points a workspace's policy lets expire at an instant.
 *
 * The model is Square Loyalty's (`LoyaltyProgram.expiration_policy.expiration_duration`, `P[n]M`): points
 * expire a fixed number of months after they were earned, and are valid through the last day of that month
 * (earned on July 6, 2020 with 12 months: they expire on August 1, 2021); spending takes the oldest points
 * first (first earned, first spent). So what remains of a wallet's earned points is always its newest credits,
 * summing to the balance (the oldest of them partly spent). A workspace may add (or use instead) an inactivity
 * rule, which Square does not have: every point expires once the customer has neither earned nor spent for a
 * number of months (valid through the end of that month too).
 *
 * Two rules keep expiry from surprising anyone: points locked in an issued reward never expire while locked,
 * and a policy's clock starts when the policy was set, not when the points were earned, unless the merchant
 * confirmed applying it to existing points (`retroactive`).
 *
 * The earning time of points is when their event was recorded in the log, so replaying the log gives the
 * same answer every time.
 */
import { z } from 'zod';
import type { WalletEvent } from './events.ts';
import { heldNewestFirst } from './lots.ts';
import { localMidnight, wallClock } from '../shared/time-zone.ts';
import { expiryPolicySetV2 } from '../program/events.ts';
import { lockedDelta, pointsDelta, walletDecider } from './wallet.ts';

/**
 * A workspace's policy, as its `ExpiryPolicySet` recorded it (less who and for which workspace): `earnedMonths`,
 * points expire this many months after they were earned; `inactivityMonths`, all points expire after this many
 * months without earning or spending (`null` switches a rule off; at least one is on when a policy applies);
 * `effectiveFrom`, when it was set (points earned before count from here unless `retroactive`); `timeZone`, whose
 * calendar months the deadlines follow.
 */
export const expiryPolicy = expiryPolicySetV2.omit({ tenantId: true, setBy: true });
export type ExpiryPolicy = z.infer<typeof expiryPolicy>;

/** A wallet as expiry sees it. */
export interface WalletTimeline {
  /**
   * Points added (credits, claims, positive adjustments), oldest first, with when they were recorded; a purchase's
   * credit less what its refunds reversed (`lessReversals`).
   */
  credits: readonly { at: Date; points: number }[];
  balance: number;
  locked: number;
  /** The last time the customer earned or spent (redemption, reward redeemed); null if never. */
  lastActivityAt: Date | null;
}

export interface Lot {
  at: Date;
  points: number;
}

export interface ExpiryDue {
  points: number;
  rule: 'earned' | 'inactivity';
  /** The earliest instant at which the points due became due (null when none are). */
  dueSince: Date | null;
}

export const MIN_EXPIRY_MONTHS = 1;
export const MAX_EXPIRY_MONTHS = 60;

/** `date` plus `months` calendar months in UTC; the 31st of a shorter month is its last day. */
export function addMonths(date: Date, months: number): Date {
  const result = new Date(date.getTime());
  const day = result.getUTCDate();
  result.setUTCDate(1);
  result.setUTCMonth(result.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(result.getUTCFullYear(), result.getUTCMonth() + 1, 0)).getUTCDate();
  result.setUTCDate(Math.min(day, lastDay));
  return result;
}

/**
 * When points whose clock started at `start` expire after `months`: valid through the last day of the month
 * `months` later, so they expire at the start of the month after it, as in Square Loyalty. The months are the
 * workspace's calendar (`timeZone`): `start`'s local date plus the months, and 00:00 local time on the first day of
 * the following month (or, where daylight saving skips that midnight, the first instant after it). The day of the
 * month plays no part: the 31st of a month counts as its last day in a shorter one, whose month is the same.
 */
export function expiresAfter(start: Date, months: number, timeZone: string): Date {
  if (timeZone === 'UTC') {
    const due = addMonths(start, months);
    return new Date(Date.UTC(due.getUTCFullYear(), due.getUTCMonth() + 1, 1));
  }
  const { year, month } = localMonth(start, timeZone);
  const key = `${timeZone} ${year} ${month + months + 1}`;
  let deadline = monthStarts.get(key);
  if (!deadline) {
    if (monthStarts.size >= MONTH_STARTS_KEPT) monthStarts.clear();
    deadline = localMidnight(year, month + months + 1, 1, timeZone);
    monthStarts.set(key, deadline);
  }
  return new Date(deadline.getTime());
}

/**
 * The starts of local months already found, by zone and month: a wallet's run finds a deadline per lot, and asking
 * `Intl` for each (five formats a deadline) would make a long wallet's run far slower than in UTC.
 */
const monthStarts = new Map<string, Date>();
const MONTH_STARTS_KEPT = 10_000;

/**
 * The local year and month (1–12) of an instant. Every zone's offset is within ±16 hours (−12:00 to +14:00 today),
 * so away from the edges of a UTC month the local month is the UTC one, without asking `Intl`.
 */
function localMonth(at: Date, timeZone: string): { year: number; month: number } {
  const day = at.getUTCDate();
  const hour = at.getUTCHours();
  const lastDay = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 0)).getUTCDate();
  if ((day > 1 || hour >= 16) && (day < lastDay || hour < 8)) return { year: at.getUTCFullYear(), month: at.getUTCMonth() + 1 };
  const local = wallClock(at, timeZone);
  return { year: local.year, month: local.month };
}

/** The UTC day of an instant, `YYYY-MM-DD`: the period a run expires points for. */
export const periodOf = (instant: Date) => instant.toISOString().slice(0, 10);

/**
 * The points still held from each credit, oldest first: the newest credits whose sum covers the balance
 * (spending took the oldest first), the oldest of them cut to what remains. A balance of zero or less holds none.
 */
export function remainingLots(credits: readonly { at: Date; points: number }[], balance: number): Lot[] {
  return heldNewestFirst(newestFirst(credits), balance)
    .reverse()
    .map(({ lot, points }) => ({ at: lot.at, points }));
}

function* newestFirst<T>(items: readonly T[]): Generator<T> {
  for (let i = items.length - 1; i >= 0; i--) yield items[i]!;
}

/**
 * A refund takes back its own purchase's points, not the oldest ones: each credit of a payment is reduced by what
 * that payment's reversals took from the balance (never below 0; the part of a refund that had expired already,
 * `fromExpired`, left the balance with the expiry and is not counted here; a reversal beyond it, which the wallet does not allow, would count
 * as spending). Without this, buying and returning would leave old points in place of the new ones and push their
 * expiry back. Oldest first, as given.
 */
export function lessReversals<C extends { at: Date; points: number; paymentId?: string | null }>(credits: readonly C[], reversed: ReadonlyMap<string, number>): C[] {
  const left = new Map(reversed);
  const result = credits.map((credit) => ({ ...credit }));
  for (let i = result.length - 1; i >= 0; i--) {
    const credit = result[i]!;
    const owed = credit.paymentId ? (left.get(credit.paymentId) ?? 0) : 0;
    if (owed <= 0) continue;
    const taken = Math.min(owed, Math.max(0, credit.points));
    credit.points -= taken;
    left.set(credit.paymentId!, owed - taken);
  }
  return result;
}

/**
 * The lots that can expire: a reward's locked points are the oldest (redeeming it spends the oldest points first),
 * so the locked amount comes off the oldest lots, which are also the first to come due. Oldest first.
 */
function unlockedLots(lots: readonly Lot[], locked: number): Lot[] {
  let left = Math.max(0, locked);
  const unlocked: Lot[] = [];
  for (const lot of lots) {
    const kept = Math.min(lot.points, left);
    left -= kept;
    if (lot.points > kept) unlocked.push({ at: lot.at, points: lot.points - kept });
  }
  return unlocked;
}

function clockStart(policy: ExpiryPolicy, at: Date): Date {
  if (policy.retroactive) return at;
  const from = new Date(policy.effectiveFrom);
  return at.getTime() > from.getTime() ? at : from;
}

/** When each remaining lot expires under the policy (by age, by inactivity, whichever comes first). */
interface Deadline {
  lot: Lot;
  at: Date;
  rule: 'earned' | 'inactivity';
}

function lotDeadlines(timeline: WalletTimeline, policy: ExpiryPolicy): Deadline[] {
  const inactiveAt =
    policy.inactivityMonths !== null && timeline.lastActivityAt ? expiresAfter(clockStart(policy, timeline.lastActivityAt), policy.inactivityMonths, policy.timeZone) : null;
  return unlockedLots(remainingLots(timeline.credits, timeline.balance), timeline.locked).flatMap((lot): Deadline[] => {
    const byAge = policy.earnedMonths !== null ? expiresAfter(clockStart(policy, lot.at), policy.earnedMonths, policy.timeZone) : null;
    if (byAge && (!inactiveAt || byAge.getTime() <= inactiveAt.getTime())) return [{ lot, at: byAge, rule: 'earned' }];
    if (inactiveAt) return [{ lot, at: inactiveAt, rule: 'inactivity' }];
    return [];
  });
}

/**
 * The points that have expired by `asOf` and not been taken yet, never more than the available points: the lots
 * locked in issued rewards are left out before any is found due (they never expire while locked).
 */
export function expiryDue(timeline: WalletTimeline, policy: ExpiryPolicy, asOf: Date): ExpiryDue {
  let points = 0;
  let dueSince: Date | null = null;
  let rule: ExpiryDue['rule'] = 'earned';
  for (const deadline of lotDeadlines(timeline, policy)) {
    if (deadline.at.getTime() > asOf.getTime()) continue;
    points += deadline.lot.points;
    if (deadline.rule === 'inactivity') rule = 'inactivity';
    if (!dueSince || deadline.at.getTime() < dueSince.getTime()) dueSince = deadline.at;
  }
  return { points: Math.max(0, Math.min(points, timeline.balance - timeline.locked)), rule, dueSince };
}

/** An issued reward still locking points, as `expiringBy` needs it. */
export interface LockingReward {
  points: number;
  expiresAt: string;
}

/**
 * The points that will have expired by `until` if nothing changes, and the earliest date among them. `rewards` are
 * the wallet's issued rewards still locking points: one whose time runs out by `until` gives its points back, and
 * the run that expires it expires the points it freed that are due (domain/program/expiry-run.ts expires rewards
 * first), so from its `expiresAt` on they count as unlocked. The date is when the first of the points will be taken:
 * the earliest instant at which some points are due with the rewards expired by then unlocked (points due earlier
 * but locked until a reward's time runs out are taken at that time, not at their own date, which may be past), and
 * never before `now`: points already due (a reward voided after its points came due) are taken by the next run.
 */
export function expiringBy(
  timeline: WalletTimeline,
  policy: ExpiryPolicy | null,
  until: Date,
  rewards: readonly LockingReward[] = [],
  now: Date | null = null,
): { points: number; at: string | null } {
  if (!policy || (policy.earnedMonths === null && policy.inactivityMonths === null)) return { points: 0, at: null };
  // From each reward expiry to the next, the locked points are fixed: the first span where some are due gives the date.
  const unlocks = rewards
    .map((r) => ({ at: Date.parse(r.expiresAt), points: r.points }))
    .filter((r) => r.at <= until.getTime())
    .sort((a, b) => a.at - b.at);
  let locked = timeline.locked;
  let from: number | null = null;
  let at: number | null = null;
  for (let i = 0; i <= unlocks.length; i++) {
    const to = i < unlocks.length ? unlocks[i]!.at : until.getTime();
    const due = expiryDue({ ...timeline, locked }, policy, new Date(to));
    if (at === null && due.points > 0 && due.dueSince) at = Math.max(from ?? -Infinity, due.dueSince.getTime(), now?.getTime() ?? -Infinity);
    if (i === unlocks.length) return due.points > 0 && at !== null ? { points: due.points, at: new Date(at).toISOString() } : { points: 0, at: null };
    locked = Math.max(0, locked - unlocks[i]!.points);
    from = unlocks[i]!.at;
  }
  return { points: 0, at: null };
}

/** The window `expiringSoon` looks ahead. */
export const EXPIRING_SOON_DAYS = 30;

/**
 * Events that count as the customer's activity for the inactivity rule: earning or spending, and points a merchant
 * or an administrator added (often a visit without the phone: the inactivity run took them the same night before
 * 2026-12-07). A correction that removes points is not activity, nor is issuing a reward, which spends nothing (its
 * points are locked, and given back if it is voided or runs out; until 2026-12-08 an issue counted, so issuing a
 * reward and voiding it kept every point alive for another term): redeeming it is.
 */
const ACTIVITY = new Set(['PointsCredited', 'PointsRedeemed', 'RewardRedeemed']);

/** A wallet's timeline from its events and when each was recorded (the wallet's stream, in order). */
export function timelineOf(events: Iterable<{ event: WalletEvent; at: Date }>): WalletTimeline {
  const credits: { at: Date; points: number; paymentId: string | null }[] = [];
  const reversed = new Map<string, number>();
  // Whose points each expiry took is the wallet's own fold's (`expiredFrom`: after the points rewards locked).
  let wallet = walletDecider.initialState;
  let balance = 0;
  let locked = 0;
  let lastActivityAt: Date | null = null;
  for (const { event, at } of events) {
    const delta = pointsDelta(event);
    balance += delta;
    locked += lockedDelta(event);
    if (event.type === 'PointsCredited') credits.push({ at, points: delta, paymentId: event.data.paymentId });
    if (event.type === 'PointsAdjusted' && delta > 0) credits.push({ at, points: delta, paymentId: null });
    // What the refund took from the balance: the part of its purchase's points that had expired left it then (the
    // expiry took the oldest held, as `heldNewestFirst` counts them), and is not taken from the credit again.
    if (event.type === 'PointsReversed') reversed.set(event.data.paymentId, (reversed.get(event.data.paymentId) ?? 0) - delta);
    if (ACTIVITY.has(event.type) || (event.type === 'PointsAdjusted' && delta > 0)) lastActivityAt = at;
    wallet = walletDecider.evolve(wallet, event);
  }
  // A credit or an adjustment less what refunds took from the balance and what expiries took of it (the wallet's
  // lots are these credits, in this order): an expiry may take points after the oldest (those a reward locked), so
  // the points still held are not simply the newest summing to the balance.
  const held = lessReversals(credits, reversed).map(({ at, points }, lot) => ({ at, points: Math.max(0, points - wallet.expiredEverByLot.get(lot)) }));
  return { credits: held, balance, locked, lastActivityAt };
}
