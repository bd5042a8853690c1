/**
 * Reconciliation by replay: wallet streams are read from the event store and folded in memory, then compared
 * with the `wallets` and `wallet_ledger` read models: balance, lifetime figures, and every ledger line.
 * It never repairs anything: the fix is a rebuild, or an audited adjustment.
 */
import type pg from 'pg';
import type { EventStore, Position, RecordedEvent } from '../../domain/ports/event-store.ts';
import { pointsDelta, WALLET_EVENT_TYPES, walletDecider, type WalletEvent, type WalletState } from '../../domain/wallets/wallet.ts';

export interface WalletFigures {
  balance: number;
  lifetimeEarned: number;
  lifetimeRedeemed: number;
  ledgerLines: number;
}

export interface Mismatch {
  walletId: string;
  tenantId: string | null;
  projected: WalletFigures | null;
  replayed: WalletFigures | null;
  /** The first event whose ledger line is missing or differs, in stream order. */
  firstDifferingEvent: { id: string; type: string; revision: number; position: Position } | null;
}

export interface ReconcileReport {
  walletsChecked: number;
  eventsReplayed: number;
  mismatches: Mismatch[];
  durationMs: number;
  eventsPerSecond: number;
}

interface Replayed {
  state: WalletState;
  events: RecordedEvent[];
}

const PAGE = 5000;

function figures(state: WalletState, lines: number): WalletFigures {
  return { balance: state.balance, lifetimeEarned: state.lifetimeEarned, lifetimeRedeemed: state.lifetimeRedeemed, ledgerLines: lines };
}

async function projectedWallets(pool: pg.Pool, walletIds: string[] | null, tenantId: string | undefined) {
  const params: unknown[] = [];
  const where: string[] = [];
  if (walletIds) {
    params.push(walletIds);
    where.push(`w.wallet_id = ANY($${params.length})`);
  }
  if (tenantId) {
    params.push(tenantId);
    where.push(`w.tenant_id = $${params.length}`);
  }
  const { rows } = await pool.query<{ wallet_id: string; tenant_id: string; points_balance: string; lifetime_earned: string; lifetime_redeemed: string; lines: string }>(
    `SELECT w.wallet_id, w.tenant_id, w.points_balance, w.lifetime_earned, w.lifetime_redeemed,
            (SELECT count(*) FROM wallet_ledger l WHERE l.wallet_id = w.wallet_id) AS lines
       FROM wallets w ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`,
    params,
  );
  return new Map(
    rows.map((r) => [
      r.wallet_id,
      { tenantId: r.tenant_id, figures: { balance: Number(r.points_balance), lifetimeEarned: Number(r.lifetime_earned), lifetimeRedeemed: Number(r.lifetime_redeemed), ledgerLines: Number(r.lines) } },
    ]),
  );
}

/** The first event (in stream order) whose ledger line is missing or says something else. */
async function firstDifference(pool: pg.Pool, replayed: Replayed): Promise<Mismatch['firstDifferingEvent']> {
  const ids = replayed.events.map((e) => e.id);
  const { rows } = await pool.query<{ id: string; points: string }>('SELECT id, points FROM wallet_ledger WHERE id = ANY($1)', [ids]);
  const lines = new Map(rows.map((r) => [r.id, Number(r.points)]));
  for (const event of replayed.events) {
    const line = lines.get(event.id);
    if (line === undefined || line !== pointsDelta({ type: event.type, data: event.data } as WalletEvent)) {
      return { id: event.id, type: event.type, revision: event.revision, position: event.position };
    }
  }
  return null;
}

function compare(projected: WalletFigures | null, replayed: Replayed | undefined): boolean {
  if (!projected || !replayed) return false;
  const expected = figures(replayed.state, replayed.events.length);
  return (
    projected.balance === expected.balance &&
    projected.lifetimeEarned === expected.lifetimeEarned &&
    projected.lifetimeRedeemed === expected.lifetimeRedeemed &&
    projected.ledgerLines === expected.ledgerLines
  );
}

function fold(events: RecordedEvent[]): WalletState {
  return events.reduce((s, e) => walletDecider.evolve(s, { type: e.type, data: e.data } as WalletEvent), walletDecider.initialState);
}

export interface ReconcilerDependencies {
  pool: pg.Pool;
  store: EventStore;
  /** Waits until the read models include `position`, so that only settled state is compared. */
  settle(position: Position): Promise<boolean>;
  now?: () => number;
}

export function reconciler(deps: ReconcilerDependencies) {
  const clock = deps.now ?? (() => performance.now());

  async function report(replays: Map<string, Replayed>, projected: Awaited<ReturnType<typeof projectedWallets>>, eventsReplayed: number, started: number): Promise<ReconcileReport> {
    const mismatches: Mismatch[] = [];
    for (const walletId of new Set([...replays.keys(), ...projected.keys()])) {
      const replayed = replays.get(walletId);
      const row = projected.get(walletId);
      const tenantId = row?.tenantId ?? replayed?.state.tenantId ?? null;
      if (compare(row?.figures ?? null, replayed)) continue;
      mismatches.push({
        walletId,
        tenantId,
        projected: row?.figures ?? null,
        replayed: replayed ? figures(replayed.state, replayed.events.length) : null,
        firstDifferingEvent: replayed ? await firstDifference(deps.pool, replayed) : null,
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

  return {
    /** Every wallet (of one tenant, if given): replays the whole wallet feed, then compares. */
    async all(options: { tenantId?: string } = {}): Promise<ReconcileReport> {
      const started = clock();
      const replays = new Map<string, Replayed>();
      let from: Position | 'start' = 'start';
      let eventsReplayed = 0;
      const head = await deps.store.headPosition();
      if (head && !(await deps.settle(head))) throw new Error('the projections did not catch up with the event store in time; retry');
      for (;;) {
        const page = await deps.store.readAll({ from, limit: PAGE + (from === 'start' ? 0 : 1), filter: { eventTypes: WALLET_EVENT_TYPES, streamPrefixes: ['wallet-'] } });
        // Forwards reads include their start: skip the event the previous page ended with.
        const fresh = from === 'start' ? page : page.slice(1);
        for (const event of fresh) {
          if (head && deps.store.isAfter(event.position, head)) continue;
          const tenantId = (event.data as { tenantId?: string }).tenantId;
          if (options.tenantId && tenantId !== options.tenantId) continue;
          const walletId = event.stream.slice('wallet-'.length);
          const replay = replays.get(walletId) ?? { state: walletDecider.initialState, events: [] };
          replay.state = walletDecider.evolve(replay.state, { type: event.type, data: event.data } as WalletEvent);
          replay.events.push(event);
          replays.set(walletId, replay);
          eventsReplayed++;
        }
        const last = page.at(-1);
        if (!last || fresh.length === 0 || (head && !deps.store.isAfter(head, last.position))) break;
        from = last.position;
      }
      return report(replays, await projectedWallets(deps.pool, null, options.tenantId), eventsReplayed, started);
    },

    /** One wallet, from its own stream: instant. */
    async wallet(walletId: string): Promise<ReconcileReport & { walletId: string; consistent: boolean }> {
      const started = clock();
      const events = await deps.store.readStream(`wallet-${walletId}`);
      const last = events.at(-1);
      if (last) await deps.settle(last.position);
      const replays = new Map<string, Replayed>();
      if (events.length) replays.set(walletId, { state: fold(events), events });
      const result = await report(replays, await projectedWallets(deps.pool, [walletId], undefined), events.length, started);
      return { ...result, walletId, consistent: result.mismatches.length === 0 };
    },
  };
}

export type Reconciler = ReturnType<typeof reconciler>;
