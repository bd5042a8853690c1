/**
 * The caller without a round trip: every request needs its caller's role, status and tenant, and used to read
 * the caller's `user-<id>` stream for them. This view keeps the users it has served in memory, each with the
 * revision of its stream it reflects, and keeps them current from the event subscription (user streams only).
 *
 * - A caller it has not seen (registered through another instance, or evicted) is read from the stream and kept.
 * - An event of a kept user is applied when it is the next revision; a gap (an event missed) drops the user,
 *   so the next request reads the stream again. An event arriving while that user's stream is being read marks
 *   the read stale: its result answers that request but is not kept.
 * - Appends through this process (`learnOnAppend`) bring the user up to date before the append returns, so a
 *   suspension answered here is in force for this instance's very next request: the appended events are applied
 *   when they follow the revision kept (or start the stream: a registration), else the user is dropped (and on a
 *   failed append). A user who just registered here is so served from memory from the first request on, without
 *   a stream read at first sight (bench/reads.ts: one per consumer, 1,000, in its warm-up and first run). Another
 *   instance learns it from the feed: within the feed's latency (a NOTIFY away on PostgreSQL, the poll interval if
 *   one is lost).
 * - An event of the feed the view cannot decode drops its user only (reported through `onError`).
 * - Until the subscription is live, and after it fails, nothing is kept: every load reads the stream.
 */
import type { AppendResult, EventStore, NewEvent, RecordedEvent } from '../domain/ports/event-store.ts';
import { loadState } from '../domain/shared/command-handler.ts';
import { userDecider } from '../domain/users/decider.ts';
import { evolveUser, initialUserState, userEvents, userStream, type UserState } from '../domain/users/events.ts';

const PREFIX = userStream('');
const userIdOf = (stream: string) => (stream.startsWith(PREFIX) ? stream.slice(PREFIX.length) : undefined);

export interface CallerViewOptions {
  /** Users kept at most; past it, the longest kept is dropped (default 100,000). */
  maxUsers?: number;
  /** After the subscription fails: wait this long before subscribing again (ms, default 1,000). */
  retryMs?: number;
  /** The subscription ended, or one user's event could not be applied; `consequence` says what the view did about it. */
  onError?: (error: unknown, consequence: string) => void;
}

export interface CallerView {
  /** The user's current state: from memory when kept, else read from its stream. */
  load(userId: string): Promise<UserState>;
  /** Drops the user (an append to its stream by this process failed, or may have written anything). */
  forget(userId: string): void;
  /**
   * This process appended `events` to the user's stream (`result`: the append's): they are applied to the user kept
   * when they follow its revision, or kept as the whole stream when they start it; otherwise the user is dropped.
   */
  appended(userId: string, events: readonly NewEvent[], result: AppendResult): void;
  /** Users kept, and loads answered from memory / from the stream since start (for tests and benchmarks). */
  stats(): { kept: number; fromMemory: number; fromStream: number };
  start(): void;
  stop(): Promise<void>;
}

interface Kept {
  state: UserState;
  revision: number;
}

// Over 80 lines because it is a factory: the cache, its feed subscription and its fallback share one state.
export function callerView(store: EventStore, options: CallerViewOptions = {}): CallerView {
  const maxUsers = options.maxUsers ?? 100_000;
  const retryMs = options.retryMs ?? 1_000;
  const kept = new Map<string, Kept>();
  /** Stream reads in flight per user, and whether an event of that user arrived meanwhile. */
  const reading = new Map<string, { count: number; stale: boolean }>();
  let live = false;
  let stopped = false;
  let subscription: ReturnType<EventStore['subscribeToAll']> | undefined;
  let running: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let fromMemory = 0;
  let fromStream = 0;

  function touched(userId: string): void {
    const r = reading.get(userId);
    if (r) r.stale = true;
  }

  function apply(event: RecordedEvent): void {
    const userId = userIdOf(event.stream);
    if (userId === undefined) return;
    touched(userId);
    const entry = kept.get(userId);
    if (!entry || event.revision <= entry.revision) return;
    if (event.revision !== entry.revision + 1) {
      kept.delete(userId);
      return;
    }
    try {
      kept.set(userId, { state: evolveUser(entry.state, userEvents.decode(event)), revision: event.revision });
    } catch (error) {
      // One event the view cannot decode concerns one user: that user is read from its stream (which reports it
      // loudly to its caller); the subscription, and every other user kept, go on.
      kept.delete(userId);
      options.onError?.(error, `user ${userId} dropped: read from the stream on its next request`);
    }
  }

  async function follow(): Promise<void> {
    // Live from the head: users are learnt on first use, so the history before it is not needed.
    const head = await store.headPosition();
    if (stopped) return;
    subscription = store.subscribeToAll({ ...(head ? { from: head } : {}), filter: { streamPrefixes: [PREFIX], eventTypes: userEvents.types } });
    for await (const item of subscription) {
      if (item.kind === 'caught-up') live = true;
      else apply(item.event);
    }
  }

  function run(): void {
    running = follow()
      .catch((error: unknown) => options.onError?.(error, 'subscription ended: every caller is read from the stream until it is back'))
      .finally(() => {
        // Whatever ended the subscription, what is kept can no longer be trusted to be current.
        live = false;
        kept.clear();
        subscription = undefined;
        if (!stopped) retry = setTimeout(run, retryMs);
      });
  }

  async function readStream(userId: string): Promise<UserState> {
    fromStream++;
    const r = reading.get(userId) ?? { count: 0, stale: false };
    r.count++;
    reading.set(userId, r);
    const wasLive = live;
    try {
      const { state, revision } = await loadState(store, userStream(userId), userDecider);
      if (wasLive && live && !r.stale && revision !== undefined && state.status !== 'unregistered') {
        if (kept.size >= maxUsers) kept.delete(kept.keys().next().value!);
        kept.set(userId, { state, revision });
      }
      return state;
    } finally {
      if (--r.count === 0) reading.delete(userId);
    }
  }

  return {
    async load(userId) {
      const entry = live ? kept.get(userId) : undefined;
      if (entry) {
        fromMemory++;
        return entry.state;
      }
      return readStream(userId);
    },
    forget(userId) {
      kept.delete(userId);
      touched(userId);
    },
    appended(userId, events, result) {
      // A stream read under way may have been answered before the append: it must not be kept over this.
      touched(userId);
      const first = result.nextExpectedRevision - events.length + 1;
      const entry = kept.get(userId) ?? (first === 0 ? { state: initialUserState, revision: -1 } : undefined);
      // Only while live (as a read's result), only what follows the revision kept, only the user events the feed would bring.
      if (!live || !entry || entry.revision < first - 1 || !events.every((e) => userEvents.handles(e.type))) {
        kept.delete(userId);
        return;
      }
      if (entry.revision >= result.nextExpectedRevision) return; // the feed brought them first
      let state = entry.state;
      for (let revision = entry.revision + 1; revision <= result.nextExpectedRevision; revision++) {
        const event = events[revision - first]!;
        // Decoded as the feed would bring it (the codec stamped its version): the time it was recorded is not known here, and not read.
        state = evolveUser(state, userEvents.decode({ ...event, metadata: event.metadata ?? {}, stream: userStream(userId), revision, position: result.position, recordedAt: new Date(0) }));
      }
      if (state.status === 'unregistered') {
        kept.delete(userId);
        return;
      }
      if (!kept.has(userId) && kept.size >= maxUsers) kept.delete(kept.keys().next().value!);
      kept.set(userId, { state, revision: result.nextExpectedRevision });
    },
    stats: () => ({ kept: kept.size, fromMemory, fromStream }),
    start() {
      stopped = false;
      if (!running) run();
    },
    async stop() {
      stopped = true;
      clearTimeout(retry);
      live = false;
      kept.clear();
      await subscription?.stop();
      await running;
      running = undefined;
    },
  };
}

/**
 * `store`, bringing `view` up to date with each append to a user stream before the append returns (see `callerView`):
 * the user is learnt from the events written, or dropped (a failed append, or one the view cannot follow).
 */
export function learnOnAppend(store: EventStore, view: Pick<CallerView, 'forget' | 'appended'>): EventStore {
  const failed = (stream: string) => {
    const userId = userIdOf(stream);
    if (userId !== undefined) view.forget(userId);
  };
  const written = (stream: string, events: readonly NewEvent[], result: AppendResult) => {
    const userId = userIdOf(stream);
    if (userId === undefined) return;
    try {
      view.appended(userId, events, result);
    } catch {
      // The append succeeded: what the view cannot apply (an event it does not decode) is read from the stream
      // next time, and never turns the caller's success into an error.
      view.forget(userId);
    }
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'append') {
        return async (...args: Parameters<EventStore['append']>) => {
          try {
            const result = await target.append(...args);
            written(args[0], args[1], result);
            return result;
          } catch (error) {
            failed(args[0]);
            throw error;
          }
        };
      }
      if (prop === 'appendMany') {
        return async (...args: Parameters<EventStore['appendMany']>) => {
          try {
            const result = await target.appendMany(...args);
            args[0].forEach((request, i) => {
              const appended = result.streams[i];
              if (appended) written(request.stream, request.events, appended);
              else failed(request.stream);
            });
            return result;
          } catch (error) {
            for (const request of args[0]) failed(request.stream);
            throw error;
          }
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
