/**
 * Runs tasks one after another per key, and tasks of different keys concurrently. The command path keys it by
 * stream: commands on one stream within a process wait for each other instead of racing to the same expected
 * revision (where all but one would conflict, re-read and retry). A key's entry is removed as soon as its last
 * task settles, so memory holds only the keys that have work in flight.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `task` after every task queued before it under `key`; its result or error is the caller's. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    const result = previous ? previous.then(task) : task();
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Keys with a task queued or running (for tests and metrics). */
  get activeKeys(): number {
    return this.#tails.size;
  }
}
