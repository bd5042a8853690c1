/**
 * The webhook inbox (`pos_webhook_events_raw`): rows are written before Square gets its 2xx, then claimed by
 * workers with SKIP LOCKED and a lease, so a crashed worker's rows are picked up again: at once when its lease names
 * a holder whose lock is gone (lease-holder.ts), else when the lease ends.
 */
import type pg from 'pg';
import { z } from 'zod';
import { LEASE_LOCK_CLASS } from './lease-holder.ts';
import { recordsetFrom, recordsetParameter, type RecordsetColumns } from './recordset.ts';
import { inSlices } from './slices.ts';

/** The columns `recordMany` sends per webhook, as one jsonb parameter (recordset.ts says why). */
const RECORD_COLUMNS: RecordsetColumns = [
  ['id', 'text'],
  ['merchant_id', 'text'],
  ['event_type', 'text'],
  ['object_id', 'text'],
  ['raw_body', 'text'],
  ['headers', 'jsonb'],
];

export interface InboxEntry {
  eventId: string;
  merchantId: string;
  eventType: string;
  objectId: string | null;
  rawBody: string;
  headers: Record<string, string>;
}

const dueRow = z.object({
  event_id: z.string(),
  merchant_id: z.string(),
  event_type: z.string(),
  raw_body: z.string(),
  attempts: z.number(),
});
export type DueWebhook = z.infer<typeof dueRow>;

/**
 * What the statements settling an attempt also set: a body an erasure marked while it waited (`redactMentioning`) is
 * emptied as the row is settled (`settles`: the SQL condition under which this statement settles it), in the same
 * statement, so no settled row keeps a body naming an erased person.
 */
function emptiedIfErasureWaits(settles: string): string {
  const erase = `(${settles}) AND w.body_erasure_pending`;
  return `raw_body = CASE WHEN ${erase} THEN '' ELSE w.raw_body END,
          headers = CASE WHEN ${erase} THEN '{}'::jsonb ELSE w.headers END,
          body_redacted_at = CASE WHEN ${erase} THEN now() ELSE w.body_redacted_at END,
          body_erasure_pending = w.body_erasure_pending AND NOT (${settles})`;
}

/** One webhook's attempt settled with its outcome. */
export interface Settlement {
  eventId: string;
  attempt: number;
  tenantId: string | null;
  outcome: string;
}

/**
 * Settles several attempts in one statement (`completeMany`); the batched worker on PostgreSQL runs it in the very
 * statement that appends the batch's events (`appendMany`'s `alongside`). Returns the event ids it recorded.
 */
export function completeManyStatement(settlements: readonly Settlement[]): { name: string; text: string; values: unknown[] } {
  return {
    name: 'tally_inbox_complete_many',
    text: `UPDATE pos_webhook_events_raw w
              SET processed = true, processed_at = now(), outcome = s.outcome, tenant_id = COALESCE(s.tenant_id, w.tenant_id), error = NULL, locked_until = NULL,
                  ${emptiedIfErasureWaits('true')}
             FROM unnest($1::text[], $2::int[], $3::text[], $4::text[]) AS s(event_id, attempt, outcome, tenant_id)
            WHERE w.id = s.event_id AND w.attempts = s.attempt AND NOT w.processed
          RETURNING w.id AS event_id`,
    values: [settlements.map((s) => s.eventId), settlements.map((s) => s.attempt), settlements.map((s) => s.outcome), settlements.map((s) => s.tenantId)],
  };
}

/**
 * The worker's lease: up to `limit` due rows (not processed, due, not leased by another worker), in the order they
 * became due (`next_attempt_at`; a webhook never tried became due when it was received), which the partial index of
 * migration 0270 holds: the scan reads only unprocessed rows, whatever the inbox's history. `holder`: the worker's
 * lease-lock key (null: none held), written with the lease so that its death can be told (migration 0300).
 */
export function claimDueStatement(limit: number, leaseMs: number, holder: number | null = null): { name: string; text: string; values: unknown[] } {
  return {
    name: 'tally_inbox_claim_due',
    text: `UPDATE pos_webhook_events_raw w
              SET attempts = w.attempts + 1, locked_until = now() + ($2::int * interval '1 millisecond'), locked_by = $3
            WHERE w.id IN (
              SELECT id FROM pos_webhook_events_raw
               WHERE NOT processed AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
               ORDER BY next_attempt_at, received_at, id
               LIMIT $1
               FOR UPDATE SKIP LOCKED)
          RETURNING w.id AS event_id, w.merchant_id, w.event_type, w.raw_body, w.attempts`,
    values: [limit, leaseMs, holder],
  };
}

/**
 * Ends the leases whose holder no longer holds its lock (its process died, or lost its connection): those rows are
 * due again at once, for any worker. A lease without a holder is left to run out. One scan of the unprocessed rows
 * (the partial index of migration 0270) against the database's advisory locks of lease holders, read once.
 */
export const releaseDeadLeasesStatement = {
  name: 'tally_inbox_release_dead_leases',
  text: `UPDATE pos_webhook_events_raw SET locked_until = NULL, locked_by = NULL
          WHERE NOT processed AND locked_until > now() AND locked_by IS NOT NULL
            AND locked_by NOT IN (
              SELECT objid::bigint FROM pg_locks
               WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
  values: [LEASE_LOCK_CLASS],
};

export function webhookInbox(pool: pg.Pool) {
  return {
    /**
     * The inbox as an operator alerts on it (`/metrics`): unprocessed rows and the oldest due one's age through the
     * partial index of unprocessed rows, rows given up on through the outcome index. `failed` counts only the ones
     * an operator can re-drive: a body emptied (retention, erasure) leaves nothing to process, the poll covers it.
     */
    async reading(): Promise<{ unprocessed: number; oldestDueAgeSeconds: number; failed: number }> {
      const { rows } = await pool.query<{ unprocessed: string; oldest_due: string | null; failed: string }>({
        name: 'tally_inbox_reading',
        text: `SELECT (SELECT count(*) FROM pos_webhook_events_raw WHERE NOT processed) AS unprocessed,
                      (SELECT extract(epoch FROM now() - min(next_attempt_at)) FROM pos_webhook_events_raw WHERE NOT processed AND next_attempt_at <= now()) AS oldest_due,
                      (SELECT count(*) FROM pos_webhook_events_raw WHERE processed AND outcome = 'failed' AND body_redacted_at IS NULL) AS failed`,
      });
      const row = rows[0]!;
      return { unprocessed: Number(row.unprocessed), oldestDueAgeSeconds: Math.max(0, Number(row.oldest_due ?? 0)), failed: Number(row.failed) };
    },

    /** Stores a verified webhook once; a repeated event id only counts the delivery. */
    async record(entry: InboxEntry): Promise<{ inserted: boolean }> {
      // Named: each connection parses and plans the acknowledgement's statements once, not once per webhook.
      const { rows } = await pool.query<{ inserted: boolean }>({
        name: 'tally_inbox_record',
        text: `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, object_id, raw_body, headers)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET deliveries = pos_webhook_events_raw.deliveries + 1
         RETURNING (xmax = 0) AS inserted`,
        values: [entry.eventId, entry.merchantId, entry.eventType, entry.objectId, entry.rawBody, JSON.stringify(entry.headers)],
      });
      return { inserted: rows[0]?.inserted ?? false };
    },

    /**
     * Stores several verified webhooks in one statement (one transaction, one commit): what `record` does for
     * each, answered per entry in the order given. The event ids must be distinct (a row cannot be inserted and
     * counted again in one statement): `groupedRecorder` keeps a repeated id for the next statement.
     */
    async recordMany(entries: readonly InboxEntry[]): Promise<{ inserted: boolean }[]> {
      if (!entries.length) return [];
      const { rows } = await pool.query<{ event_id: string; inserted: boolean }>({
        name: 'tally_inbox_record_many',
        text: `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, object_id, raw_body, headers)
         SELECT id, merchant_id, event_type, object_id, raw_body, headers FROM ${recordsetFrom(RECORD_COLUMNS, 1, 'e')} ORDER BY ord
         ON CONFLICT (id) DO UPDATE SET deliveries = pos_webhook_events_raw.deliveries + 1
         RETURNING id AS event_id, (xmax = 0) AS inserted`,
        values: [
          recordsetParameter(
            entries.map((e) => ({ id: e.eventId, merchant_id: e.merchantId, event_type: e.eventType, object_id: e.objectId, raw_body: e.rawBody, headers: e.headers })),
          ),
        ],
      });
      const inserted = new Map(rows.map((r) => [r.event_id, r.inserted]));
      return entries.map((e) => {
        const answer = inserted.get(e.eventId);
        if (answer === undefined) throw new Error(`the inbox insert returned no row for ${e.eventId}`);
        return { inserted: answer };
      });
    },

    /**
     * Leases up to `limit` due webhooks, in the order they became due; the lease protects against a second worker.
     * `holder`: the worker's lease-lock key, or null.
     */
    async claimDue(limit: number, leaseMs: number, holder: number | null = null): Promise<DueWebhook[]> {
      const { rows } = await pool.query(claimDueStatement(limit, leaseMs, holder));
      return rows.map((r) => dueRow.parse(r));
    },

    /** Makes the rows leased by dead holders due again (`releaseDeadLeasesStatement`); answers how many. */
    async releaseDeadLeases(): Promise<number> {
      return (await pool.query(releaseDeadLeasesStatement)).rowCount ?? 0;
    },

    /**
     * Settles the attempt `attempt` (the row's `attempts` when it was claimed). A worker whose lease ran out while
     * it worked (a slow Square call) finds the row claimed again, so its late answer changes nothing: the newer
     * attempt's outcome stands. Returns whether this attempt's outcome was recorded.
     */
    async complete(eventId: string, attempt: number, result: { tenantId: string | null; outcome: string }): Promise<boolean> {
      const { rowCount } = await pool.query(
        `UPDATE pos_webhook_events_raw w
            SET processed = true, processed_at = now(), outcome = $2, tenant_id = COALESCE($3, tenant_id), error = NULL, locked_until = NULL,
                ${emptiedIfErasureWaits('true')}
          WHERE id = $1 AND attempts = $4 AND NOT processed`,
        [eventId, result.outcome, result.tenantId, attempt],
      );
      return rowCount === 1;
    },

    /**
     * Settles several attempts in one statement, like `complete` each (where the events are appended elsewhere; on
     * PostgreSQL the batched worker puts `completeManyStatement` in its append's own statement). Returns the event
     * ids whose outcome was recorded.
     */
    async completeMany(settlements: readonly Settlement[]): Promise<Set<string>> {
      if (!settlements.length) return new Set();
      const { rows } = await pool.query<{ event_id: string }>(completeManyStatement(settlements));
      return new Set(rows.map((r) => r.event_id));
    },

    /** Records a failed attempt (see `complete` for `attempt`); with no retry left the row is settled as failed. */
    async fail(eventId: string, attempt: number, failure: { tenantId: string | null; error: string; retryAt: Date | null }): Promise<boolean> {
      // An operator can re-drive a settled failure.
      const { rowCount } = await pool.query(
        `UPDATE pos_webhook_events_raw w
            SET outcome = 'failed', error = $2, tenant_id = COALESCE($3, tenant_id), locked_until = NULL,
                processed = ($4::timestamptz IS NULL), processed_at = CASE WHEN $4::timestamptz IS NULL THEN now() END,
                next_attempt_at = COALESCE($4::timestamptz, next_attempt_at),
                ${emptiedIfErasureWaits('$4::timestamptz IS NULL')}
          WHERE id = $1 AND attempts = $5 AND NOT processed`,
        [eventId, failure.error.slice(0, 2000), failure.tenantId, failure.retryAt, attempt],
      );
      return rowCount === 1;
    },

    /**
     * Empties the bodies (and headers) of webhooks processed before `cutoff`; answers how many. Rows stay with
     * their id, type, merchant, tenant, object id, outcome and times: what the log and the admin list show. In slices
     * of `slice` rows, oldest first on the retention index, each its own short statement (found in review,
     * 2026-12-08: one UPDATE over a backlog was a long writing transaction, and pg_snapshot_xmin, cluster-wide, held
     * the feed back while it ran); a row locked meanwhile (an erasure, a re-drive) waits for the next run, as does
     * everything once `stopping` is aborted (shutdown).
     */
    async redactProcessedBefore(cutoff: Date, slice = 5_000, stopping?: AbortSignal): Promise<number> {
      return inSlices(
        slice,
        () =>
          pool.query(
            `UPDATE pos_webhook_events_raw SET raw_body = '', headers = '{}', body_redacted_at = now()
              WHERE id IN (SELECT id FROM pos_webhook_events_raw WHERE processed AND body_redacted_at IS NULL AND processed_at < $1
                            ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
            [cutoff, slice],
          ),
        stopping,
      );
    },

    /**
     * Deletes the rows of webhooks received before `cutoff` and processed, in slices of `slice` (each its own short
     * statement: no long lock, and acknowledgements go on between them; none once `stopping` is aborted). A row not
     * processed yet stays. Answers how many were deleted.
     */
    async deleteProcessedReceivedBefore(cutoff: Date, slice = 5_000, stopping?: AbortSignal): Promise<number> {
      return inSlices(
        slice,
        () =>
          pool.query(
            `DELETE FROM pos_webhook_events_raw WHERE id IN (
               SELECT id FROM pos_webhook_events_raw WHERE received_at < $1 AND processed ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
            [cutoff, slice],
          ),
        stopping,
      );
    },

    /**
     * Erasure: every stored body naming this email (any case) or phone (its digits, with or without the country
     * code, however the merchant punctuated it). A processed one is emptied now; one not processed yet (waiting for a
     * retry, or being processed) is marked, and the statement that settles it empties it (`emptiedIfErasureWaits`):
     * its worker still needs it, and nothing naming the person is kept to search again later. One statement, so a
     * row settled meanwhile is re-read settled and emptied here. Answers how many were emptied and how many marked.
     */
    async redactMentioning(contacts: { emails: readonly string[]; phoneDigits: readonly string[] }): Promise<{ emptied: number; pending: number }> {
      const emails = contacts.emails.filter((e) => e.length > 0).map((e) => e.toLowerCase());
      const digits = contacts.phoneDigits.filter((d) => d.length >= 7);
      if (!emails.length && !digits.length) return { emptied: 0, pending: 0 };
      const statement = () => pool.query<{ processed: boolean }>(
        `UPDATE pos_webhook_events_raw
            SET raw_body = CASE WHEN processed THEN '' ELSE raw_body END,
                headers = CASE WHEN processed THEN '{}'::jsonb ELSE headers END,
                body_redacted_at = CASE WHEN processed THEN now() END,
                body_erasure_pending = NOT processed
          WHERE body_redacted_at IS NULL
            AND ((cardinality($1::text[]) > 0 AND EXISTS (SELECT 1 FROM unnest($1::text[]) e WHERE strpos(lower(raw_body), e) > 0))
              OR ($2::text IS NOT NULL AND regexp_replace(raw_body, '[^0-9]+', '', 'g') ~ $2))
          RETURNING processed`,
        // The phones' digit strings as one alternation (digits only: nothing to escape), one match per body.
        [emails, digits.length ? digits.join('|') : null],
      );
      // It locks the rows it marks in the table's order while a worker's settlement locks a batch's in due order: two
      // rows naming the person in one batch can deadlock the two, and PostgreSQL aborts one. Erasure tries again.
      let rows: { processed: boolean }[] | undefined;
      for (let attempt = 1; !rows; attempt++) {
        try {
          rows = (await statement()).rows;
        } catch (error) {
          if ((error as { code?: string }).code !== '40P01' || attempt >= 5) throw error;
        }
      }
      const emptied = rows.filter((r) => r.processed).length;
      return { emptied, pending: rows.length - emptied };
    },

    /**
     * Re-drives a webhook now. Only failed ones: a processed success is not processed twice. Answers the time it is
     * due from: an attempt that fails again moves it (to its backoff's retry) or settles the row, so a caller can tell
     * that attempt's end from the counter, which restarts here. `emptied`: a failed one whose body was emptied
     * (retention, erasure): there is nothing left to process.
     */
    async retry(eventId: string): Promise<{ nextAttemptAt: Date } | 'not_found' | 'not_failed' | 'emptied'> {
      for (;;) {
        const { rows } = await pool.query<{ outcome: string | null; redacted: boolean }>(
          'SELECT outcome, body_redacted_at IS NOT NULL AS redacted FROM pos_webhook_events_raw WHERE id = $1',
          [eventId],
        );
        const row = rows[0];
        if (!row) return 'not_found';
        if (row.outcome !== 'failed' && row.outcome !== 'no_connection') return 'not_failed';
        if (row.redacted) return 'emptied';
        // The same conditions again in the write: an erasure landing between the two statements wins (read again).
        const scheduled = await pool.query<{ next_attempt_at: Date }>(
          `UPDATE pos_webhook_events_raw SET processed = false, processed_at = NULL, next_attempt_at = now(), locked_until = NULL, attempts = 0
            WHERE id = $1 AND outcome IN ('failed', 'no_connection') AND body_redacted_at IS NULL RETURNING next_attempt_at`,
          [eventId],
        );
        const nextAttemptAt = scheduled.rows[0]?.next_attempt_at;
        if (nextAttemptAt) return { nextAttemptAt };
      }
    },
  };
}

export type WebhookInbox = ReturnType<typeof webhookInbox>;

export interface GroupedRecorderOptions {
  /** Most webhooks stored by one statement. */
  maxBatch: number;
  /**
   * Most statements under way at once (each holds one connection). A second starts only while a full batch waits,
   * or once the latest to start has run `stalledAfterMs` (default 25): a slow or blocked insert holds back the
   * webhooks behind it that long at most.
   */
  maxInFlight: number;
  stalledAfterMs?: number;
  /** Most webhooks waiting for a statement (10,000), and their bodies' characters at most (64 Mi): one more is refused. */
  maxWaiting?: number;
  maxWaitingBytes?: number;
  /** How long a webhook may wait for a statement to take it (8,000 ms): then it is refused, Square sends it again. */
  waitLimitMs?: number;
}

/** How long a webhook waits to be stored before it is refused (`groupedRecorder`, the acknowledgement pool's statements). */
export const ACK_WAIT_LIMIT_MS = 8_000;

/**
 * The webhook could not be stored in time (its statement blocked, or too many waited): answered 503, and Square
 * delivers it again. Nothing of it is stored, or what is (a statement that committed after all) is deduplicated.
 */
export class InboxBusy extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InboxBusy';
  }
}

interface Waiting {
  entry: InboxEntry;
  since: number;
  bytes: number;
  resolve(result: { inserted: boolean }): void;
  reject(error: unknown): void;
}

/** PostgreSQL's `statement_timeout` (57014): the acknowledgement pool's statements are bounded (main.ts). */
const timedOut = (error: unknown) => (error as { code?: unknown } | undefined)?.code === '57014';

/**
 * Group commit of the acknowledgement path: webhooks arriving while an insert is under way wait, and the next
 * insert stores all of them in one statement (one transaction, one WAL flush, one round trip), so each webhook is
 * still answered only once its own row is durable, by a commit that includes it. Nothing waits on a timer: with no
 * insert under way, a webhook is stored at once, alone. A second insert (up to `maxInFlight`) starts only while a
 * full batch (`maxBatch`) waits, or once the insert under way has stalled (`stalledAfterMs`): a flush per statement
 * is what an insert costs most, so fewer and fuller statements store a burst with less of the machine (README
 * "Architecture": 0.38–0.40 committed transactions per webhook in 6,000-webhook bursts, against 0.55–0.58 with an
 * insert on every free connection). A statement that fails is retried one webhook at a time, so that one bad
 * webhook fails only its own request.
 */
// Over 80 lines because the queue, its statements and its bounds share one closure.
export function groupedRecorder(inbox: Pick<WebhookInbox, 'record' | 'recordMany'>, options: GroupedRecorderOptions) {
  const queue: Waiting[] = [];
  let waitingBytes = 0;
  const maxWaiting = options.maxWaiting ?? 10_000;
  const maxWaitingBytes = options.maxWaitingBytes ?? 64 * 1024 * 1024;
  const waitLimitMs = options.waitLimitMs ?? ACK_WAIT_LIMIT_MS;
  let expiryTimer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  const stalledAfterMs = options.stalledAfterMs ?? 25;
  /** When the latest insert started, and the timer that starts another if it stalls with webhooks waiting. */
  let latestStart = 0;
  let stallTimer: NodeJS.Timeout | undefined;
  /** The batches whose statements are under way: their webhooks are not answered yet either. */
  const inStatements = new Set<Waiting[]>();

  const take = (): Waiting[] => {
    // A repeated event id waits for the next statement: one statement cannot insert a row and count it again.
    const batch: Waiting[] = [];
    const ids = new Set<string>();
    for (let i = 0; i < queue.length && batch.length < options.maxBatch; ) {
      const waiting = queue[i]!;
      if (ids.has(waiting.entry.eventId)) {
        i++;
        continue;
      }
      ids.add(waiting.entry.eventId);
      batch.push(waiting);
      queue.splice(i, 1);
      waitingBytes -= waiting.bytes;
    }
    return batch;
  };

  /**
   * Refuses what has waited `waitLimitMs` for a statement (the queue is in arrival order: the oldest first). While
   * inserts are blocked (a lock on the inbox, a stalled server), webhooks no longer pile up in memory unanswered.
   */
  const expire = () => {
    expiryTimer = undefined;
    const now = Date.now();
    while (queue.length && now - queue[0]!.since >= waitLimitMs) {
      const waiting = queue.shift()!;
      waitingBytes -= waiting.bytes;
      waiting.reject(new InboxBusy(`The webhook could not be stored within ${waitLimitMs / 1000} s (the database is not taking acknowledgements): Square delivers it again`));
    }
    armExpiry();
  };
  const armExpiry = () => {
    if (expiryTimer || !queue.length) return;
    expiryTimer = setTimeout(expire, Math.max(1, queue[0]!.since + waitLimitMs - Date.now()));
    expiryTimer.unref();
  };

  /** Stores a batch, then frees its slot before answering: a webhook answered and followed at once goes alone. */
  const store = async (batch: Waiting[]) => {
    inStatements.add(batch);
    let answer: () => void;
    try {
      const results = batch.length === 1 ? [await inbox.record(batch[0]!.entry)] : await inbox.recordMany(batch.map((w) => w.entry));
      answer = () => batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (error) {
      // A statement that timed out is not tried again a webhook at a time, and what waits is refused with it: what
      // blocked it blocks those too (taken into the next statement, they would wait its whole timeout again).
      const busy = timedOut(error) ? new InboxBusy('The webhook could not be stored in time (the database did not complete the insert): Square delivers it again') : undefined;
      if (busy) {
        const waiting = queue.splice(0);
        waitingBytes = 0;
        answer = () => [...batch, ...waiting].forEach((w) => w.reject(busy));
      }
      else if (batch.length === 1) answer = () => batch[0]!.reject(error);
      else {
        const each = await Promise.allSettled(batch.map((w) => inbox.record(w.entry)));
        answer = () => each.forEach((r, i) => (r.status === 'fulfilled' ? batch[i]!.resolve(r.value) : batch[i]!.reject(r.reason)));
      }
    }
    inFlight--;
    inStatements.delete(batch);
    answer();
    pump();
  };

  /** One insert at a time; another while one statement could not hold what waits, or the latest has stalled. */
  const startsAnother = (now: number) =>
    queue.length > 0 && (inFlight === 0 || (inFlight < options.maxInFlight && (queue.length >= options.maxBatch || now - latestStart >= stalledAfterMs)));

  const pump = () => {
    let now = Date.now();
    while (startsAnother(now)) {
      inFlight++;
      latestStart = now;
      void store(take());
      now = Date.now();
    }
    if (queue.length && inFlight < options.maxInFlight && !stallTimer) {
      stallTimer = setTimeout(() => {
        stallTimer = undefined;
        pump();
      }, Math.max(1, latestStart + stalledAfterMs - now));
      stallTimer.unref();
    }
  };

  return {
    /** `record`, grouped with the webhooks arriving meanwhile: answers once this webhook's row is committed. */
    record(entry: InboxEntry): Promise<{ inserted: boolean }> {
      // Characters, not bytes: as a string holds it in memory (one byte a character for the ASCII of JSON), and free.
      const bytes = entry.rawBody.length;
      if (queue.length >= maxWaiting || waitingBytes + bytes > maxWaitingBytes) {
        return Promise.reject(new InboxBusy(`Too many webhooks are waiting to be stored (${queue.length.toLocaleString('en-US')}): Square delivers this one again`));
      }
      return new Promise((resolve, reject) => {
        queue.push({ entry, since: Date.now(), bytes, resolve, reject });
        waitingBytes += bytes;
        pump();
        armExpiry();
      });
    },
    /**
     * How many webhooks are not answered yet, waiting for a statement or in one under way, and how long the oldest
     * of them has waited (ms; 0 when none). A statement blocked by a lock holds its webhooks as long as the queue's:
     * readiness counted only the queue, and said ready while every webhook sat in blocked statements.
     */
    waiting(): { count: number; oldestMs: number } {
      let count = queue.length;
      let oldest = queue.length ? queue[0]!.since : Infinity;
      for (const batch of inStatements) {
        count += batch.length;
        for (const w of batch) oldest = Math.min(oldest, w.since);
      }
      return { count, oldestMs: count ? Date.now() - oldest : 0 };
    },
  };
}
