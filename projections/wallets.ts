/**
 * The wallets read model: `wallets` (one row per wallet: balance and lifetime totals) and `wallet_ledger`
 * (one row per balance-changing event). One projection owns both, so a balance and the ledger row that
 * explains it always commit together. Ledger points are unsigned, `entry_type` 'credit' or 'debit' says which way
 * they move the balance and `kind` what the line is (the seed runbooks' shape): the balance is the sum of the
 * credits less the debits.
 *
 * A batch is folded into ledger entries in memory (pure), then written by a single statement: ledger rows
 * are inserted `ON CONFLICT (id) DO NOTHING`, and wallets move only by the rows actually inserted, so an
 * event applied twice changes nothing. A rebuild replays through `walletsReplay` instead: balances run in memory,
 * ledger rows only per batch, each wallet's row written when it is first seen and when the replay settles.
 */
import { named } from '../adapters/postgres/named.ts';
import { lockedDelta, pointsDelta } from '../domain/wallets/wallet.ts';
import { walletBalanceEvents, type WalletBalanceEvent } from '../domain/wallets/events.ts';
import { assertNever } from '../domain/shared/decider.ts';
import type { Decoded } from '../domain/shared/codec.ts';
import { projection, type DecodedReplay, type ProjectionContext } from './projection.ts';

/**
 * The kind of a ledger line: `earn` (a purchase's points), `claim` (held points claimed), `reversal` (a refund's
 * share), `redemption`, `adjustment` (an administrator's), `merchant_adjustment` (a merchant's, within the
 * workspace's limit), one per step of an issued reward (`reward_issued`, `reward_redeemed`, `reward_voided`,
 * `reward_expired`), and `points_expired` (the expiry policy). Stored as plain text: a new kind of line needs a
 * case in `ledgerLine` only.
 */
export type LedgerKind =
  | 'earn'
  | 'claim'
  | 'reversal'
  | 'redemption'
  | 'adjustment'
  | 'merchant_adjustment'
  | 'reward_issued'
  | 'reward_redeemed'
  | 'reward_voided'
  | 'reward_expired'
  | 'points_expired';

/** Which lifetime total a kind of line counts towards: earned (earned, claimed and reversed points), redeemed, expired. */
const LIFETIME_OF: Record<LedgerKind, 'earned' | 'redeemed' | 'expired' | null> = {
  earn: 'earned',
  claim: 'earned',
  reversal: 'earned',
  redemption: 'redeemed',
  adjustment: null,
  merchant_adjustment: null,
  reward_issued: null,
  reward_redeemed: 'redeemed',
  reward_voided: null,
  reward_expired: null,
  points_expired: 'expired',
};

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
  /** Whether the line counts towards `lifetime_earned` (earned, claimed, and reversed points), `lifetime_redeemed` or `lifetime_expired`. */
  lifetime: 'earned' | 'redeemed' | 'expired' | null;
  /** How the points locked by issued rewards move: + on issue, - on redeem, void and expiry (0 for other lines). */
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

type LineDetails = Pick<
  LedgerEntry,
  'kind' | 'payment_id' | 'refund_id' | 'admin_id' | 'reason' | 'reference' | 'idempotency_key' | 'reward_id' | 'issued_reward_id'
>;

/** What one wallet event writes in the ledger besides its amount: the one place a kind of line is defined. */
function ledgerLine(event: WalletBalanceEvent): LineDetails {
  const none = { payment_id: null, refund_id: null, admin_id: null, reason: null, reference: null, idempotency_key: null, reward_id: null, issued_reward_id: null };
  const reward = (e: { data: { rewardId: string; issuedRewardId: string } }) => ({ reward_id: e.data.rewardId, issued_reward_id: e.data.issuedRewardId });
  switch (event.type) {
    case 'PointsCredited':
      return { ...none, kind: event.data.via === 'claim' ? 'claim' : 'earn', payment_id: event.data.paymentId };
    case 'PointsReversed': {
      // Its points that had expired left the balance then: the line shows only what the refund took from it, and says why.
      const { fromExpired, points } = event.data;
      const reason = fromExpired > 0 ? `${fromExpired} of the ${points} points refunded had expired: not taken from the balance again` : null;
      return { ...none, kind: 'reversal', payment_id: event.data.paymentId, refund_id: event.data.refundId, reason };
    }
    case 'PointsRedeemed':
      return { ...none, kind: 'redemption', admin_id: event.data.redeemedBy, reference: event.data.reference, idempotency_key: event.data.idempotencyKey };
    case 'PointsAdjusted':
      return {
        ...none,
        kind: event.data.adjustedAs === 'merchant' ? 'merchant_adjustment' : 'adjustment',
        admin_id: event.data.adjustedBy,
        reason: event.data.reason,
        idempotency_key: event.data.idempotencyKey,
      };
    case 'RewardIssued':
      return {
        ...none,
        ...reward(event),
        kind: 'reward_issued',
        reference: event.data.rewardName,
        admin_id: event.data.issuedBy,
        idempotency_key: event.data.idempotencyKey,
      };
    case 'RewardRedeemed':
      return { ...none, ...reward(event), kind: 'reward_redeemed', admin_id: event.data.redeemedBy, idempotency_key: event.data.idempotencyKey };
    case 'RewardVoided':
      return { ...none, ...reward(event), kind: 'reward_voided', admin_id: event.data.voidedBy, reason: event.data.reason };
    case 'RewardExpired':
      return { ...none, ...reward(event), kind: 'reward_expired' };
    case 'PointsExpired':
      return { ...none, kind: 'points_expired', reason: `${event.data.rule} (policy v${event.data.policyVersion})`, reference: event.data.period };
    default:
      return assertNever(event);
  }
}

/** The kind of line one wallet event writes (reconciliation checks the ledger's kinds against it). */
export const ledgerKind = (event: WalletBalanceEvent): LedgerKind => ledgerLine(event).kind;

/** Every kind of ledger line, in a fixed order (reconciliation numbers them for its checksum). */
export const ledgerKinds = Object.keys(LIFETIME_OF) as LedgerKind[];

/** The pure fold: the batch's wallet events as ledger entries, in feed order. */
export function ledgerEntries(events: readonly Decoded<WalletBalanceEvent>[]): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const event of events) {
    const delta = pointsDelta(event);
    const line = ledgerLine(event);
    entries.push({
      id: event.id,
      wallet_id: event.data.walletId,
      tenant_id: event.data.tenantId,
      consumer_id: event.data.consumerId,
      // A reversal is a debit even when its points had all expired already (0 points).
      entry_type: delta < 0 || line.kind === 'reversal' ? 'debit' : 'credit',
      points: Math.abs(delta),
      delta,
      locked_change: lockedDelta(event),
      ...line,
      lifetime: LIFETIME_OF[line.kind],
      position: event.position,
      revision: event.revision,
      created_at: event.recordedAt.toISOString(),
      seq: entries.length,
    });
  }
  return entries;
}

/** The batch travels as one array per column (unnest): no JSON document for the server to parse. */
const BATCH_COLUMNS = [
  ['id', 'text'], ['wallet_id', 'text'], ['tenant_id', 'text'], ['consumer_id', 'text'], ['entry_type', 'text'], ['kind', 'text'],
  ['points', 'bigint'], ['delta', 'bigint'], ['lifetime', 'text'], ['locked_change', 'bigint'], ['reward_id', 'text'],
  ['issued_reward_id', 'text'], ['payment_id', 'text'], ['refund_id', 'text'], ['admin_id', 'text'], ['reason', 'text'],
  ['reference', 'text'], ['idempotency_key', 'text'], ['position', 'text'], ['revision', 'bigint'], ['created_at', 'timestamptz'],
  ['seq', 'int'],
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
  SELECT b.*, (COALESCE(w.points_balance, 0) + sum(b.delta) OVER (PARTITION BY b.wallet_id ORDER BY b.seq))::bigint AS balance_after
    FROM batch b
    LEFT JOIN ${wallets} w ON w.id = b.wallet_id
   WHERE NOT EXISTS (SELECT 1 FROM ${ledger} l WHERE l.id = b.id)
),
inserted AS (
  INSERT INTO ${ledger} (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, locked_change, reward_id, issued_reward_id,
                         payment_id, refund_id, admin_id, reason, reference, idempotency_key, position, revision, created_at)
  SELECT id, wallet_id, tenant_id, entry_type, kind, points, balance_after, locked_change, reward_id, issued_reward_id,
         payment_id, refund_id, admin_id, reason, reference, idempotency_key, position, revision, created_at
    FROM fresh ORDER BY seq
  ON CONFLICT (id) DO NOTHING
  RETURNING id
)
INSERT INTO ${wallets} AS w (id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, locked_points, lifetime_expired,
                             created_at, updated_at)
SELECT b.wallet_id, b.tenant_id, b.consumer_id,
       sum(b.delta)::bigint,
       sum(CASE WHEN b.lifetime = 'earned' THEN b.delta ELSE 0 END)::bigint,
       sum(CASE WHEN b.lifetime = 'redeemed' THEN -b.delta ELSE 0 END)::bigint,
       sum(b.locked_change)::bigint,
       sum(CASE WHEN b.lifetime = 'expired' THEN -b.delta ELSE 0 END)::bigint,
       min(b.created_at), max(b.created_at)
  FROM inserted i JOIN batch b ON b.id = i.id
 GROUP BY b.wallet_id, b.tenant_id, b.consumer_id
ON CONFLICT (id) DO UPDATE SET
  points_balance    = w.points_balance + EXCLUDED.points_balance,
  lifetime_earned   = w.lifetime_earned + EXCLUDED.lifetime_earned,
  lifetime_redeemed = w.lifetime_redeemed + EXCLUDED.lifetime_redeemed,
  locked_points     = w.locked_points + EXCLUDED.locked_points,
  lifetime_expired  = w.lifetime_expired + EXCLUDED.lifetime_expired,
  updated_at        = GREATEST(w.updated_at, EXCLUDED.updated_at)`;

/**
 * Writes ledger lines and moves their wallets: every write of `wallet_ledger` goes through here (the live
 * projection, and the takeover gap of a rebuild), so a ledger row has one shape wherever it comes from. A rebuild's
 * replay (`walletsReplay`) writes the same rows its own way; tests/integration/wallets-replay.test.ts holds it to these.
 */
export async function writeLedger(db: ProjectionContext['db'], tables: { ledger: string; wallets: string }, entries: readonly LedgerEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await db.query(named(writeSql(tables.ledger, tables.wallets)), columnArrays(entries, BATCH_COLUMNS));
}

/** A wallet's row in `wallets`, as the replay keeps it in memory. */
interface WalletFigures {
  id: string;
  tenant_id: string;
  consumer_id: string;
  points_balance: number;
  lifetime_earned: number;
  lifetime_redeemed: number;
  locked_points: number;
  lifetime_expired: number;
  created_at: string;
  updated_at: string;
}

const LEDGER_COLUMNS = [
  ['id', 'text'], ['wallet_id', 'text'], ['tenant_id', 'text'], ['entry_type', 'text'], ['kind', 'text'], ['points', 'bigint'],
  ['balance_after', 'bigint'], ['locked_change', 'bigint'], ['reward_id', 'text'], ['issued_reward_id', 'text'], ['payment_id', 'text'],
  ['refund_id', 'text'], ['admin_id', 'text'], ['reason', 'text'], ['reference', 'text'], ['idempotency_key', 'text'], ['position', 'text'],
  ['revision', 'bigint'], ['created_at', 'timestamptz'],
] as const satisfies readonly (readonly [keyof LedgerEntry | 'balance_after', string])[];
const WALLET_COLUMNS = [
  ['id', 'text'], ['tenant_id', 'text'], ['consumer_id', 'text'], ['points_balance', 'bigint'], ['lifetime_earned', 'bigint'],
  ['lifetime_redeemed', 'bigint'], ['locked_points', 'bigint'], ['lifetime_expired', 'bigint'], ['created_at', 'timestamptz'],
  ['updated_at', 'timestamptz'],
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
       locked_points = u.locked_points, lifetime_expired = u.lifetime_expired, created_at = u.created_at, updated_at = u.updated_at
  FROM ${unnestOf(WALLET_COLUMNS)} AS u(${list(WALLET_COLUMNS)})
 WHERE w.id = u.id`;

const kindsOf = (lifetime: NonNullable<LedgerEntry['lifetime']>) =>
  Object.entries(LIFETIME_OF)
    .filter(([, l]) => l === lifetime)
    .map(([kind]) => `'${kind}'`)
    .join(', ');

/**
 * Where a replay starts: the wallets' rows made current with the ledger rows already written (nothing to do for a
 * new rebuild; for a resumed one, the rows of wallets changed after the last settle before a crash are behind the
 * ledger, which never is). Summed in PostgreSQL, only rows that differ written. The kinds counted as earned and
 * redeemed are `ledgerLine`'s `lifetime`.
 */
const resyncSql = (ledger: string, wallets: string) => `
UPDATE ${wallets} w
   SET points_balance = l.balance, lifetime_earned = l.earned, lifetime_redeemed = l.redeemed, locked_points = l.locked,
       lifetime_expired = l.expired, created_at = l.created_at, updated_at = l.updated_at
  FROM (SELECT wallet_id, sum(signed) AS balance,
               sum(CASE WHEN kind IN (${kindsOf('earned')}) THEN signed ELSE 0 END) AS earned,
               sum(CASE WHEN kind IN (${kindsOf('redeemed')}) THEN -signed ELSE 0 END) AS redeemed,
               sum(CASE WHEN kind IN (${kindsOf('expired')}) THEN -signed ELSE 0 END) AS expired,
               sum(locked_change) AS locked,
               min(created_at) AS created_at, max(created_at) AS updated_at
          FROM (SELECT wallet_id, kind, locked_change, created_at, CASE entry_type WHEN 'debit' THEN -points ELSE points END AS signed FROM ${ledger}) s
         GROUP BY wallet_id) l
 WHERE l.wallet_id = w.id
   AND (w.points_balance, w.lifetime_earned, w.lifetime_redeemed, w.locked_points, w.lifetime_expired, w.created_at, w.updated_at)
       IS DISTINCT FROM (l.balance, l.earned, l.redeemed, l.locked, l.expired, l.created_at, l.updated_at)`;

/** The figures of wallets the replay does not hold, from their rows (current for every wallet not held: see below). */
const lookUpSql = (wallets: string) => `
SELECT id, tenant_id, consumer_id, points_balance::text, lifetime_earned::text, lifetime_redeemed::text, locked_points::text,
       lifetime_expired::text, created_at, updated_at
  FROM ${wallets} WHERE id = ANY($1::text[])`;

/** How many wallets' figures a replay holds before it writes them to their rows: its memory stays bounded. */
export const REPLAY_WALLETS_HELD = 100_000;

/**
 * The rebuild's fold (Projection.replay): wallets' figures run in memory, each batch inserts its ledger rows
 * (balance_after computed here) and the rows of wallets seen for the first time, and no wallet row is updated per
 * batch. It holds the figures of the wallets changed since their rows were last written, and reads any other
 * wallet's from its row; once it holds `held` wallets or more, a batch first writes them (in its own transaction)
 * and forgets them. `settle` writes what it holds. Same rows as `apply` gives.
 */
export function walletsReplay(options: { held?: number } = {}): DecodedReplay<WalletBalanceEvent> & { holding(): number } {
  const limit = options.held ?? REPLAY_WALLETS_HELD;
  /** Whether the rows were made current with the ledger (once per replay, in a committed transaction). */
  let resynced = false;
  /** Every wallet whose row is behind the figures here; any other wallet's row is current. */
  const held = new Map<string, WalletFigures>();
  let staged: { figures: Map<string, WalletFigures>; resynced: boolean; written: boolean } = { figures: new Map(), resynced: false, written: false };
  const write = async (db: ProjectionContext['db'], wallets: string) => {
    if (held.size) await db.query(settleSql(wallets), columnArrays([...held.values()], WALLET_COLUMNS));
  };
  const resync = async ({ db, table }: ProjectionContext) => {
    if (resynced) return;
    await db.query(resyncSql(table('wallet_ledger'), table('wallets')));
    staged.resynced = true;
  };
  return {
    holding: () => held.size,
    async apply(events, context) {
      const { db, table } = context;
      staged = { figures: new Map(), resynced: false, written: false };
      await resync(context);
      if (held.size >= limit) {
        await write(db, table('wallets'));
        staged.written = true;
      }
      const entries = ledgerEntries(events);
      if (entries.length === 0) return;
      const unknown = [...new Set(entries.map((entry) => entry.wallet_id))].filter((id) => !held.has(id));
      const rows = unknown.length ? (await db.query<WalletRow>(lookUpSql(table('wallets')), [unknown])).rows : [];
      const stored = new Map(rows.map((row) => [row.id, figuresOf(row)]));
      const { figures } = staged;
      const created: WalletFigures[] = [];
      const balances = entries.map((entry) => {
        let wallet = figures.get(entry.wallet_id);
        if (!wallet) {
          const known = held.get(entry.wallet_id) ?? stored.get(entry.wallet_id);
          wallet = known
            ? { ...known }
            : {
                id: entry.wallet_id, tenant_id: entry.tenant_id, consumer_id: entry.consumer_id, points_balance: 0, lifetime_earned: 0,
                lifetime_redeemed: 0, locked_points: 0, lifetime_expired: 0, created_at: entry.created_at, updated_at: entry.created_at,
              };
          if (!known) created.push(wallet);
          figures.set(entry.wallet_id, wallet);
        }
        wallet.points_balance += entry.delta;
        if (entry.lifetime === 'earned') wallet.lifetime_earned += entry.delta;
        if (entry.lifetime === 'redeemed') wallet.lifetime_redeemed -= entry.delta;
        if (entry.lifetime === 'expired') wallet.lifetime_expired -= entry.delta;
        wallet.locked_points += entry.locked_change;
        // Both ISO-8601 in UTC with milliseconds (toISOString): they compare as strings.
        if (entry.created_at > wallet.updated_at) wallet.updated_at = entry.created_at;
        if (entry.created_at < wallet.created_at) wallet.created_at = entry.created_at;
        return wallet.points_balance;
      });
      const ledger = LEDGER_COLUMNS.map(([name]) => (name === 'balance_after' ? balances : entries.map((entry) => entry[name])));
      await db.query(replayWriteSql(table('wallet_ledger'), table('wallets')), [...ledger, ...columnArrays(created, WALLET_COLUMNS)]);
    },
    async settle(context) {
      staged = { figures: new Map(), resynced: false, written: true };
      // A resumed rebuild with nothing left to apply still settles rows left behind the ledger by a crash.
      await resync(context);
      await write(context.db, context.table('wallets'));
    },
    committed() {
      if (staged.resynced) resynced = true;
      if (staged.written) held.clear();
      for (const [id, wallet] of staged.figures) held.set(id, wallet);
      staged = { figures: new Map(), resynced: false, written: false };
    },
  };
}

type WalletRow = Omit<WalletFigures, 'created_at' | 'updated_at' | 'points_balance' | 'lifetime_earned' | 'lifetime_redeemed' | 'locked_points' | 'lifetime_expired'> & {
  points_balance: string; lifetime_earned: string; lifetime_redeemed: string; locked_points: string; lifetime_expired: string; created_at: Date; updated_at: Date;
};

const figuresOf = (row: WalletRow): WalletFigures => ({
  ...row,
  points_balance: Number(row.points_balance),
  lifetime_earned: Number(row.lifetime_earned),
  lifetime_redeemed: Number(row.lifetime_redeemed),
  locked_points: Number(row.locked_points),
  lifetime_expired: Number(row.lifetime_expired),
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

/**
 * Balances and ledgers of wallets; lifetime totals follow the wallet decider (reversals reduce earned; reward
 * redemptions count as redeemed; expired points have their own total); `locked_points` follows issued rewards.
 */
export const walletsProjection = projection({
  name: 'wallets',
  // 2: a redemption's line names who redeemed (`admin_id`, the ledger CSV's `actor_id`), as every other line that
  // someone made does. (Version 1 stayed through migrations/0100, which converted the rows to the shape written then.)
  version: 2,
  tables: ['wallets', 'wallet_ledger'],
  // A refused credit (PointsCreditRefused) is no ledger line: the projection reads the balance types only.
  events: walletBalanceEvents,
  replay: walletsReplay,
  async apply(events, { db, table }: ProjectionContext) {
    await writeLedger(db, { ledger: table('wallet_ledger'), wallets: table('wallets') }, ledgerEntries(events));
  },
});
