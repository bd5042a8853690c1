/**
 * Drains the webhook inbox: leases a batch of due rows, hands the batch to the webhook handler, which decides
 * them together and appends their events at once; the rows' outcomes are settled by `commit`, in the same
 * transaction as the events where the event store allows (PostgreSQL). Woken
 * right after a webhook is stored, and polls as a safety net for rows left by a process that died.
 * Failures are retried with exponential backoff and jitter, never sooner than Square asked (a 429's `Retry-After`);
 * the row shows the error and the attempts.
 */
import type { Logger } from 'pino';
import type { WebhookInbox, DueWebhook, Settlement } from '../postgres/webhook-inbox.ts';
import type { WebhookHandler, WebhookResult } from '../../domain/payments/webhook-handler.ts';
import { ConcurrencyConflict, EventStoreUnavailable, type Position, type StreamAppend } from '../../domain/ports/event-store.ts';
import { isTransientPgError } from '../postgres/errors.ts';

/**
 * Writes a batch's appends and settles its rows; answers the position of the appends and the event ids whose
 * settlement was recorded. The default composition passes the PostgreSQL store's append with the settlement in
 * the same statement.
 */
export type InboxCommit = (requests: readonly StreamAppend[], settlements: readonly Settlement[]) => Promise<{ position: Position | undefined; settled: Set<string> }>;
import { DomainError, StreamContended } from '../../domain/shared/errors.ts';
import { SquareApiError } from '../../domain/ports/square.ts';
import { changesNothing } from '../../domain/payments/ingestion.ts';
import type { AcknowledgementsPending } from './acknowledgements.ts';

export interface WebhookProcessorOptions {
  batchSize?: number;
  /** Batches decided at the same time (default 4). */
  batchesInFlight?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  maxAttempts?: number;
  /** Called with every outcome (metrics). */
  onOutcome?: (outcome: string) => void;
  /**
   * Called once a webhook's attempt is over and its row settled: its outcome, or its error (a failure that may
   * still be retried). The development simulator waits on it to answer its `trigger` after the processing.
   */
  onSettled?: (eventId: string, settlement: { outcome: string } | { error: string }) => void;
  /**
   * Webhooks being acknowledged in this process. While they queue, the worker defers leasing its next batch for
   * up to `ackPriorityMs` (default 10,000; 0: never), and a batch leased while they still do is a quarter of
   * `batchSize`: in a burst, acknowledgements do not wait behind batch decisions on the one thread (acknowledgements.ts).
   */
  acknowledgements?: AcknowledgementsPending;
  ackPriorityMs?: number;
  /**
   * Writes each webhook's outcome line (at info, checked on the worker's logger): the worker's logger without the
   * redaction of credential paths (`withoutRedaction`, adapters/logger.ts), whose fields (ids, outcome, points,
   * reasons) hold none. Redacting cost two thirds of the line (about 7 µs of 11). Default: the worker's logger.
   */
  outcomeLog?: Logger;
  /**
   * This worker's lease lock (adapters/postgres/lease-holder.ts): started with the worker, its key written with every
   * lease, stopped after the last batch. With it, the worker also takes back, at its start and every
   * `releaseIntervalMs` (default 5,000), the leases of workers that died (`releaseDeadLeases`). Without it, a dead
   * worker's leases run out (`leaseMs`).
   */
  leaseHolder?: { readonly key: number | null; start(): Promise<void>; stop(): Promise<void> };
  releaseIntervalMs?: number;
  /** Called with how many leases of dead workers were taken back (metrics), when any were. */
  onLeasesTakenBack?: (count: number) => void;
}

export function retryDelayMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(1000 * 2 ** Math.max(0, attempts - 1), 60 * 60 * 1000);
  return Math.round(base * (0.5 + random() / 2));
}

/**
 * How long Square asked us to wait before asking again (`Retry-After` of a 429 or 503, an hour at most), or 0. A
 * throttled look-up retried by the backoff alone (a second at the first attempt) would ask again inside Square's
 * window and count against the limit again.
 */
function retryAfterMs(error: unknown): number {
  if (!(error instanceof SquareApiError) || error.retryAfterSeconds === undefined) return 0;
  return Math.min(error.retryAfterSeconds, 60 * 60) * 1000;
}

/** A failure of the database or the event store, or contention: no webhook of the batch would fare better alone. */
function isWholeBatchFailure(error: unknown): boolean {
  return isTransientPgError(error) || error instanceof EventStoreUnavailable || error instanceof StreamContended || error instanceof ConcurrencyConflict;
}

export class WebhookProcessor {
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  /** Failures that could not be recorded (the database was unreachable), by event id, with when their lease began. */
  private readonly unrecorded = new Map<string, { attempt: number; failure: Parameters<WebhookInbox['fail']>[2]; claimedAt: number }>();
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxAttempts: number;
  private readonly batchesInFlight: number;
  private readonly ackPriorityMs: number;
  private nextRelease = 0;

  constructor(
    private readonly inbox: WebhookInbox,
    private readonly handle: WebhookHandler,
    private readonly log: Logger,
    private readonly commit: InboxCommit,
    private readonly options: WebhookProcessorOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 128;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.maxAttempts = options.maxAttempts ?? 12;
    this.batchesInFlight = options.batchesInFlight ?? 4;
    this.ackPriorityMs = options.ackPriorityMs ?? 10_000;
  }

  /**
   * How many rows to lease now: the whole batch once acknowledgements do not queue; after waiting `ackPriorityMs`
   * for them in vain, a quarter of it, so the decision holds the thread a quarter as long.
   */
  private async leaseSize(): Promise<number> {
    const acknowledgements = this.options.acknowledgements;
    if (!acknowledgements || this.ackPriorityMs === 0 || !acknowledgements.queueing()) return this.batchSize;
    const quiet = await acknowledgements.whenQuiet(this.ackPriorityMs);
    return quiet ? this.batchSize : Math.ceil(this.batchSize / 4);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  /** A webhook was stored: look now rather than at the next poll. */
  wake(): void {
    this.pendingWake = true;
    this.wakeUp?.();
  }

  /**
   * Leases batches while fewer than `batchesInFlight` are being worked on: a batch spends most of its time
   * waiting (Square's customer look-ups, the database), so the next one is leased and decided meanwhile.
   * Batches are independent: two naming one payment meet at its stream's expected revision, and the second is
   * decided again on the first's result.
   */
  private async run(): Promise<void> {
    await this.options.leaseHolder?.start();
    const inFlight = new Set<Promise<void>>();
    while (this.running) {
      if (inFlight.size >= this.batchesInFlight) {
        await Promise.race(inFlight);
        continue;
      }
      let due: DueWebhook[] = [];
      let size = this.batchSize;
      try {
        this.pendingWake = false;
        await this.recordPendingFailures();
        await this.releaseDeadLeases();
        size = await this.leaseSize();
        if (!this.running) break;
        const claimedAt = Date.now();
        due = await this.inbox.claimDue(size, this.leaseMs, this.options.leaseHolder?.key ?? null);
        if (due.length) {
          const batch: Promise<void> = this.processBatch(due, claimedAt)
            .catch((error: unknown) => this.log.error({ err: error }, 'webhook batch failed unexpectedly'))
            .finally(() => inFlight.delete(batch));
          inFlight.add(batch);
        }
      } catch (error) {
        this.log.warn({ err: error }, 'webhook inbox unavailable; retrying');
      }
      if (due.length === size || this.pendingWake) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollIntervalMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
    await Promise.all(inFlight);
    // After the last batch: its leases stay this worker's until it settled them.
    await this.options.leaseHolder?.stop();
  }

  /** Takes back the leases of dead workers (see `leaseHolder`), at most every `releaseIntervalMs`. */
  private async releaseDeadLeases(): Promise<void> {
    if (!this.options.leaseHolder || Date.now() < this.nextRelease) return;
    this.nextRelease = Date.now() + (this.options.releaseIntervalMs ?? 5000);
    const released = await this.inbox.releaseDeadLeases();
    if (!released) return;
    this.log.info({ released }, 'took back webhooks leased by a worker that is gone: they are processed now, not when their lease runs out');
    this.options.onLeasesTakenBack?.(released);
  }

  private async processBatch(rows: DueWebhook[], claimedAt: number): Promise<void> {
    let settled = new Set<string>();
    let results: WebhookResult[];
    try {
      results = await this.handle.handleBatch(
        rows.map((row) => ({ eventId: row.event_id, rawBody: row.raw_body })),
        async (requests, decided) => {
          const settlements = rows.flatMap((row, i) => {
            const r = decided[i];
            return r?.ok ? [{ eventId: row.event_id, attempt: row.attempts, tenantId: r.tenantId, outcome: r.result.outcome }] : [];
          });
          const committed = await this.commit(requests, settlements);
          settled = committed.settled;
          return committed.position;
        },
      );
    } catch (error) {
      if (rows.length > 1 && !isWholeBatchFailure(error)) {
        // Something of one webhook failed the whole batch (a stream whose event does not decode, a bug one payment
        // meets): each is decided alone, so only that one fails, and the others neither wait nor carry its error.
        this.log.warn({ err: error, webhooks: rows.length }, 'a batch failed as a whole: deciding its webhooks one at a time');
        for (const one of rows) await this.processBatch([one], claimedAt);
        return;
      }
      // The batch as a whole could not be decided or written (the database went away, conflicts kept coming):
      // every row is failed and retried; nothing of the batch was written where the append is atomic.
      results = rows.map(() => ({ ok: false, tenantId: null, error }));
    }
    await Promise.all(rows.map((row, i) => this.report(row, results[i], settled, claimedAt)));
  }

  private async report(row: DueWebhook, result: WebhookResult | undefined, settled: ReadonlySet<string>, claimedAt: number): Promise<void> {
    // The row's child logger is made only when a line is written (a child per webhook costs more than it logs).
    let child: Logger | undefined;
    const log = () => (child ??= this.log.child({ webhookEventId: row.event_id, webhookType: row.event_type, merchantId: row.merchant_id }));
    if (result?.ok) {
      if (!settled.has(row.event_id)) {
        // The newer attempt that settles it counts and logs its outcome: this one would count it twice. Waiters in
        // this instance are still told (the newer attempt may be another instance's).
        log().warn({ attempts: row.attempts }, 'the lease ran out while processing: a newer attempt settles this webhook');
        this.options.onSettled?.(row.event_id, { outcome: result.result.outcome });
        return;
      }
      this.options.onOutcome?.(result.result.outcome);
      this.options.onSettled?.(row.event_id, { outcome: result.result.outcome });
      // An outcome that changes nothing (a repeat, an ignored type) at debug: info is for what changed or needs someone.
      const level = changesNothing(result.result.outcome) ? 'debug' : 'info';
      if (this.log.isLevelEnabled(level)) {
        // The row's fields lead the line, as a child logger of the row would write them, without making one.
        (this.options.outcomeLog ?? this.log)[level](
          { webhookEventId: row.event_id, webhookType: row.event_type, merchantId: row.merchant_id, outcome: result.result.outcome, tenantId: result.tenantId, ...result.result.detail },
          `ingestion outcome: ${result.result.outcome}`,
        );
      }
      return;
    }
    const error = result?.error ?? new Error('no result');
    const message = error instanceof DomainError ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
    const retryAt = row.attempts >= this.maxAttempts ? null : new Date(Date.now() + Math.max(retryDelayMs(row.attempts), retryAfterMs(error)));
    const failure = { tenantId: result?.tenantId ?? null, error: message, retryAt };
    const recorded = await this.inbox.fail(row.event_id, row.attempts, failure).catch((e) => {
      log().error({ err: e }, 'could not record the failure; will record it on the next turn');
      this.unrecorded.set(row.event_id, { attempt: row.attempts, failure, claimedAt });
      return true;
    });
    if (!recorded) {
      // The lease ran out and a newer attempt holds the row (it may well credit the payment): that attempt counts,
      // logs and tells waiters its outcome, not this one's failure.
      log().warn({ err: error, attempts: row.attempts }, 'the lease ran out while processing: a newer attempt settles this webhook');
      return;
    }
    log().warn({ err: error, attempts: row.attempts, retryAt }, 'ingestion outcome: failed');
    this.options.onOutcome?.('failed');
    this.options.onSettled?.(row.event_id, { error: message });
  }

  /**
   * A failure not recorded leaves its row leased (for leaseMs, 30 s by default) although no one works on it:
   * when the database went away mid-processing, the webhook would wait out the lease after it came back.
   * Recording it as soon as the database answers again makes the row due at its retry time instead. Only
   * within the first half of the lease: later, the lease may have run out and another worker claimed the row,
   * whose work this must not undo; half a lease is the margin for this host's clock against the database's.
   */
  private async recordPendingFailures(): Promise<void> {
    for (const [eventId, { attempt, failure, claimedAt }] of this.unrecorded) {
      // The attempt guard makes a late record harmless; the half lease keeps the row from waiting it out.
      if (Date.now() < claimedAt + this.leaseMs / 2) await this.inbox.fail(eventId, attempt, failure);
      this.unrecorded.delete(eventId);
    }
  }
}
