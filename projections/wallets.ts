/**
 * The wallets read model: `wallets` (one row per wallet: balance and lifetime totals) and `wallet_ledger`
 * (one row per balance-changing event). One projection owns both, so a balance and the ledger row that
 * explains it always commit together; the balance is the sum of the wallet's ledger points.
 *
 * A batch is folded into ledger entries in memory (pure), then written by a single statement: ledger rows
 * are inserted `ON CONFLICT (id) DO NOTHING`, and wallets move only by the rows actually inserted, so an
 * event applied twice changes nothing. A rebuild replays through `walletsReplay` instead: balances run in memory,
 * ledger rows only per batch, each wallet's row written when it is first seen and when the replay settles.
 */
import { pointsDelta } from '../domain/wallets/wallet.ts';
import { walletBalanceEvents, type WalletBalanceEvent } from '../domain/wallets/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import type { Decoded } from '../domain/shared/codec.ts';
import { projection, type DecodedReplay, type ProjectionContext } from './projection.ts';

/** The kinds of ledger entries; a `PointsCredited` with `via: 'claim'` is a `claim`. */
export type LedgerEntryType = 'credit' | 'reversal' | 'redemption' | 'adjustment' | 'claim';

/** One `wallet_ledger` row as the fold produces it (`balance_after` is computed when it is written). */
export interface LedgerEntry {
  id: string;
  wallet_id: string;
  tenant_id: string;
  consumer_id: string;
  entry_type: LedgerEntryType;
  /** Signed: credits positive, reversals and redemptions negative, adjustments as given. */
  points: number;
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

/** One event's ledger row (built whole, no spreads: a rebuild folds a million of them). */
function ledgerEntry(event: Decoded<WalletBalanceEvent>, seq: number): LedgerEntry {
  const entry: LedgerEntry = {
    id: event.id,
    wallet_id: event.data.walletId,
    tenant_id: event.data.tenantId,
    consumer_id: event.data.consumerId,
    entry_type: 'credit',
    points: pointsDelta(event),
    payment_id: null,
    refund_id: null,
    admin_id: null,
    reason: null,
    reference: null,
    idempotency_key: null,
    position: event.position,
    revision: event.revision,
    created_at: event.recordedAt.toISOString(),
    seq,
  };
  switch (event.type) {
    case 'PointsCredited':
      entry.entry_type = event.data.via === 'claim' ? 'claim' : 'credit';
      entry.payment_id = event.data.paymentId;
      break;
    case 'PointsReversed':
      entry.entry_type = 'reversal';
      entry.payment_id = event.data.paymentId;
      entry.refund_id = event.data.refundId;
      break;
    case 'PointsRedeemed':
      entry.entry_type = 'redemption';
      entry.reference = event.data.reference;
      entry.idempotency_key = event.data.idempotencyKey;
      break;
    case 'PointsAdjusted':
      entry.entry_type = 'adjustment';
      entry.admin_id = event.data.adjustedBy;
      entry.reason = event.data.reason;
      entry.idempotency_key = event.data.idempotencyKey;
      break;
    default:
      return assertNever(event);
  }
  return entry;
}

/** The pure fold: the batch's wallet events as ledger entries, in feed order. */
export function ledgerEntries(events: readonly Decoded<WalletBalanceEvent>[]): LedgerEntry[] {
  return events.map(ledgerEntry);
}

/** The batch travels as one array per column (unnest): no JSON document for the server to parse. */
const BATCH_COLUMNS = [
  ['id', 'text'], ['wallet_id', 'text'], ['tenant_id', 'text'], ['consumer_id', 'text'], ['entry_type', 'text'], ['points', 'bigint'],
  ['payment_id', 'text'], ['refund_id', 'text'], ['admin_id', 'text'], ['reason', 'text'], ['reference', 'text'], ['idempotency_key', 'text'],
  ['position', 'text'], ['revision', 'bigint'], ['created_at', 'timestamptz'], ['seq', 'int'],
] as const satisfies readonly (readonly [keyof LedgerEntry, string])[];

const columnArrays = <T, K extends keyof T>(rows: readonly T[], columns: readonly (readonly [K, string])[]) => columns.map(([name]) => rows.map((row) => row[name]));

/**
 * `fresh` skips entries already in the ledger and runs each wallet's balance on from its current row.
 * Wallets then move by the rows the insert actually returned, never by what was merely offered.
 */
const writeSql = (ledger: string, wallets: string) => `
WITH batch AS (
  SELECT * FROM unnest(${BATCH_COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})
    AS b(${BATCH_COLUMNS.map(([name]) => name).join(', ')})
),
fresh AS (
  SELECT b.*, (COALESCE(w.points_balance, 0) + sum(b.points) OVER (PARTITION BY b.wallet_id ORDER BY b.seq))::bigint AS balance_after
    FROM batch b
    LEFT JOIN ${wallets} w ON w.wallet_id = b.wallet_id
   WHERE NOT EXISTS (SELECT 1 FROM ${ledger} l WHERE l.id = b.id)
),
inserted AS (
  INSERT INTO ${ledger} (id, wallet_id, tenant_id, entry_type, points, balance_after, payment_id, refund_id, admin_id, reason,
                         reference, idempotency_key, position, revision, created_at)
  SELECT id, wallet_id, tenant_id, entry_type, points, balance_after, payment_id, refund_id, admin_id, reason,
         reference, idempotency_key, position, revision, created_at
    FROM fresh ORDER BY seq
  ON CONFLICT (id) DO NOTHING
  RETURNING id, wallet_id, tenant_id, entry_type, points, created_at
)
INSERT INTO ${wallets} AS w (wallet_id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, created_at, updated_at)
SELECT i.wallet_id, i.tenant_id, b.consumer_id,
       sum(i.points)::bigint,
       sum(CASE WHEN i.entry_type IN ('credit', 'claim', 'reversal') THEN i.points ELSE 0 END)::bigint,
       sum(CASE WHEN i.entry_type = 'redemption' THEN -i.points ELSE 0 END)::bigint,
       min(i.created_at), max(i.created_at)
  FROM inserted i JOIN batch b ON b.id = i.id
 GROUP BY i.wallet_id, i.tenant_id, b.consumer_id
ON CONFLICT (wallet_id) DO UPDATE SET
  points_balance    = w.points_balance + EXCLUDED.points_balance,
  lifetime_earned   = w.lifetime_earned + EXCLUDED.lifetime_earned,
  lifetime_redeemed = w.lifetime_redeemed + EXCLUDED.lifetime_redeemed,
  updated_at        = GREATEST(w.updated_at, EXCLUDED.updated_at)`;

/** A wallet's row in `wallets`, as the replay keeps it in memory. */
interface WalletFigures {
  wallet_id: string;
  tenant_id: string;
  consumer_id: string;
  points_balance: number;
  lifetime_earned: number;
  lifetime_redeemed: number;
  created_at: string;
  updated_at: string;
}

const LEDGER_COLUMNS = [
  ['id', 'text'], ['wallet_id', 'text'], ['tenant_id', 'text'], ['entry_type', 'text'], ['points', 'bigint'], ['balance_after', 'bigint'],
  ['payment_id', 'text'], ['refund_id', 'text'], ['admin_id', 'text'], ['reason', 'text'], ['reference', 'text'], ['idempotency_key', 'text'],
  ['position', 'text'], ['revision', 'bigint'], ['created_at', 'timestamptz'],
] as const satisfies readonly (readonly [keyof LedgerEntry | 'balance_after', string])[];
const WALLET_COLUMNS = [
  ['wallet_id', 'text'], ['tenant_id', 'text'], ['consumer_id', 'text'], ['points_balance', 'bigint'], ['lifetime_earned', 'bigint'],
  ['lifetime_redeemed', 'bigint'], ['created_at', 'timestamptz'], ['updated_at', 'timestamptz'],
] as const satisfies readonly (readonly [keyof WalletFigures, string])[];
const list = (columns: readonly (readonly [string, string])[]) => columns.map(([name]) => name).join(', ');
const unnestOf = (columns: readonly (readonly [string, string])[], from = 1) => `unnest(${columns.map(([, type], i) => `$${i + from}::${type}[]`).join(', ')})`;

/** A replay batch: ledger rows with balances run in memory; wallets seen for the first time get their row (with consumer). */
const replayWriteSql = (ledger: string, wallets: string) => `
WITH ledger AS (
  INSERT INTO ${ledger} (${list(LEDGER_COLUMNS)}) SELECT * FROM ${unnestOf(LEDGER_COLUMNS)}
)
INSERT INTO ${wallets} (${list(WALLET_COLUMNS)}) SELECT * FROM ${unnestOf(WALLET_COLUMNS, LEDGER_COLUMNS.length + 1)}`;

/** Settling: the wallets' rows take the figures the replay ran in memory. */
const settleSql = (wallets: string) => `
UPDATE ${wallets} w
   SET points_balance = u.points_balance, lifetime_earned = u.lifetime_earned, lifetime_redeemed = u.lifetime_redeemed,
       created_at = u.created_at, updated_at = u.updated_at
  FROM ${unnestOf(WALLET_COLUMNS)} AS u(${list(WALLET_COLUMNS)})
 WHERE w.wallet_id = u.wallet_id`;

/**
 * Where a replay starts: every wallet's figures summed from the ledger rows already written (nothing, for a new
 * rebuild; the rows up to the checkpoint, for a resumed one). The wallets rows give the consumer: figures in them
 * may be behind the ledger (not settled before a crash), the ledger never is.
 */
const loadSql = (ledger: string, wallets: string) => `
SELECT w.wallet_id, w.tenant_id, w.consumer_id,
       COALESCE(l.balance, 0)::text AS points_balance, COALESCE(l.earned, 0)::text AS lifetime_earned, COALESCE(l.redeemed, 0)::text AS lifetime_redeemed,
       COALESCE(l.created_at, w.created_at) AS created_at, COALESCE(l.updated_at, w.updated_at) AS updated_at
  FROM ${wallets} w
  LEFT JOIN (SELECT wallet_id, sum(points) AS balance,
                    sum(CASE WHEN entry_type IN ('credit', 'claim', 'reversal') THEN points ELSE 0 END) AS earned,
                    sum(CASE WHEN entry_type = 'redemption' THEN -points ELSE 0 END) AS redeemed,
                    min(created_at) AS created_at, max(created_at) AS updated_at
               FROM ${ledger} GROUP BY wallet_id) l USING (wallet_id)`;

/**
 * The rebuild's fold (Projection.replay): every wallet's figures run in memory, each batch inserts its ledger rows
 * (balance_after computed here) and the rows of wallets seen for the first time, and no wallet row is updated per
 * batch; `settle` writes the figures of the wallets changed since the last settle. Same rows as `apply` gives.
 */
export function walletsReplay(): DecodedReplay<WalletBalanceEvent> {
  let base: Map<string, WalletFigures> | undefined;
  /** Wallets whose row is behind `base` (changed since the last settle). */
  const unsettled = new Set<string>();
  let staged: { figures: Map<string, WalletFigures>; settled: boolean } = { figures: new Map(), settled: false };
  return {
    async apply(events, { db, table }) {
      staged = { figures: new Map(), settled: false };
      if (!base) {
        const { rows } = await db.query<Omit<WalletFigures, 'created_at' | 'updated_at' | 'points_balance' | 'lifetime_earned' | 'lifetime_redeemed'> & {
          points_balance: string; lifetime_earned: string; lifetime_redeemed: string; created_at: Date; updated_at: Date;
        }>(loadSql(table('wallet_ledger'), table('wallets')));
        const loaded = new Map<string, WalletFigures>();
        for (const row of rows) {
          loaded.set(row.wallet_id, {
            ...row,
            points_balance: Number(row.points_balance),
            lifetime_earned: Number(row.lifetime_earned),
            lifetime_redeemed: Number(row.lifetime_redeemed),
            created_at: row.created_at.toISOString(),
            updated_at: row.updated_at.toISOString(),
          });
          unsettled.add(row.wallet_id);
        }
        base = loaded;
      }
      const entries = ledgerEntries(events);
      if (entries.length === 0) return;
      const { figures } = staged;
      const created: WalletFigures[] = [];
      const balances = entries.map((entry) => {
        let wallet = figures.get(entry.wallet_id);
        if (!wallet) {
          const known = base!.get(entry.wallet_id);
          wallet = known
            ? { ...known }
            : {
                wallet_id: entry.wallet_id, tenant_id: entry.tenant_id, consumer_id: entry.consumer_id, points_balance: 0, lifetime_earned: 0,
                lifetime_redeemed: 0, created_at: entry.created_at, updated_at: entry.created_at,
              };
          if (!known) created.push(wallet);
          figures.set(entry.wallet_id, wallet);
        }
        wallet.points_balance += entry.points;
        if (entry.entry_type === 'credit' || entry.entry_type === 'claim' || entry.entry_type === 'reversal') wallet.lifetime_earned += entry.points;
        if (entry.entry_type === 'redemption') wallet.lifetime_redeemed -= entry.points;
        // Both ISO-8601 in UTC with milliseconds (toISOString): they compare as strings.
        if (entry.created_at > wallet.updated_at) wallet.updated_at = entry.created_at;
        if (entry.created_at < wallet.created_at) wallet.created_at = entry.created_at;
        return wallet.points_balance;
      });
      const ledger = LEDGER_COLUMNS.map(([name]) => (name === 'balance_after' ? balances : entries.map((entry) => entry[name])));
      await db.query(replayWriteSql(table('wallet_ledger'), table('wallets')), [...ledger, ...columnArrays(created, WALLET_COLUMNS)]);
    },
    async settle({ db, table }) {
      staged = { figures: new Map(), settled: true };
      if (!base || unsettled.size === 0) return;
      const wallets = [...unsettled].map((id) => base!.get(id)!);
      await db.query(settleSql(table('wallets')), columnArrays(wallets, WALLET_COLUMNS));
    },
    committed() {
      for (const [id, wallet] of staged.figures) {
        base!.set(id, wallet);
        unsettled.add(id);
      }
      if (staged.settled) unsettled.clear();
      staged = { figures: new Map(), settled: false };
    },
  };
}

/** Balances and ledgers of wallets; lifetime totals follow the wallet decider (reversals reduce earned). */
export const walletsProjection = projection({
  name: 'wallets',
  version: 1,
  tables: ['wallets', 'wallet_ledger'],
  // A refused credit (PointsCreditRefused) is no ledger line: the projection reads the balance types only.
  events: walletBalanceEvents,
  async apply(events, { db, table }: ProjectionContext) {
    const entries = ledgerEntries(events);
    if (entries.length === 0) return;
    await db.query(writeSql(table('wallet_ledger'), table('wallets')), columnArrays(entries, BATCH_COLUMNS));
  },
  replay: walletsReplay,
});
