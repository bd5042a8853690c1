/**
 * Reconciliation by replay: wallet streams are read from the event store and folded in memory, then compared
 * with the `wallets` and `wallet_ledger` read models: balance, lifetime figures, and every ledger line (their count,
 * their signed sum, and a checksum of each line's place in its stream, signed points and kind).
 * It never repairs anything: the fix is a rebuild, or an audited adjustment.
 *
 * The fold is lean (measured in bench/reconcile.ts, prototype C/D of reconcile-diagnosis.json): per wallet only
 * the compared figures are summed as the feed goes by, and no event is kept. Folding `walletDecider.evolve`
 * instead copies the wallet's sets of credited payments and refunds on every event, and keeping a million
 * events until the end took over a GiB of heap and most of the time in the garbage collector. A wallet that
 * does not match (rare) has its own stream re-read, up to the same position, for the first differing event.
 * The feed is read without the events' metadata (`readAll`'s `omit`), and the next page is read while the current
 * one is folded; the read model's line counts, sums and checksums come from one grouped scan of the ledger.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { EventStore, Position } from '../../domain/ports/event-store.ts';
import { lockedDelta, pointsDelta } from '../../domain/wallets/wallet.ts';
import { NotFound } from '../../domain/shared/errors.ts';
// A refused credit (PointsCreditRefused) moves no balance and has no ledger line: only the balance types are replayed.
import { walletBalanceEvents, type WalletBalanceEvent, type WalletEvent } from '../../domain/wallets/events.ts';
import { ledgerKind, ledgerKinds, type LedgerKind } from '../wallets.ts';

const isBalanceEvent = (event: WalletEvent): event is WalletBalanceEvent => walletBalanceEvents.handles(event.type);
import type { Decoded } from '../../domain/shared/codec.ts';
import type { ProjectionRunner } from '../runner.ts';

const count = z.number().int();

/** A wallet's figures, as the read model holds them or as replaying its events gives them. */
export const walletFigures = z.object({
  balance: count,
  lifetimeEarned: count,
  lifetimeRedeemed: count,
  /** Points locked by issued rewards. */
  locked: count,
  lifetimeExpired: count,
  ledgerLines: count,
  /** The ledger lines' signed points summed (credits less debits): the balance the ledger explains. */
  ledgerPoints: count,
  /** A checksum of the ledger lines (see `lineChecksum`): a line that says other points or another kind than its event changes it. */
  ledgerChecksum: count,
});
export type WalletFigures = z.infer<typeof walletFigures>;

/** A wallet whose read model differs from its replay. */
export const mismatch = z.object({
  walletId: z.string(),
  tenantId: z.string().nullable(),
  projected: walletFigures.nullable(),
  replayed: walletFigures.nullable(),
  /** The first event whose ledger line is missing or differs, in stream order. */
  firstDifferingEvent: z.object({ id: z.string(), type: z.string(), revision: count, position: z.string() }).nullable(),
});
export type Mismatch = z.infer<typeof mismatch>;

/** What a reconciliation found (`POST /api/v1/admin/reconcile`, `npm run reconcile`). */
export const reconcileReport = z.object({
  walletsChecked: count,
  eventsReplayed: count,
  mismatches: z.array(mismatch),
  durationMs: z.number(),
  eventsPerSecond: z.number(),
});
export type ReconcileReport = z.infer<typeof reconcileReport>;

/** A wallet's replayed figures (one ledger line per event) and its tenant, as of its latest event. */
interface Replayed {
  tenantId: string | null;
  figures: WalletFigures;
}

const PAGE = 5000;
const WALLET_FEED = { eventTypes: walletBalanceEvents.types, streamPrefixes: ['wallet-'] };

/**
 * The ledger checksum, computed the same way from the replay (`lineChecksum`) and from `wallet_ledger` in SQL
 * (`LINE_CHECKSUM_SQL`): per line, its place in the wallet's stream (revision + 1) times its signed points and its
 * kind's number, modulo a prime below 2^26 (every product stays below 2^53, exact in a JavaScript number and in a
 * bigint), summed modulo the same prime. Two lines whose points were swapped, or a line whose points moved from one
 * to another, change it, which the count and the signed sum would not show.
 */
const CHECKSUM_PRIME = 67_108_859;
const KIND_WEIGHT = 1_000_003;
const kindNumber = new Map<string, number>(ledgerKinds.map((kind, i) => [kind, i + 1]));

function lineChecksum(revision: number, signedPoints: number, kind: LedgerKind): number {
  const p = CHECKSUM_PRIME;
  return (((revision + 1) % p) * ((((signedPoints % p) + p + (kindNumber.get(kind) ?? 0) * KIND_WEIGHT) % p))) % p;
}

/** `lineChecksum` of a `wallet_ledger` row, in SQL; an unknown kind numbers 0 (and so differs from its event's). */
const LINE_CHECKSUM_SQL = `(((revision + 1) % ${CHECKSUM_PRIME}) * ((((CASE entry_type WHEN 'debit' THEN -points ELSE points END) % ${CHECKSUM_PRIME}) + ${CHECKSUM_PRIME}
    + (CASE kind ${ledgerKinds.map((kind, i) => `WHEN '${kind}' THEN ${i + 1}`).join(' ')} ELSE 0 END) * ${KIND_WEIGHT}) % ${CHECKSUM_PRIME})) % ${CHECKSUM_PRIME}`;

/**
 * Adds one event to a wallet's figures in place: the same sums as `walletDecider.evolve` (balance by
 * `pointsDelta`; locked by `lockedDelta`; lifetime earned by credits less reversals; lifetime redeemed by
 * redemptions of points and of rewards; lifetime expired by expiries; adjustments move the balance only),
 * without its idempotency sets, which reconciliation does not compare.
 */
function replayEvent(replayed: Replayed, e: WalletBalanceEvent, revision: number): void {
  const delta = pointsDelta(e);
  const f = replayed.figures;
  f.balance += delta;
  f.ledgerPoints += delta;
  f.ledgerChecksum = (f.ledgerChecksum + lineChecksum(revision, delta, ledgerKind(e))) % CHECKSUM_PRIME;
  f.locked += lockedDelta(e);
  if (e.type === 'PointsCredited' || e.type === 'PointsReversed') f.lifetimeEarned += delta;
  else if (e.type === 'PointsRedeemed' || e.type === 'RewardRedeemed') f.lifetimeRedeemed += e.data.points;
  else if (e.type === 'PointsExpired') f.lifetimeExpired += e.data.points;
  f.ledgerLines++;
  replayed.tenantId = e.data.tenantId;
}

const newReplayed = (): Replayed => ({
  tenantId: null,
  figures: { balance: 0, lifetimeEarned: 0, lifetimeRedeemed: 0, locked: 0, lifetimeExpired: 0, ledgerLines: 0, ledgerPoints: 0, ledgerChecksum: 0 },
});

/** The figures replay gives one wallet's events, its whole stream in order (for the property test that holds it to the decider). */
export function replayedFigures(events: readonly WalletEvent[]): WalletFigures {
  const replayed = newReplayed();
  events.forEach((event, revision) => isBalanceEvent(event) && replayEvent(replayed, event, revision));
  return replayed.figures;
}

async function projectedWallets(pool: pg.Pool, walletIds: string[] | null, tenantId: string | undefined) {
  const params: unknown[] = [];
  const where: string[] = [];
  const ledgerWhere: string[] = [];
  if (walletIds) {
    params.push(walletIds);
    where.push(`w.id = ANY($${params.length})`);
    ledgerWhere.push(`wallet_id = ANY($${params.length})`);
  }
  if (tenantId) {
    params.push(tenantId);
    where.push(`w.tenant_id = $${params.length}`);
    ledgerWhere.push(`tenant_id = $${params.length}`);
  }
  const { rows } = await pool.query<{
    wallet_id: string;
    tenant_id: string;
    points_balance: string;
    lifetime_earned: string;
    lifetime_redeemed: string;
    locked_points: string;
    lifetime_expired: string;
    lines: string;
    ledger_points: string;
    ledger_checksum: string;
  }>(
    // Line counts, sums and checksums by one grouped scan of the ledger (of the wallets asked for), not one per wallet.
    `SELECT w.id AS wallet_id, w.tenant_id, w.points_balance, w.lifetime_earned, w.lifetime_redeemed, w.locked_points, w.lifetime_expired,
            coalesce(l.lines, 0) AS lines, coalesce(l.ledger_points, 0) AS ledger_points, coalesce(l.ledger_checksum, 0) AS ledger_checksum
       FROM wallets w
       LEFT JOIN (SELECT wallet_id, count(*) AS lines, sum(CASE entry_type WHEN 'debit' THEN -points ELSE points END) AS ledger_points,
                         sum(${LINE_CHECKSUM_SQL}) % ${CHECKSUM_PRIME} AS ledger_checksum
                    FROM wallet_ledger ${ledgerWhere.length ? `WHERE ${ledgerWhere.join(' AND ')}` : ''} GROUP BY wallet_id) l ON l.wallet_id = w.id
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`,
    params,
  );
  return new Map(
    rows.map((r) => [
      r.wallet_id,
      {
        tenantId: r.tenant_id,
        figures: {
          balance: Number(r.points_balance),
          lifetimeEarned: Number(r.lifetime_earned),
          lifetimeRedeemed: Number(r.lifetime_redeemed),
          locked: Number(r.locked_points),
          lifetimeExpired: Number(r.lifetime_expired),
          ledgerLines: Number(r.lines),
          ledgerPoints: Number(r.ledger_points),
          ledgerChecksum: Number(r.ledger_checksum),
        },
      },
    ]),
  );
}

/** The first event (in stream order) whose ledger line is missing or says something else (points, kind, place). */
async function firstDifference(pool: pg.Pool, events: readonly Decoded<WalletBalanceEvent>[]): Promise<Mismatch['firstDifferingEvent']> {
  const ids = events.map((e) => e.id);
  const { rows } = await pool.query<{ id: string; points: string; kind: string; revision: string }>(
    `SELECT id, CASE entry_type WHEN 'debit' THEN -points ELSE points END AS points, kind, revision FROM wallet_ledger WHERE id = ANY($1)`,
    [ids],
  );
  const lines = new Map(rows.map((r) => [r.id, r]));
  for (const event of events) {
    const line = lines.get(event.id);
    if (!line || Number(line.points) !== pointsDelta(event) || line.kind !== ledgerKind(event) || Number(line.revision) !== event.revision) {
      return { id: event.id, type: event.type, revision: event.revision, position: event.position };
    }
  }
  return null;
}

function compare(projected: WalletFigures | null, replayed: Replayed | undefined): boolean {
  if (!projected || !replayed) return false;
  const expected = replayed.figures;
  return (
    projected.balance === expected.balance &&
    projected.lifetimeEarned === expected.lifetimeEarned &&
    projected.lifetimeRedeemed === expected.lifetimeRedeemed &&
    projected.locked === expected.locked &&
    projected.lifetimeExpired === expected.lifetimeExpired &&
    projected.ledgerLines === expected.ledgerLines &&
    projected.ledgerPoints === expected.ledgerPoints &&
    projected.ledgerChecksum === expected.ledgerChecksum
  );
}

/**
 * How reconciliation settles, for the service's route and `npm run reconcile` alike: the wallet read models are as
 * good as `position` once the `wallets` projection has applied it or has no event of its types up to it (its
 * checkpoint stays at its own last event while the feed moves on). The runner answers for a projection it feeds, and
 * from the checkpoint row for one another process feeds (a runner that feeds nothing, as the command's, reads rows).
 */
export function settleWallets(runner: Pick<ProjectionRunner, 'waitForPosition'>, timeoutMs = 30_000): (position: Position) => Promise<boolean> {
  return (position) => runner.waitForPosition(position, timeoutMs, ['wallets']);
}

export interface ReconcilerDependencies {
  pool: pg.Pool;
  store: EventStore;
  /** Waits until the read models include `position`, so that only settled state is compared. */
  settle(position: Position): Promise<boolean>;
  now?: () => number;
}

// Over 80 lines because it is a factory: the whole-store and one-wallet reconciliations share its replay and comparison.
export function reconciler(deps: ReconcilerDependencies) {
  const clock = deps.now ?? (() => performance.now());

  /** `replayedEvents` gives, for a mismatching wallet, exactly the events its figures were replayed from. */
  async function report(
    replays: Map<string, Replayed>,
    replayedEvents: (walletId: string) => Promise<Decoded<WalletBalanceEvent>[]>,
    projected: Awaited<ReturnType<typeof projectedWallets>>,
    eventsReplayed: number,
    started: number,
  ): Promise<ReconcileReport> {
    const mismatches: Mismatch[] = [];
    for (const walletId of new Set([...replays.keys(), ...projected.keys()])) {
      const replayed = replays.get(walletId);
      const row = projected.get(walletId);
      const tenantId = row?.tenantId ?? replayed?.tenantId ?? null;
      if (compare(row?.figures ?? null, replayed)) continue;
      mismatches.push({
        walletId,
        tenantId,
        projected: row?.figures ?? null,
        replayed: replayed ? { ...replayed.figures } : null,
        firstDifferingEvent: replayed ? await firstDifference(deps.pool, await replayedEvents(walletId)) : null,
      });
    }
    const durationMs = clock() - started;
    return {
      walletsChecked: replays.size,
      eventsReplayed,
      mismatches,
      durationMs: Math.round(durationMs),
      eventsPerSecond: durationMs > 0 ? Math.round((eventsReplayed / durationMs) * 1000) : eventsReplayed,
    };
  }

  /**
   * The mismatches that hold when checked again: a reconciliation taken while wallets move reads their rows after the
   * head its replay stopped at, so a wallet credited since reads ahead of its replay (and one created since, as
   * missing from it). Each is replayed again from its whole stream, the read models settled at its end, the rows read
   * after, and the stream read once more: a wallet that moved meanwhile is checked again (at most 3 rounds, then
   * reported as last seen); one that did not is a real mismatch, with these figures.
   */
  async function confirmed(mismatches: Mismatch[]): Promise<Mismatch[]> {
    const kept: Mismatch[] = [];
    let pending = mismatches;
    for (let round = 1; pending.length > 0; round++) {
      const ids = pending.map((m) => m.walletId);
      const streams = ids.map((id) => `wallet-${id}`);
      const read = await deps.store.readStreams(streams);
      const events = new Map(ids.map((id) => [id, walletBalanceEvents.decodeHandled(read.get(`wallet-${id}`) ?? [])]));
      const replays = new Map<string, Replayed>();
      let newest: Position | undefined;
      for (const [id, stream] of events) {
        if (!stream.length) continue;
        const replayed = newReplayed();
        for (const event of stream) replayEvent(replayed, event, event.revision);
        replays.set(id, replayed);
        const last = stream.at(-1)!.position;
        if (!newest || deps.store.isAfter(last, newest)) newest = last;
      }
      if (newest && !(await deps.settle(newest))) throw new Error('the projections did not catch up with the event store in time; retry');
      const again = await report(replays, async (id) => events.get(id) ?? [], await projectedWallets(deps.pool, ids, undefined), 0, clock());
      const after = await deps.store.readStreams(streams);
      const moved = new Set(ids.filter((id) => (after.get(`wallet-${id}`)?.length ?? 0) !== (read.get(`wallet-${id}`)?.length ?? 0)));
      kept.push(...again.mismatches.filter((m) => round === 3 || !moved.has(m.walletId)));
      pending = round === 3 ? [] : again.mismatches.filter((m) => moved.has(m.walletId));
    }
    return kept;
  }

  return {
    /** Every wallet (of one tenant, if given): replays the whole wallet feed up to its head, then compares. */
    async all(options: { tenantId?: string } = {}): Promise<ReconcileReport> {
      const started = clock();

      const replays = new Map<string, Replayed>();
      let from: Position | 'start' = 'start';
      let eventsReplayed = 0;
      const head = await deps.store.headPosition();
      if (head && !(await deps.settle(head))) throw new Error('the projections did not catch up with the event store in time; retry');
      // Everything up to the head is read, and nothing after it: the read models were settled at the head.
      let upTo = head;
      // Only the parts of the events the fold reads (no metadata), and the next page is read while this one is folded.
      const read = (from: Position | 'start') => {
        const skip = from === 'start' ? 0 : 1;
        const limit = PAGE + skip;
        const page = deps.store.readAll({ from, ...(head ? { to: head } : {}), limit, filter: WALLET_FEED, omit: ['metadata'] });
        // A page read ahead and then not awaited (the fold threw) must not be an unhandled rejection.
        page.catch(() => undefined);
        return { skip, limit, page };
      };
      let next: ReturnType<typeof read> | undefined = read(from);
      while (next) {
        const { skip, limit } = next;
        const page = await next.page;
        next = undefined;
        const last = page.at(-1);
        const more = !!last && page.length > skip && (head ? page.length === limit && deps.store.isAfter(head, last.position) : true);
        if (last && page.length > skip) {
          if (!head) upTo = last.position;
          from = last.position;
        }
        // Bounded by the head, a short page is the end (everything up to a position handed out is settled).
        if (more) next = read(from);
        // Forwards reads include their start: skip the event the previous page ended with.
        for (let i = skip; i < page.length; i++) {
          const event = walletBalanceEvents.decode(page[i]!);
          if (options.tenantId && event.data.tenantId !== options.tenantId) continue;
          const walletId = event.stream.slice('wallet-'.length);
          let replayed = replays.get(walletId);
          if (!replayed) replays.set(walletId, (replayed = newReplayed()));
          replayEvent(replayed, event, event.revision);
          eventsReplayed++;
        }
      }
      const replayedEvents = async (walletId: string) =>
        walletBalanceEvents
          .decodeHandled(await deps.store.readStream(`wallet-${walletId}`))
          .filter((e) => (!upTo || !deps.store.isAfter(e.position, upTo)) && (!options.tenantId || e.data.tenantId === options.tenantId));
      const found = await report(replays, replayedEvents, await projectedWallets(deps.pool, null, options.tenantId), eventsReplayed, started);
      const result = found.mismatches.length ? { ...found, mismatches: await confirmed(found.mismatches), durationMs: Math.round(clock() - started) } : found;
      // A mistyped tenant checks no wallet, which would read as a clean result.
      if (options.tenantId !== undefined && result.walletsChecked === 0) {
        const known = await deps.pool.query('SELECT 1 FROM workspaces WHERE tenant_id = $1', [options.tenantId]);
        if (!known.rowCount) throw new NotFound(`Workspace ${options.tenantId}`);
      }
      return result;
    },

    /** One wallet, from its own stream: instant. */
    async wallet(walletId: string): Promise<ReconcileReport & { walletId: string; consistent: boolean }> {
      const started = clock();
      const events = walletBalanceEvents.decodeHandled(await deps.store.readStream(`wallet-${walletId}`));
      const last = events.at(-1);
      if (last) await deps.settle(last.position);
      const replays = new Map<string, Replayed>();
      if (events.length) {
        const replayed = newReplayed();
        for (const event of events) replayEvent(replayed, event, event.revision);
        replays.set(walletId, replayed);
      }
      const found = await report(replays, async () => events, await projectedWallets(deps.pool, [walletId], undefined), events.length, started);
      // The wallet may have moved between its stream's read and its row's.
      const result = found.mismatches.length ? { ...found, mismatches: await confirmed(found.mismatches), durationMs: Math.round(clock() - started) } : found;
      return { ...result, walletId, consistent: result.mismatches.length === 0 };
    },
  };
}

export type Reconciler = ReturnType<typeof reconciler>;
