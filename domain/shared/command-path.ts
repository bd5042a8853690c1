/**
 * What one process shares between all its commands: the per-stream queue, the recently decided states, the
 * snapshot store, and the retry policy for conflicts with other processes. Built once by the composition root.
 */
import type { SnapshotStore } from '../ports/snapshot-store.ts';
import { KeyedQueue } from './keyed-queue.ts';

/** Conflicts come only from other processes (the queue serialises this one's), so a few backed-off attempts suffice. */
export interface RetryPolicy {
  /** Attempts in all, the first included; then `StreamContended`. */
  attempts: number;
  /** The n-th retry waits a uniformly random time below min(maxDelayMs, baseDelayMs · 2^(n-1)) ("full jitter"). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A number in [0, 1); `Math.random` in production. */
  random(): number;
  sleep(ms: number): Promise<void>;
}

export interface CommandPathOptions {
  snapshots: SnapshotStore;
  retry: RetryPolicy;
  /** A stream gets a new snapshot once it has grown this many events past its last one. */
  snapshotEvery?: number;
  /** Recently decided states kept in memory: at most this many streams... */
  recentStreams?: number;
  /**
   * ...holding together at most this many events' worth of state (a state's weight is its stream's length; a
   * wallet's state takes about 125 bytes per credit or redemption, so the default bounds it near 125 MB).
   */
  recentEvents?: number;
  /** Told when a snapshot could not be written (the command itself has succeeded; the snapshot is only a cache). */
  onSnapshotError?(stream: string, error: unknown): void;
}

export interface CommandPath {
  queue: KeyedQueue;
  snapshots: SnapshotStore;
  recent: RecentStates;
  retry: RetryPolicy;
  snapshotEvery: number;
  onSnapshotError(stream: string, error: unknown): void;
}

export const DEFAULT_SNAPSHOT_EVERY = 100;

export function createCommandPath(options: CommandPathOptions): CommandPath {
  return {
    queue: new KeyedQueue(),
    snapshots: options.snapshots,
    recent: new RecentStates(options.recentStreams ?? 10_000, options.recentEvents ?? 1_000_000),
    retry: options.retry,
    snapshotEvery: options.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY,
    onSnapshotError: options.onSnapshotError ?? (() => undefined),
  };
}

/** A stream's folded state at a revision, and the revision of its stored snapshot (-1: none). */
export interface FoldedStream<State> {
  state: State;
  revision: number | undefined;
  snapshotRevision: number;
}

interface RecentEntry {
  /** The `evolve` that folded the state: another decider's state is never reused. */
  evolve: unknown;
  folded: FoldedStream<unknown>;
  weight: number;
}

/**
 * Least-recently-used states by stream. A state held here may be behind the stream (another process wrote
 * since); the reader folds the events after its revision, so it is never used stale.
 */
export class RecentStates {
  readonly #entries = new Map<string, RecentEntry>();
  #weight = 0;

  constructor(
    readonly maxStreams: number,
    readonly maxEvents: number,
  ) {}

  get<State>(stream: string, evolve: unknown): FoldedStream<State> | undefined {
    const entry = this.#entries.get(stream);
    if (!entry || entry.evolve !== evolve) return undefined;
    this.#entries.delete(stream);
    this.#entries.set(stream, entry);
    return entry.folded as FoldedStream<State>;
  }

  set<State>(stream: string, evolve: unknown, folded: FoldedStream<State>): void {
    this.delete(stream);
    const weight = (folded.revision ?? -1) + 1;
    if (weight > this.maxEvents) return;
    this.#entries.set(stream, { evolve, folded, weight });
    this.#weight += weight;
    for (const [oldest, entry] of this.#entries) {
      if (this.#entries.size <= this.maxStreams && this.#weight <= this.maxEvents) break;
      this.#entries.delete(oldest);
      this.#weight -= entry.weight;
    }
  }

  delete(stream: string): void {
    const entry = this.#entries.get(stream);
    if (!entry) return;
    this.#entries.delete(stream);
    this.#weight -= entry.weight;
  }

  /** Forgets everything (tests: a cold process). */
  clear(): void {
    this.#entries.clear();
    this.#weight = 0;
  }

  get size(): number {
    return this.#entries.size;
  }
}
