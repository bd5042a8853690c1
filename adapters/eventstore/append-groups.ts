/**
 * Group commit of concurrent appends (the PostgreSQL event store's one-event appends, postgres.ts).
 *
 * Appends issued in one turn of the event loop are written together, by one statement (`writeGroup`: one
 * transaction, one WAL flush, one round trip), up to `maxAppends`; one append alone by itself (`writeOne`). While
 * `statementsInFlight` statements are under way, the appends arriving wait, and the next free statement writes them
 * together. Each caller is answered only once the statement holding its event has committed, with its own result.
 * Nothing waits on a timer: statements start at the end of the turn (`setImmediate`), so that the callers one
 * statement answers, which append again at once, go together too (starting at once, the first of them would take a
 * free statement alone: measured in bench/store.ts, about half the appends per statement at concurrency 16).
 *
 * - One stream at a time: an append waits while an earlier append to its stream is being written (in a group or
 *   alone), and one group never names a stream twice, so appends to one stream are written in the order they came.
 * - One caller's failure is its own. A member the group's statement does not write (its place is taken, its
 *   expectation does not hold) is settled alone afterwards (`settle`: a conflict, or a retry answered with the
 *   original result), while the others are written. A group statement that fails writes nothing, and its members
 *   are written again one by one, so an error answers only the append it belongs to.
 */
export interface AppendGroupsOptions<M extends { stream: string }, R> {
  /** Statements under way at once (each holds one connection); the appends arriving beyond them are grouped. */
  statementsInFlight: number;
  /** Most appends written by one statement. */
  maxAppends: number;
  /** Writes one append alone. */
  writeOne(member: M): Promise<R>;
  /**
   * Writes several appends (distinct streams) in one statement; answers each one's result in order, `undefined` for
   * those it did not write.
   */
  writeGroup(members: readonly M[]): Promise<(R | undefined)[]>;
  /** Answers an append that its group's statement did not write (after that statement committed). */
  settle(member: M): Promise<R>;
}

interface Waiting<M, R> {
  member: M;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export class AppendGroups<M extends { stream: string }, R> {
  private readonly queue: Waiting<M, R>[] = [];
  /** Streams with an append being written. */
  private readonly busy = new Set<string>();
  private inFlight = 0;
  private pumpScheduled = false;
  private groups = 0;
  private grouped = 0;

  constructor(private readonly options: AppendGroupsOptions<M, R>) {
    if (!(options.statementsInFlight >= 1 && options.maxAppends >= 1)) throw new RangeError('AppendGroups needs at least one statement in flight and one append per statement');
  }

  /** Writes `member` alone or with the appends waiting beside it; answers once its statement has committed. */
  append(member: M): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ member, resolve, reject });
      this.schedule();
    });
  }

  /** Statements of more than one append so far, and the appends they wrote (for diagnostics). */
  stats(): { groups: number; appendsInGroups: number } {
    return { groups: this.groups, appendsInGroups: this.grouped };
  }

  /** The oldest waiting appends whose streams are free, one per stream, up to `maxAppends`. */
  private take(): Waiting<M, R>[] {
    const batch: Waiting<M, R>[] = [];
    const named = new Set<string>();
    for (let i = 0; i < this.queue.length && batch.length < this.options.maxAppends; ) {
      const waiting = this.queue[i]!;
      const stream = waiting.member.stream;
      // An append behind an earlier one to its stream keeps its place: the earlier one is written first.
      if (this.busy.has(stream) || named.has(stream)) {
        named.add(stream);
        i++;
        continue;
      }
      named.add(stream);
      batch.push(waiting);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private pump(): void {
    while (this.inFlight < this.options.statementsInFlight && this.queue.length) {
      const batch = this.take();
      if (!batch.length) return;
      this.inFlight++;
      for (const waiting of batch) this.busy.add(waiting.member.stream);
      void this.write(batch);
    }
  }

  /** Writes a batch, then frees its slot and streams before answering, so that what waits starts at once. */
  private async write(batch: Waiting<M, R>[]): Promise<void> {
    let answer: () => void;
    if (batch.length === 1) {
      const [only] = batch as [Waiting<M, R>];
      answer = await this.options.writeOne(only.member).then(
        (result) => () => only.resolve(result),
        (error: unknown) => () => only.reject(error),
      );
    } else {
      this.groups++;
      this.grouped += batch.length;
      let each: PromiseSettledResult<R>[];
      try {
        const written = await this.options.writeGroup(batch.map((w) => w.member));
        each = await Promise.allSettled(
          batch.map((w, i) => {
            const result = written[i];
            return result === undefined ? this.options.settle(w.member) : Promise.resolve(result);
          }),
        );
      } catch {
        // The statement wrote nothing: each append again alone, so that the error reaches only its own caller.
        each = await Promise.allSettled(batch.map((w) => this.options.writeOne(w.member)));
      }
      answer = () => each.forEach((r, i) => (r.status === 'fulfilled' ? batch[i]!.resolve(r.value) : batch[i]!.reject(r.reason)));
    }
    for (const waiting of batch) this.busy.delete(waiting.member.stream);
    this.inFlight--;
    answer();
    this.schedule();
  }

  /** Starts what can start at the end of this turn of the event loop, once every append issued in it is queued. */
  private schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }
}
