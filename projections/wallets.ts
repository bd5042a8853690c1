/**
 * The wallets read model: `wallets` (one row per wallet: balance and lifetime totals) and `wallet_ledger`
 * (one row per balance-changing event). One projection owns both, so a balance and the ledger row that
 * explains it always commit together. Ledger points are unsigned, `entry_type` 'credit' or 'debit' says which way
 * they move the balance and `kind` what the line is (the seed runbooks' shape): the balance is the sum of the
 * credits less the debits.
 *
 * A batch is folded into ledger entries in memory (pure), then written by a single statement: ledger rows
 * are inserted `ON CONFLICT (id) DO NOTHING`, and wallets move only by the rows actually inserted, so an
 * event applied twice changes nothing.
 */
import { pointsDelta } from '../domain/wallets/wallet.ts';
import { walletBalanceEvents, type WalletBalanceEvent } from '../domain/wallets/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import type { Decoded } from '../domain/shared/codec.ts';
import { projection, type ProjectionContext } from './projection.ts';

/**
 * The kind of a ledger line: `earn` (a purchase's points), `claim` (held points claimed), `reversal` (a refund's
 * share), `redemption`, `adjustment`. Stored as plain text: a new kind of line needs a case in `ledgerLine` only.
 */
export type LedgerKind = 'earn' | 'claim' | 'reversal' | 'redemption' | 'adjustment';

/** Which way a line moves the balance; its `points` are unsigned (the seed runbooks' shape). */
export type LedgerDirection = 'credit' | 'debit';

/** One `wallet_ledger` row as the fold produces it (`balance_after` is computed when it is written). */
export interface LedgerEntry {
  id: string;
  wallet_id: string;
  tenant_id: string;
  consumer_id: string;
  entry_type: LedgerDirection;
  kind: LedgerKind;
  /** Unsigned: `entry_type` says which way. */
  points: number;
  /** The signed change to the balance (not stored: the balance and lifetime figures run on it). */
  delta: number;
  /** Whether the line counts towards `lifetime_earned` (earned, claimed, and reversed points) or `lifetime_redeemed`. */
  lifetime: 'earned' | 'redeemed' | null;
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

type LineDetails = Pick<LedgerEntry, 'kind' | 'lifetime' | 'payment_id' | 'refund_id' | 'admin_id' | 'reason' | 'reference' | 'idempotency_key'>;

/** What one wallet event writes in the ledger besides its amount: the one place a kind of line is defined. */
function ledgerLine(event: WalletBalanceEvent): LineDetails {
  const none = { payment_id: null, refund_id: null, admin_id: null, reason: null, reference: null, idempotency_key: null };
  switch (event.type) {
    case 'PointsCredited':
      return { ...none, kind: event.data.via === 'claim' ? 'claim' : 'earn', lifetime: 'earned', payment_id: event.data.paymentId };
    case 'PointsReversed':
      return { ...none, kind: 'reversal', lifetime: 'earned', payment_id: event.data.paymentId, refund_id: event.data.refundId };
    case 'PointsRedeemed':
      return { ...none, kind: 'redemption', lifetime: 'redeemed', reference: event.data.reference, idempotency_key: event.data.idempotencyKey };
    case 'PointsAdjusted':
      return { ...none, kind: 'adjustment', lifetime: null, admin_id: event.data.adjustedBy, reason: event.data.reason, idempotency_key: event.data.idempotencyKey };
    default:
      return assertNever(event);
  }
}

/** The pure fold: the batch's wallet events as ledger entries, in feed order. */
export function ledgerEntries(events: readonly Decoded<WalletBalanceEvent>[]): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const event of events) {
    const delta = pointsDelta(event);
    entries.push({
      id: event.id,
      wallet_id: event.data.walletId,
      tenant_id: event.data.tenantId,
      consumer_id: event.data.consumerId,
      entry_type: delta < 0 ? 'debit' : 'credit',
      points: Math.abs(delta),
      delta,
      ...ledgerLine(event),
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
    id text, wallet_id text, tenant_id text, consumer_id text, entry_type text, kind text, points bigint, delta bigint,
    lifetime text, payment_id text, refund_id text, admin_id text, reason text, reference text, idempotency_key text,
    position text, revision bigint, created_at timestamptz, seq int)
),
fresh AS (
  SELECT b.*, (COALESCE(w.points_balance, 0) + sum(b.delta) OVER (PARTITION BY b.wallet_id ORDER BY b.seq))::bigint AS balance_after
    FROM batch b
    LEFT JOIN ${wallets} w ON w.id = b.wallet_id
   WHERE NOT EXISTS (SELECT 1 FROM ${ledger} l WHERE l.id = b.id)
),
inserted AS (
  INSERT INTO ${ledger} (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, payment_id, refund_id, admin_id, reason,
                         reference, idempotency_key, position, revision, created_at)
  SELECT id, wallet_id, tenant_id, entry_type, kind, points, balance_after, payment_id, refund_id, admin_id, reason,
         reference, idempotency_key, position, revision, created_at
    FROM fresh ORDER BY seq
  ON CONFLICT (id) DO NOTHING
  RETURNING id
)
INSERT INTO ${wallets} AS w (id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, created_at, updated_at)
SELECT b.wallet_id, b.tenant_id, b.consumer_id,
       sum(b.delta)::bigint,
       sum(CASE WHEN b.lifetime = 'earned' THEN b.delta ELSE 0 END)::bigint,
       sum(CASE WHEN b.lifetime = 'redeemed' THEN -b.delta ELSE 0 END)::bigint,
       min(b.created_at), max(b.created_at)
  FROM inserted i JOIN batch b ON b.id = i.id
 GROUP BY b.wallet_id, b.tenant_id, b.consumer_id
ON CONFLICT (id) DO UPDATE SET
  points_balance    = w.points_balance + EXCLUDED.points_balance,
  lifetime_earned   = w.lifetime_earned + EXCLUDED.lifetime_earned,
  lifetime_redeemed = w.lifetime_redeemed + EXCLUDED.lifetime_redeemed,
  updated_at        = GREATEST(w.updated_at, EXCLUDED.updated_at)`;

/**
 * Writes ledger lines and moves their wallets: every write of `wallet_ledger` goes through here (the live
 * projection and a rebuild alike), so a ledger row has one shape wherever it comes from.
 */
export async function writeLedger(db: ProjectionContext['db'], tables: { ledger: string; wallets: string }, entries: readonly LedgerEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await db.query(writeSql(tables.ledger, tables.wallets), [JSON.stringify(entries)]);
}

/** Balances and ledgers of wallets; lifetime totals follow the wallet decider (reversals reduce earned). */
export const walletsProjection = projection({
  name: 'wallets',
  // Still version 1: migrations/0100 converted the rows to the shape written now (a rebuild writes the same).
  version: 1,
  tables: ['wallets', 'wallet_ledger'],
  // A refused credit (PointsCreditRefused) is no ledger line: the projection reads the balance types only.
  events: walletBalanceEvents,
  async apply(events, { db, table }: ProjectionContext) {
    await writeLedger(db, { ledger: table('wallet_ledger'), wallets: table('wallets') }, ledgerEntries(events));
  },
});
