/**
 * The hot-wallet scenario of issue 14.3, shared by tests/http/hot-wallet.test.ts (which asserts the outcome) and
 * bench/streams.ts (which reports the timing): a wallet with a long history, many concurrent redemptions on it
 * through the API, and another tenant reading its own wallet meanwhile.
 */
import { v4 as uuid } from 'uuid';
import type { EventStore, NewEvent } from '../../domain/ports/event-store.ts';
import { walletStream, type WalletEvent } from '../../domain/wallets/wallet.ts';
import type { api } from './http.ts';

export interface WalletOwner {
  walletId: string;
  tenantId: string;
  consumerId: string;
}

/**
 * Appends `size` events to the wallet's stream, as a regular customer's history would hold them (credits of
 * 10, redemptions of 10, with their payment ids and idempotency keys), ending at exactly `balance` points.
 */
export async function seedWallet(store: EventStore, owner: WalletOwner, size: number, balance: number): Promise<void> {
  if (size < 1) throw new Error('a seeded wallet has at least one event');
  const event = (i: number): WalletEvent => {
    if (i === size - 1) return credit(owner, `seed-${owner.walletId}-${i}`, balance - (i % 2 === 1 ? 10 : 0));
    return i % 2 === 0
      ? credit(owner, `seed-${owner.walletId}-${i}`, 10)
      : { type: 'PointsRedeemed', data: { ...owner, points: 10, idempotencyKey: `seed-${i}`, reference: null, redeemedBy: 'seed' } };
  };
  const events: NewEvent[] = Array.from({ length: size }, (_, i) => ({ id: uuid(), ...event(i), metadata: { actor: 'system:seed' } }));
  for (let from = 0; from < size; from += 1_000) await store.append(walletStream(owner.walletId), events.slice(from, from + 1_000), 'any');
}

export function credit(owner: WalletOwner, paymentId: string, points: number): WalletEvent {
  return {
    type: 'PointsCredited',
    data: { ...owner, paymentId, points, ruleId: 'rule-seed', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' },
  };
}

export interface StormResult {
  /** Answers by `<status> <code>`, e.g. `200` or `409 INSUFFICIENT_POINTS`. */
  answers: Record<string, number>;
  elapsedMs: number;
  /** Latencies (ms) of the other tenant's reads made while the redemptions ran. */
  otherReads: number[];
}

/**
 * Sends `count` redemptions of `points` at once (each its own idempotency key) to one wallet, while another
 * tenant reads `otherPath` in a loop, one read at a time, until the last redemption is answered.
 */
export async function redeemStorm(
  call: ReturnType<typeof api>,
  wallet: { walletId: string; token: string },
  count: number,
  points: number,
  other: { token: string; path: string },
): Promise<StormResult> {
  let done = false;
  const otherReads: number[] = [];
  const reading = (async () => {
    while (!done) {
      const started = performance.now();
      const response = await call('GET', other.path, { token: other.token });
      if (response.status !== 200) throw new Error(`the other tenant's read answered ${response.status}`);
      otherReads.push(performance.now() - started);
    }
  })();
  const started = performance.now();
  const responses = await Promise.all(
    Array.from({ length: count }, () =>
      call('POST', `/api/v1/client/wallets/${wallet.walletId}/redeem`, { token: wallet.token, body: { points, idempotencyKey: uuid() } }),
    ),
  );
  const elapsedMs = performance.now() - started;
  done = true;
  await reading;
  const answers: Record<string, number> = {};
  for (const r of responses) {
    const key = r.status === 200 ? '200' : `${r.status} ${r.body?.error?.code ?? ''}`.trim();
    answers[key] = (answers[key] ?? 0) + 1;
  }
  return { answers, elapsedMs, otherReads };
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : Number.NaN;
}
