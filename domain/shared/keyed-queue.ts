/**
 * Runs tasks one after another per key, and tasks of different keys concurrently. The command path keys it by
 * stream: commands on one stream within a process wait for each other instead of racing to the same expected
 * revision (where all but one would conflict, re-read and retry). A key's entry is removed as soon as its last
 * task settles, so memory holds only the keys that have work in flight.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #waitingReads = new Map<string, Promise<unknown>>();

  /** Runs `task` after every task queued before it under `key`; its result or error is the caller's. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    const result = previous ? previous.then(task) : task();
    // Registered before the caller can await `result`, so the key is gone by the time the caller resumes.
    const settle = () => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    const tail: Promise<void> = result.then(settle, settle);
    this.#tails.set(key, tail);
    return result;
  }

  /**
   * Like `run`, for reads: a caller arriving while an earlier read of the key is still waiting for its turn shares
   * that read instead of queueing its own. A read that has started is never shared with later callers, so every
   * caller sees everything written before it called (read-your-writes). A hundred requests on one stream at once
   * then cost two reads, not a hundred in a row.
   */
  shared<T>(key: string, read: () => Promise<T>): Promise<T> {
    const waiting = this.#waitingReads.get(key);
    if (waiting) return waiting as Promise<T>;
    let started = false;
    let promise: Promise<T> | undefined;
    promise = this.run(key, () => {
      started = true;
      if (promise && this.#waitingReads.get(key) === promise) this.#waitingReads.delete(key);
      return read();
    });
    if (!started) this.#waitingReads.set(key, promise);
    return promise;
  }

  /** Keys with a task queued or running (for tests and metrics). */
  get activeKeys(): number {
    return this.#tails.size;
  }
}
