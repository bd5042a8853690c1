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
