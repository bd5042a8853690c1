/**
 * What remains of a wallet's credits (its lots): spending takes the oldest points first (first earned, first spent),
 * so what the balance still holds is the newest credits covering it, the oldest of those partly spent. The expiry
 * rules date the points still held from it (`remainingLots` in expiry.ts); the wallet's fold finds from it which
 * payments' points an expiry took (the oldest of those held), so that a refund of one of them does not take them
 * from the balance a second time.
 */

/**
 * The points the balance still holds of each lot, given newest first, read back only until they cover the balance:
 * newest first. A balance of zero or less holds none; a lot of zero or fewer points holds none.
 */
export function heldNewestFirst<L extends { points: number }>(newestFirst: Iterable<L>, balance: number): { lot: L; points: number }[] {
  const held: { lot: L; points: number }[] = [];
  let left = balance;
  for (const lot of newestFirst) {
    if (left <= 0) break;
    if (lot.points <= 0) continue;
    const points = Math.min(lot.points, left);
    held.push({ lot, points });
    left -= points;
  }
  return held;
}
