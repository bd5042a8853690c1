/**
 * Webhooks received and not yet answered, so the inbox worker can give way to them when they queue. Acknowledging
 * and processing share one Node thread: while a burst comes in, every millisecond a batch decision holds the thread
 * is a millisecond each waiting acknowledgement waits too.
 *
 * Acknowledgements are *queueing* while at least `queueing` of them are pending at once, and until they have stayed
 * below that for `quietMs`. At a steady rate the service keeps up with, a few are pending at a time and the worker
 * never waits. In a burst (Square delivering a backlog, a busy hour across many merchants) they pile up: the worker
 * then defers its next lease until they stop queueing, for at most its bound, so Square's deliveries are answered
 * first and the backlog they stored drains right after; a flood that never stops still gets batches, one per bound.
 * A momentary dip (a group of answers written together, before the sender's next requests arrive) does not end a
 * burst: that is what `quietMs` is for.
 *
 * A sender that pauses in the middle of a burst (descheduled on a busy machine, or between its own batches) looks
 * like the end of the burst to a fixed `quietMs`: the worker leases a batch, its decisions and writes slow the
 * acknowledgements that come right after, and on a loaded machine a burst was acknowledged at half speed after a
 * dozen such false ends. So the quiet a burst must keep grows with the pauses it has shown: at least twice the
 * longest pause between two arrivals that began while acknowledgements queued, seen within the last
 * `pauseMemoryMs`, and never more than `maxQuietMs` (a pause that long is taken for the burst's real end). A burst
 * without pauses ends after `quietMs`, as before.
 *
 * Only a pause during which this thread was mostly idle is the sender's. A gap between arrivals while the thread was
 * busy (deciding a batch, applying projections, collecting garbage) is its own: the requests waited in their sockets.
 * Counted as the sender's, such gaps made a steady rate look like a burst with 50–100 ms pauses, and the worker then
 * waited twice that after each batch: at 1,000 webhooks/s the credit lag's p99 was 1.0–2.3 s (p50 0.6–1.5 s) with
 * them, 0.72–1.04 s (p50 0.42–0.53 s) without (bench:ingest's open loop, bench/HISTORY.md 2026-12-07 05:50).
 */
import { performance as loopPerformance } from 'node:perf_hooks';

export interface AcknowledgementsPending {
  /** Whether acknowledgements are queueing now (see above). */
  queueing(): boolean;
  /** Resolves true once they no longer queue, or false after `maxWaitMs` with them still queueing. */
  whenQuiet(maxWaitMs: number): Promise<boolean>;
}

export interface AcknowledgementsOptions {
  /** Pending at once from which acknowledgements count as queueing (default 16). */
  queueing?: number;
  /** How long they must stay below it before the queue counts as gone, at the least (ms, default 20). */
  quietMs?: number;
  /** The most that pauses of the sender can lengthen that quiet to (ms, default 250). */
  maxQuietMs?: number;
  /** How long a pause seen while they queued keeps lengthening the quiet (ms, default 1,000). */
  pauseMemoryMs?: number;
  now?: () => number;
  /** How busy this thread was since the previous call, 0–1 (default: its event loop's utilisation). */
  busySinceLastCall?: () => number;
}

/** The event loop's utilisation between two calls. */
function eventLoopBusy(): () => number {
  let last = loopPerformance.eventLoopUtilization();
  return () => {
    const now = loopPerformance.eventLoopUtilization();
    const { utilization } = loopPerformance.eventLoopUtilization(now, last);
    last = now;
    return utilization;
  };
}

export class Acknowledgements implements AcknowledgementsPending {
  private pending = 0;
  /** When the pending count last fell below the threshold; undefined while at or above it. */
  private belowSince: number | undefined = -Infinity;
  private readonly waiting = new Set<() => void>();
  private readonly threshold: number;
  private readonly quietMs: number;
  private readonly maxQuietMs: number;
  private readonly pauseMemoryMs: number;
  private readonly now: () => number;
  private readonly busySinceLastCall: () => number;
  /** When the last webhook arrived, and whether acknowledgements were queueing then. */
  private lastArrival = -Infinity;
  private lastArrivalQueued = false;
  /** The longest pause between arrivals that began while they queued, and when it ended. */
  private longestPause = 0;
  private pauseSeenAt = -Infinity;
  private check: NodeJS.Timeout | undefined;
  /** Told each time acknowledgements start or stop queueing (a worker on another thread follows them so). */
  private readonly listeners = new Set<(queueing: boolean) => void>();
  /** What the listeners were last told. */
  private told = false;

  constructor(options: AcknowledgementsOptions = {}) {
    this.threshold = Math.max(1, options.queueing ?? 16);
    this.quietMs = Math.max(0, options.quietMs ?? 20);
    this.maxQuietMs = Math.max(this.quietMs, options.maxQuietMs ?? 250);
    this.pauseMemoryMs = Math.max(0, options.pauseMemoryMs ?? 1_000);
    this.now = options.now ?? (() => performance.now());
    this.busySinceLastCall = options.busySinceLastCall ?? eventLoopBusy();
  }

  /** Callers waiting in `whenQuiet` (the worker, deferring its next batch). */
  get deferring(): number {
    return this.waiting.size;
  }

  /** A webhook request's whole body has arrived: its acknowledgement (signature, parse, insert) is under way. */
  received(): void {
    const now = this.now();
    const pause = now - this.lastArrival;
    const senders = this.busySinceLastCall() < 0.5;
    // A pause as long as the longest quiet is the burst's real end, not a pause within it.
    if (this.lastArrivalQueued && senders && pause > this.currentPause(now) && pause < this.maxQuietMs) {
      this.longestPause = pause;
      this.pauseSeenAt = now;
    }
    this.lastArrival = now;
    this.pending++;
    if (this.pending >= this.threshold) {
      this.belowSince = undefined;
      this.tell(true);
    }
    this.lastArrivalQueued = this.queueing();
  }

  /** How long the queue must now stay below the threshold to count as gone (see above). */
  quietFor(): number {
    return Math.min(this.maxQuietMs, Math.max(this.quietMs, 2 * this.currentPause(this.now())));
  }

  /** The longest pause still remembered at `now`. */
  private currentPause(now: number): number {
    return now - this.pauseSeenAt <= this.pauseMemoryMs ? this.longestPause : 0;
  }

  /** Its answer, whatever it is, is being written. */
  answered(): void {
    this.pending = Math.max(0, this.pending - 1);
    if (this.pending < this.threshold && this.belowSince === undefined) {
      this.belowSince = this.now();
      this.scheduleCheck();
    }
  }

  queueing(): boolean {
    return this.belowSince === undefined || this.now() - this.belowSince < this.quietFor();
  }

  whenQuiet(maxWaitMs: number): Promise<boolean> {
    const quiet = untilQuiet(this.waiting, () => !this.queueing(), maxWaitMs);
    this.scheduleCheck();
    return quiet;
  }

  /** Calls `listener` each time acknowledgements start (true) or stop (false) queueing; returns how to stop. */
  onChange(listener: (queueing: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tell(queueing: boolean): void {
    if (this.told === queueing) return;
    this.told = queueing;
    for (const listener of this.listeners) listener(queueing);
  }

  /**
   * Releases the waiting workers, and tells the listeners, once the queue has stayed quiet for `quietFor()` (checked
   * again if it came back, or if a pause seen meanwhile lengthened the quiet).
   */
  private scheduleCheck(): void {
    if (this.check || (this.waiting.size === 0 && !this.told) || this.belowSince === undefined) return;
    const due = Math.max(0, this.belowSince + this.quietFor() - this.now());
    this.check = setTimeout(() => {
      this.check = undefined;
      if (!this.queueing()) {
        this.tell(false);
        for (const release of [...this.waiting]) release();
      } else this.scheduleCheck();
    }, due);
    this.check.unref?.();
  }
}

/**
 * The acknowledgements of the service's thread as a worker on another thread sees them: told by message when they
 * start and stop queueing (`Acknowledgements.onChange`).
 */
export class RemoteAcknowledgements implements AcknowledgementsPending {
  private queueingNow = false;
  private readonly waiting = new Set<() => void>();

  /** The service's thread says whether its acknowledgements queue now. */
  set(queueing: boolean): void {
    this.queueingNow = queueing;
    if (!queueing) for (const release of [...this.waiting]) release();
  }

  queueing(): boolean {
    return this.queueingNow;
  }

  whenQuiet(maxWaitMs: number): Promise<boolean> {
    return untilQuiet(this.waiting, () => !this.queueingNow, maxWaitMs);
  }
}

/**
 * `whenQuiet` of both: at once when `quiet()`, else a release put in `waiting` (called when the queue ends), which
 * answers `quiet()` then, or false at `maxWaitMs`.
 */
function untilQuiet(waiting: Set<() => void>, quiet: () => boolean, maxWaitMs: number): Promise<boolean> {
  if (quiet()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const release = () => {
      clearTimeout(timer);
      waiting.delete(release);
      resolve(quiet());
    };
    const timer = setTimeout(release, maxWaitMs);
    waiting.add(release);
  });
}
