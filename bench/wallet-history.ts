/**
 * Shared setup of `bench/rebuild.ts` and `bench/reconcile.ts`: a synthetic history of wallet events written
 * straight into the event store tables with bulk SQL (fast, and never part of a measurement), plus the
 * read-model SQL the two benchmarks need (a bulk-insert baseline, and a read model built from the events).
 *
 * The history is valid for the wallet decider and the wallets projection (domain/wallets/wallet.ts,
 * projections/wallets.ts): every wallet `w` gets revisions 0..R-1 of stream `wallet-<walletId>`, with the
 * same data shapes the domain writes. Per ten revisions: six `PointsCredited` (20..99 points, a payment
 * each), one `PointsReversed` of half the credit just before it (its refund), two `PointsRedeemed` (10..19
 * points, never more than the balance) and one `PointsAdjusted` (-10..+10, never 0). Feed order interleaves
 * the wallets (event i is wallet i % W, revision i / W), as concurrent traffic would, and the history is
 * written in several transactions, so the feed spans several transaction ids as a real one does.
 * `event_streams` gets each stream's head revision, exactly what `append_events` would have left.
 *
 * Every event is written as its version 1 (`schemaVersion` 1), so the readers exercise the upcasts; the SQL here that
 * reads `data` (the baselines, the expected totals) reads those version-1 shapes only: a `PointsReversed` has no
 * `fromExpired` (all its points left the balance), a `PointsAdjusted` no `adjustedAs`. Writing a later version here
 * means reading its fields in that SQL too.
 */
import pg from 'pg';
import { log, now, withClient } from './support.ts';

export interface HistoryShape {
  wallets: number;
  events: number;
  tenants: number;
  /** Fill transactions (the feed then spans this many transaction ids). */
  transactions: number;
}

export const FULL_HISTORY: HistoryShape = { wallets: 50_000, events: 1_000_000, tenants: 50, transactions: 10 };
export const QUICK_HISTORY: HistoryShape = { wallets: 2_000, events: 40_000, tenants: 50, transactions: 4 };

/**
 * Per-event columns as SQL expressions of `i` (the event's index in feed order) and the shape; the same
 * expressions serve the event fill and the read-model baseline, so both describe the same history.
 */
function eventColumns(shape: HistoryShape): string {
  const W = shape.wallets;
  return `
    SELECT i,
           w,
           r,
           md5('wallet:' || w)::uuid::text                          AS wallet_id,
           md5('tenant:' || (w % ${shape.tenants}))::uuid::text      AS tenant_id,
           md5('consumer:' || w)::uuid::text                        AS consumer_id,
           CASE WHEN r % 10 IN (0, 1, 2, 4, 5, 7) THEN 'PointsCredited'
                WHEN r % 10 = 3 THEN 'PointsReversed'
                WHEN r % 10 IN (6, 9) THEN 'PointsRedeemed'
                ELSE 'PointsAdjusted' END                            AS event_type,
           CASE WHEN r % 10 IN (0, 1, 2, 4, 5, 7) THEN 20 + ((w * 7 + r * 13) % 80)
                WHEN r % 10 = 3 THEN (20 + ((w * 7 + (r - 1) * 13) % 80)) / 2
                WHEN r % 10 IN (6, 9) THEN 10 + ((w + r) % 10)
                ELSE CASE WHEN (w + r) % 21 = 10 THEN 7 ELSE ((w + r) % 21) - 10 END END AS magnitude
      FROM (SELECT i, (i % ${W}) AS w, (i / ${W}) AS r FROM generate_series($1::bigint, $2::bigint - 1) AS g(i)) AS g`;
}

/** A ledger line's signed points (the ledger stores them unsigned, with entry_type credit or debit). */
const signedLine = `CASE WHEN l.entry_type = 'credit' THEN l.points ELSE -l.points END`;
const signedPoints = `CASE c.event_type WHEN 'PointsCredited' THEN c.magnitude WHEN 'PointsAdjusted' THEN c.magnitude ELSE -c.magnitude END`;

/** The event's data, in the shapes of domain/wallets/wallet.ts. */
const dataSql = `
  CASE c.event_type
    WHEN 'PointsCredited' THEN jsonb_build_object(
      'walletId', c.wallet_id, 'tenantId', c.tenant_id, 'consumerId', c.consumer_id,
      'paymentId', 'pay-' || c.w || '-' || c.r, 'points', c.magnitude,
      'ruleId', md5('rule:' || c.tenant_id)::uuid::text, 'ruleVersion', 1, 'basis', 'amount',
      'basisAmountMinor', c.magnitude * 100, 'via', 'purchase')
    WHEN 'PointsReversed' THEN jsonb_build_object(
      'walletId', c.wallet_id, 'tenantId', c.tenant_id, 'consumerId', c.consumer_id,
      'paymentId', 'pay-' || c.w || '-' || (c.r - 1), 'refundId', 'ref-' || c.w || '-' || c.r, 'points', c.magnitude)
    WHEN 'PointsRedeemed' THEN jsonb_build_object(
      'walletId', c.wallet_id, 'tenantId', c.tenant_id, 'consumerId', c.consumer_id, 'points', c.magnitude,
      'idempotencyKey', 'redeem-' || c.w || '-' || c.r, 'reference', 'order-' || c.i, 'redeemedBy', md5('clerk:' || c.tenant_id)::uuid::text)
    ELSE jsonb_build_object(
      'walletId', c.wallet_id, 'tenantId', c.tenant_id, 'consumerId', c.consumer_id, 'points', c.magnitude,
      'reason', 'goodwill gesture', 'adjustedBy', md5('admin')::uuid::text, 'idempotencyKey', NULL)
  END`;

/** Appends events [from, to) of the history in one transaction (one transaction id for the slice). */
function fillSql(shape: HistoryShape): string {
  return `
    INSERT INTO events (event_id, stream_name, stream_revision, event_type, data, metadata)
    SELECT gen_random_uuid(), 'wallet-' || c.wallet_id, c.r, c.event_type, ${dataSql},
           jsonb_build_object('schemaVersion', 1, 'correlationId', 'bench:' || c.i, 'causationId', md5('cause:' || c.i)::uuid::text,
                              'actor', 'system:wallet-credits')
      FROM (${eventColumns(shape)}) AS c
     ORDER BY c.i`;
}

/** Writes the history into `events` and `event_streams`; returns the head position (`tx.seq`). */
export async function fillWalletHistory(url: string, shape: HistoryShape): Promise<{ head: string; ms: number }> {
  if (shape.events % shape.wallets !== 0) throw new Error('events must be a multiple of wallets (whole revisions per wallet)');
  const started = now();
  await withClient(url, async (client) => {
    const per = Math.ceil(shape.events / shape.transactions);
    for (let from = 0; from < shape.events; from += per) {
      const to = Math.min(shape.events, from + per);
      await client.query(fillSql(shape), [from, to]);
      log(`  events ${from.toLocaleString('en-US')}..${to.toLocaleString('en-US')} written (${((now() - started) / 1000).toFixed(1)} s)`);
    }
    await client.query(`INSERT INTO event_streams (stream_name, revision) SELECT stream_name, max(stream_revision) FROM events GROUP BY stream_name`);
    await client.query('VACUUM (ANALYZE) events');
    await client.query('VACUUM (ANALYZE) event_streams');
  });
  const head = await headPosition(url);
  return { head, ms: now() - started };
}

export async function headPosition(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ position: string }>(
      `SELECT transaction_id::text || '.' || global_position AS position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1`,
    );
    if (!rows[0]) throw new Error('no events');
    return rows[0].position;
  });
}

/**
 * Baseline: the same number of read-model rows (one `wallet_ledger` row per event, one `wallets` row per
 * wallet, same values, balance_after by a window) bulk-inserted with INSERT … SELECT into fresh tables shaped
 * like the live ones (`LIKE … INCLUDING ALL`, so the same indexes as the rebuild's fresh tables), with no
 * event processing: nothing is read from `events`. Returns the elapsed time of the two INSERTs; the tables
 * are dropped afterwards.
 */
export async function bulkInsertReadModel(url: string, shape: HistoryShape, suffix: string): Promise<{ ms: number; ledgerRows: number; walletRows: number }> {
  const ledger = `wallet_ledger__bench_${suffix}`;
  const wallets = `wallets__bench_${suffix}`;
  return withClient(url, async (client) => {
    await client.query(`DROP TABLE IF EXISTS ${ledger}; DROP TABLE IF EXISTS ${wallets}`);
    await client.query(`CREATE TABLE ${ledger} (LIKE wallet_ledger INCLUDING ALL)`);
    await client.query(`CREATE TABLE ${wallets} (LIKE wallets INCLUDING ALL)`);
    await client.query('CHECKPOINT').catch(() => undefined);
    const started = now();
    const ledgerResult = await client.query(
      `INSERT INTO ${ledger} (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, payment_id, refund_id, admin_id, reason,
                               reference, idempotency_key, position, revision, created_at)
       SELECT md5('ledger:' || c.i)::uuid::text, c.wallet_id, c.tenant_id,
              CASE WHEN ${signedPoints} < 0 THEN 'debit' ELSE 'credit' END,
              CASE c.event_type WHEN 'PointsCredited' THEN 'earn' WHEN 'PointsReversed' THEN 'reversal'
                                WHEN 'PointsRedeemed' THEN 'redemption' ELSE 'adjustment' END,
              abs(${signedPoints}),
              sum(${signedPoints}) OVER (PARTITION BY c.w ORDER BY c.r),
              CASE WHEN c.event_type = 'PointsCredited' THEN 'pay-' || c.w || '-' || c.r
                   WHEN c.event_type = 'PointsReversed' THEN 'pay-' || c.w || '-' || (c.r - 1) END,
              CASE WHEN c.event_type = 'PointsReversed' THEN 'ref-' || c.w || '-' || c.r END,
              CASE WHEN c.event_type = 'PointsAdjusted' THEN md5('admin')::uuid::text END,
              CASE WHEN c.event_type = 'PointsAdjusted' THEN 'goodwill gesture' END,
              CASE WHEN c.event_type = 'PointsRedeemed' THEN 'order-' || c.i END,
              CASE WHEN c.event_type = 'PointsRedeemed' THEN 'redeem-' || c.w || '-' || c.r END,
              '1.' || c.i, c.r, now()
         FROM (${eventColumns(shape)}) AS c`,
      [0, shape.events],
    );
    const walletResult = await client.query(
      `INSERT INTO ${wallets} (id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, created_at, updated_at)
       SELECT l.wallet_id, l.tenant_id, md5('consumer:' || l.wallet_id)::uuid::text, sum(${signedLine}),
              sum(${signedLine}) FILTER (WHERE l.kind IN ('earn', 'claim', 'reversal')),
              coalesce(sum(l.points) FILTER (WHERE l.kind = 'redemption'), 0), min(l.created_at), max(l.created_at)
         FROM ${ledger} l GROUP BY l.wallet_id, l.tenant_id`,
    );
    const ms = now() - started;
    await client.query(`DROP TABLE ${ledger}; DROP TABLE ${wallets}`);
    return { ms, ledgerRows: ledgerResult.rowCount ?? 0, walletRows: walletResult.rowCount ?? 0 };
  });
}

/**
 * The wallets read model computed from the events with SQL alone (setup for the reconciliation benchmark,
 * not measured): what the wallets projection would hold, and its checkpoint at the head. The reconciler's
 * verdict (no mismatch) then also checks this SQL against the domain's own fold.
 */
export async function buildReadModelFromEvents(url: string, head: string): Promise<{ ms: number }> {
  const started = now();
  await withClient(url, async (client) => {
    await client.query('BEGIN');
    await client.query(`
      INSERT INTO wallet_ledger (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, payment_id, refund_id, admin_id, reason,
                                 reference, idempotency_key, position, revision, created_at)
      SELECT e.event_id::text, e.data->>'walletId', e.data->>'tenantId',
             CASE WHEN d.points < 0 THEN 'debit' ELSE 'credit' END,
             CASE e.event_type WHEN 'PointsCredited' THEN CASE WHEN e.data->>'via' = 'claim' THEN 'claim' ELSE 'earn' END
                               WHEN 'PointsReversed' THEN 'reversal' WHEN 'PointsRedeemed' THEN 'redemption' ELSE 'adjustment' END,
             abs(d.points), sum(d.points) OVER (PARTITION BY e.stream_name ORDER BY e.stream_revision),
             e.data->>'paymentId', e.data->>'refundId', e.data->>'adjustedBy', e.data->>'reason', e.data->>'reference', e.data->>'idempotencyKey',
             e.transaction_id::text || '.' || e.global_position, e.stream_revision, e.recorded_at
        FROM events e
        CROSS JOIN LATERAL (SELECT CASE WHEN e.event_type IN ('PointsReversed', 'PointsRedeemed') THEN -(e.data->>'points')::bigint
                                        ELSE (e.data->>'points')::bigint END AS points) d
       WHERE e.stream_name LIKE 'wallet-%' AND e.event_type IN ('PointsCredited', 'PointsReversed', 'PointsRedeemed', 'PointsAdjusted')`);
    await client.query(`
      INSERT INTO wallets (id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, created_at, updated_at)
      SELECT l.wallet_id, l.tenant_id, c.consumer_id, sum(${signedLine}),
             coalesce(sum(${signedLine}) FILTER (WHERE l.kind IN ('earn', 'claim', 'reversal')), 0),
             coalesce(sum(l.points) FILTER (WHERE l.kind = 'redemption'), 0), min(l.created_at), max(l.created_at)
        FROM wallet_ledger l
        JOIN (SELECT DISTINCT ON (stream_name) substr(stream_name, 8) AS wallet_id, data->>'consumerId' AS consumer_id
                FROM events WHERE stream_name LIKE 'wallet-%' ORDER BY stream_name, stream_revision) c ON c.wallet_id = l.wallet_id
       GROUP BY l.wallet_id, l.tenant_id, c.consumer_id`);
    await client.query(
      `INSERT INTO projection_checkpoints (name, position, events_applied, status) VALUES ('wallets', $1, (SELECT count(*) FROM wallet_ledger), 'running')
       ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, events_applied = EXCLUDED.events_applied, status = 'running'`,
      [head],
    );
    await client.query('COMMIT');
    await client.query('VACUUM (ANALYZE) wallet_ledger');
    await client.query('VACUUM (ANALYZE) wallets');
  });
  return { ms: now() - started };
}

/** What the history's read model must add up to, computed from the events (for correctness checks). */
export async function expectedTotals(url: string): Promise<{ events: number; wallets: number; balance: number }> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ events: string; wallets: string; balance: string }>(
      `SELECT count(*) AS events, count(DISTINCT stream_name) AS wallets,
              coalesce(sum(CASE WHEN event_type IN ('PointsReversed', 'PointsRedeemed') THEN -(data->>'points')::bigint
                                ELSE (data->>'points')::bigint END), 0) AS balance
         FROM events WHERE stream_name LIKE 'wallet-%'`,
    );
    return { events: Number(rows[0]!.events), wallets: Number(rows[0]!.wallets), balance: Number(rows[0]!.balance) };
  });
}

export async function projectedTotals(url: string): Promise<{ ledgerRows: number; wallets: number; balance: number; ledgerBalance: number }> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ ledger_rows: string; wallets: string; balance: string; ledger_balance: string }>(
      `SELECT (SELECT count(*) FROM wallet_ledger) AS ledger_rows, (SELECT count(*) FROM wallets) AS wallets,
              (SELECT coalesce(sum(points_balance), 0) FROM wallets) AS balance, (SELECT coalesce(sum(CASE WHEN entry_type = 'credit' THEN points ELSE -points END), 0) FROM wallet_ledger) AS ledger_balance`,
    );
    const r = rows[0]!;
    return { ledgerRows: Number(r.ledger_rows), wallets: Number(r.wallets), balance: Number(r.balance), ledgerBalance: Number(r.ledger_balance) };
  });
}

export type { pg };
