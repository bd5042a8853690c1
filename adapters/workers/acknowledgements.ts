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
 */
export interface AcknowledgementsPending {
  /** Whether acknowledgements are queueing now (see above). */
  queueing(): boolean;
  /** Resolves true once they no longer queue, or false after `maxWaitMs` with them still queueing. */
  whenQuiet(maxWaitMs: number): Promise<boolean>;
}

export interface AcknowledgementsOptions {
  /** Pending at once from which acknowledgements count as queueing (default 16). */
  queueing?: number;
  /** How long they must stay below it before the queue counts as gone (ms, default 20). */
  quietMs?: number;
  now?: () => number;
}

export class Acknowledgements implements AcknowledgementsPending {
  private pending = 0;
  /** When the pending count last fell below the threshold; undefined while at or above it. */
  private belowSince: number | undefined = -Infinity;
  private readonly waiting = new Set<() => void>();
  private readonly threshold: number;
  private readonly quietMs: number;
  private readonly now: () => number;
  private check: NodeJS.Timeout | undefined;
  /** Told each time acknowledgements start or stop queueing (a worker on another thread follows them so). */
  private readonly listeners = new Set<(queueing: boolean) => void>();
  /** What the listeners were last told. */
  private told = false;

  constructor(options: AcknowledgementsOptions = {}) {
    this.threshold = Math.max(1, options.queueing ?? 16);
    this.quietMs = Math.max(0, options.quietMs ?? 20);
    this.now = options.now ?? (() => performance.now());
  }

  /** Callers waiting in `whenQuiet` (the worker, deferring its next batch). */
  get deferring(): number {
    return this.waiting.size;
  }

  /** A webhook request's whole body has arrived: its acknowledgement (signature, parse, insert) is under way. */
  received(): void {
    this.pending++;
    if (this.pending >= this.threshold) {
      this.belowSince = undefined;
      this.tell(true);
    }
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
    return this.belowSince === undefined || this.now() - this.belowSince < this.quietMs;
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
   * Releases the waiting workers, and tells the listeners, once the queue has stayed quiet for `quietMs` (checked
   * again if it came back).
   */
  private scheduleCheck(): void {
    if (this.check || (this.waiting.size === 0 && !this.told) || this.belowSince === undefined) return;
    const due = Math.max(0, this.belowSince + this.quietMs - this.now());
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
