/**
 * The wallets read model: `wallets` (one row per wallet: balance and lifetime totals) and `wallet_ledger`
 * (one row per balance-changing event). One projection owns both, so a balance and the ledger row that
 * explains it always commit together; the balance is the sum of the wallet's ledger points.
 *
 * A batch is folded into ledger entries in memory (pure), then written by a single statement: ledger rows
 * are inserted `ON CONFLICT (id) DO NOTHING`, and wallets move only by the rows actually inserted, so an
 * event applied twice changes nothing.
 */
import { lockedDelta, pointsDelta } from '../domain/wallets/wallet.ts';
import { walletBalanceEvents, type WalletBalanceEvent } from '../domain/wallets/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import type { Decoded } from '../domain/shared/codec.ts';
import { projection, type ProjectionContext } from './projection.ts';

/**
 * The kinds of ledger entries, one per step: a `PointsCredited` with `via: 'claim'` is a `claim`; a merchant's
 * correction is a `merchant_adjustment` (an administrator's an `adjustment`); each step of an issued reward
 * has its own kind, and so do points taken by the expiry policy.
 */
export const LEDGER_ENTRY_TYPES = [
  'credit',
  'reversal',
  'redemption',
  'adjustment',
  'claim',
  'merchant_adjustment',
  'reward_issued',
  'reward_redeemed',
  'reward_voided',
  'reward_expired',
  'points_expired',
] as const;
export type LedgerEntryType = (typeof LEDGER_ENTRY_TYPES)[number];

/** One `wallet_ledger` row as the fold produces it (`balance_after` is computed when it is written). */
export interface LedgerEntry {
  id: string;
  wallet_id: string;
  tenant_id: string;
  consumer_id: string;
  entry_type: LedgerEntryType;
  /** Signed: credits positive, reversals and redemptions negative, adjustments as given. */
  points: number;
  /** How the points locked by issued rewards move: + on issue, - on redeem, void and expiry. */
  locked_change: number;
  reward_id: string | null;
  issued_reward_id: string | null;
  payment_id: string | null;
  refund_id: string | null;
  admin_id: string | null;
  reason: string | null;
  reference: string | null;
  idempotency_key: string | null;
  position: string;
  /** The event's revision in its wallet's stream: the line's place in the ledger. */
  revision: number;
  created_at: string;
  /** Order within the batch: balances run in feed order. */
  seq: number;
}

type Details = Pick<LedgerEntry, 'entry_type' | 'payment_id' | 'refund_id' | 'admin_id' | 'reason' | 'reference' | 'idempotency_key' | 'reward_id' | 'issued_reward_id'>;

function details(event: WalletBalanceEvent): Details {
  const none = { payment_id: null, refund_id: null, admin_id: null, reason: null, reference: null, idempotency_key: null, reward_id: null, issued_reward_id: null };
  switch (event.type) {
    case 'PointsCredited':
      return { ...none, entry_type: event.data.via === 'claim' ? 'claim' : 'credit', payment_id: event.data.paymentId };
    case 'PointsReversed':
      return { ...none, entry_type: 'reversal', payment_id: event.data.paymentId, refund_id: event.data.refundId };
    case 'PointsRedeemed':
      return { ...none, entry_type: 'redemption', reference: event.data.reference, idempotency_key: event.data.idempotencyKey };
    case 'PointsAdjusted':
      return {
        ...none,
        entry_type: event.data.adjustedAs === 'merchant' ? 'merchant_adjustment' : 'adjustment',
        admin_id: event.data.adjustedBy,
        reason: event.data.reason,
        idempotency_key: event.data.idempotencyKey,
      };
    case 'RewardIssued':
      return {
        ...none,
        entry_type: 'reward_issued',
        reward_id: event.data.rewardId,
        issued_reward_id: event.data.issuedRewardId,
        reference: event.data.rewardName,
        admin_id: event.data.issuedBy,
        idempotency_key: event.data.idempotencyKey,
      };
    case 'RewardRedeemed':
      return {
        ...none,
        entry_type: 'reward_redeemed',
        reward_id: event.data.rewardId,
        issued_reward_id: event.data.issuedRewardId,
        admin_id: event.data.redeemedBy,
        idempotency_key: event.data.idempotencyKey,
      };
    case 'RewardVoided':
      return { ...none, entry_type: 'reward_voided', reward_id: event.data.rewardId, issued_reward_id: event.data.issuedRewardId, admin_id: event.data.voidedBy, reason: event.data.reason };
    case 'RewardExpired':
      return { ...none, entry_type: 'reward_expired', reward_id: event.data.rewardId, issued_reward_id: event.data.issuedRewardId };
    case 'PointsExpired':
      return { ...none, entry_type: 'points_expired', reason: `${event.data.rule} (policy v${event.data.policyVersion})`, reference: event.data.period };
    default:
      return assertNever(event);
  }
}

/** The pure fold: the batch's wallet events as ledger entries, in feed order. */
export function ledgerEntries(events: readonly Decoded<WalletBalanceEvent>[]): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const event of events) {
    entries.push({
      id: event.id,
      wallet_id: event.data.walletId,
      tenant_id: event.data.tenantId,
      consumer_id: event.data.consumerId,
      points: pointsDelta(event),
      locked_change: lockedDelta(event),
      ...details(event),
      position: event.position,
      revision: event.revision,
      created_at: event.recordedAt.toISOString(),
      seq: entries.length,
    });
  }
  return entries;
}

/**
 * `fresh` skips entries already in the ledger and runs each wallet's balance on from its current row.
 * Wallets then move by the rows the insert actually returned, never by what was merely offered.
 */
const writeSql = (ledger: string, wallets: string) => `
WITH batch AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS b(
    id text, wallet_id text, tenant_id text, consumer_id text, entry_type text, points bigint, locked_change bigint,
    reward_id text, issued_reward_id text, payment_id text, refund_id text, admin_id text, reason text, reference text,
    idempotency_key text, position text, revision bigint, created_at timestamptz, seq int)
),
fresh AS (
  SELECT b.*, (COALESCE(w.points_balance, 0) + sum(b.points) OVER (PARTITION BY b.wallet_id ORDER BY b.seq))::bigint AS balance_after
    FROM batch b
    LEFT JOIN ${wallets} w ON w.wallet_id = b.wallet_id
   WHERE NOT EXISTS (SELECT 1 FROM ${ledger} l WHERE l.id = b.id)
),
inserted AS (
  INSERT INTO ${ledger} (id, wallet_id, tenant_id, entry_type, points, balance_after, locked_change, reward_id, issued_reward_id,
                         payment_id, refund_id, admin_id, reason, reference, idempotency_key, position, revision, created_at)
  SELECT id, wallet_id, tenant_id, entry_type, points, balance_after, locked_change, reward_id, issued_reward_id,
         payment_id, refund_id, admin_id, reason, reference, idempotency_key, position, revision, created_at
    FROM fresh ORDER BY seq
  ON CONFLICT (id) DO NOTHING
  RETURNING id, wallet_id, tenant_id, entry_type, points, locked_change, created_at
)
INSERT INTO ${wallets} AS w (wallet_id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, locked_points,
                             lifetime_expired, created_at, updated_at)
SELECT i.wallet_id, i.tenant_id, b.consumer_id,
       sum(i.points)::bigint,
       sum(CASE WHEN i.entry_type IN ('credit', 'claim', 'reversal') THEN i.points ELSE 0 END)::bigint,
       sum(CASE WHEN i.entry_type IN ('redemption', 'reward_redeemed') THEN -i.points ELSE 0 END)::bigint,
       sum(i.locked_change)::bigint,
       sum(CASE WHEN i.entry_type = 'points_expired' THEN -i.points ELSE 0 END)::bigint,
       min(i.created_at), max(i.created_at)
  FROM inserted i JOIN batch b ON b.id = i.id
 GROUP BY i.wallet_id, i.tenant_id, b.consumer_id
ON CONFLICT (wallet_id) DO UPDATE SET
  points_balance    = w.points_balance + EXCLUDED.points_balance,
  lifetime_earned   = w.lifetime_earned + EXCLUDED.lifetime_earned,
  lifetime_redeemed = w.lifetime_redeemed + EXCLUDED.lifetime_redeemed,
  locked_points     = w.locked_points + EXCLUDED.locked_points,
  lifetime_expired  = w.lifetime_expired + EXCLUDED.lifetime_expired,
  updated_at        = GREATEST(w.updated_at, EXCLUDED.updated_at)`;

/**
 * Balances and ledgers of wallets; lifetime totals follow the wallet decider (reversals reduce earned; reward
 * redemptions count as redeemed; expired points have their own total); `locked_points` follows issued rewards.
 */
export const walletsProjection = projection({
  name: 'wallets',
  version: 1,
  tables: ['wallets', 'wallet_ledger'],
  // A refused credit (PointsCreditRefused) is no ledger line: the projection reads the balance types only.
  events: walletBalanceEvents,
  async apply(events, { db, table }: ProjectionContext) {
    const entries = ledgerEntries(events);
    if (entries.length === 0) return;
    await db.query(writeSql(table('wallet_ledger'), table('wallets')), [JSON.stringify(entries)]);
  },
});
