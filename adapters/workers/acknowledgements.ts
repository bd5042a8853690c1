/**
 * Webhooks received and not yet answered, so the inbox worker can give way to them. Acknowledging and processing
 * share one Node thread: while a burst comes in, every millisecond a batch decision holds the thread is a
 * millisecond each waiting acknowledgement waits too. The worker leases its next batch once no acknowledgement
 * is pending, or once it has deferred for its bound, whichever comes first: acknowledgements go first, the
 * backlog drains at full speed as soon as they are answered, and a steady stream of them cannot starve it.
 */
export interface AcknowledgementsPending {
  /** Webhooks received whose answer has not been written yet. */
  readonly count: number;
  /** Resolves true once none is pending, or false after `maxWaitMs` with some still pending. */
  whenNone(maxWaitMs: number): Promise<boolean>;
}

export class Acknowledgements implements AcknowledgementsPending {
  private pending = 0;
  private readonly waiting = new Set<() => void>();
  /** When the last answer was written (ms since the epoch; 0: none yet). */
  lastAnsweredAt = 0;

  get count(): number {
    return this.pending;
  }

  /** Callers waiting in `whenNone` (the worker, deferring its next batch). */
  get deferring(): number {
    return this.waiting.size;
  }

  /** A webhook request arrived (before its body is read). */
  received(): void {
    this.pending++;
  }

  /** Its answer, whatever it is, is being written. */
  answered(): void {
    this.pending = Math.max(0, this.pending - 1);
    this.lastAnsweredAt = Date.now();
    if (this.pending === 0) for (const release of [...this.waiting]) release();
  }

  whenNone(maxWaitMs: number): Promise<boolean> {
    if (this.pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.waiting.delete(release);
        resolve(this.pending === 0);
      };
      const timer = setTimeout(release, maxWaitMs);
      this.waiting.add(release);
    });
  }
}

/** What the webhook worker tells the load about its leases and batches (adapters/workers/webhook-processor.ts). */
export interface WorkerLoad {
  /** A lease came back: `full` when it held as many rows as asked for (more are likely due). */
  leased(full: boolean): void;
  batchStarted(): void;
  batchEnded(): void;
}

/**
 * Whether ingestion is under way in this process: webhooks waiting for their answer, batches being decided, or a
 * backlog (the worker's last lease came back full). Background read models give way while it is busy
 * (`Projection.priority`, the runner's `IngestionPressure`): the audit trail and the program summary wait, up to a
 * bound, so that a burst's acknowledgements, decisions and wallet credits have the CPU, and catch up in larger batches.
 */
export class IngestionLoad implements WorkerLoad {
  readonly acknowledgements = new Acknowledgements();
  private batches = 0;
  private backlog = false;
  private lastActiveAt = 0;

  /**
   * `calmAfterMs`: how long ingestion must have had nothing under way to count as calm. Between two webhooks of a
   * burst there is a moment with none pending; a background batch started there would take the CPU the next ones need.
   */
  constructor(private readonly calmAfterMs = 100) {}

  get busy(): boolean {
    const active = this.acknowledgements.count > 0 || this.batches > 0 || this.backlog;
    const now = Date.now();
    if (active) this.lastActiveAt = now;
    return active || now - Math.max(this.lastActiveAt, this.acknowledgements.lastAnsweredAt) < this.calmAfterMs;
  }

  leased(full: boolean): void {
    this.backlog = full;
  }

  batchStarted(): void {
    this.batches++;
  }

  batchEnded(): void {
    this.batches = Math.max(0, this.batches - 1);
    this.lastActiveAt = Date.now();
  }
}
