/**
 * The live tail of the global feed, for `GET /api/v1/admin/events/stream`: one subscription to the store, shared by
 * every connected client (an rxjs Subject fans it out in process), started at the head when the first client joins.
 * A client that resumes catches up from the store itself (`readAll`) up to the position it joined at, so neither
 * path repeats or skips an event. Slow clients are the route's concern: the tail never waits for a subscriber. When
 * the last member leaves, the subscription stops after `idleMs` (a reloaded page rejoins the running one).
 */
import { concat, concatMap, defer, EMPTY, finalize, from, map, Observable, of, Subject } from 'rxjs';
import type { Logger } from 'pino';
import type { EventStore, Position, RecordedEvent, Subscription } from '../domain/ports/event-store.ts';

/** What a member of the tail receives: first where it joined, then every event delivered after that. */
export type TailItem = { kind: 'joined'; position: Position | undefined } | { kind: 'event'; event: RecordedEvent };

/** The tail stopped (the store failed, or shutdown): members are disconnected and may resume. */
export class TailEnded extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TailEnded';
  }
}

const CATCH_UP_PAGE = 500;

/** Schedules and cancels the idle stop. */
export interface IdleTimers {
  set(run: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: IdleTimers = {
  set: (run, ms) => setTimeout(run, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};

/**
 * A member's events from its items: on `joined`, those it missed after `resumeFrom` up to where it joined (`between`,
 * read from the store; live events arriving meanwhile wait in concatMap's queue), then the live ones after
 * `resumeFrom`. A live event at or before `resumeFrom` is dropped: with several instances, a client resuming on one
 * whose tail lags behind the one it read from joins before its resume position, and would get those events again.
 */
export function eventsAfter(
  items: Observable<TailItem>,
  resumeFrom: Position | undefined,
  between: (after: Position | undefined, to: Position | undefined) => Observable<RecordedEvent>,
  isAfter: (a: Position, b: Position) => boolean,
): Observable<RecordedEvent> {
  return items.pipe(
    concatMap((item) => {
      if (item.kind === 'joined') return between(resumeFrom, item.position);
      return !resumeFrom || isAfter(item.event.position, resumeFrom) ? of(item.event) : EMPTY;
    }),
  );
}

export class LiveTail {
  private feed: Subject<RecordedEvent> | undefined;
  private subscription: Subscription | undefined;
  private started: Promise<Subject<RecordedEvent>> | undefined;
  private position: Position | undefined;

  private idleTimer: unknown;

  constructor(
    private readonly store: EventStore,
    private readonly log: Logger,
    private readonly idleMs = 30_000,
    /** The idle stop's timer (a test fires it by hand). */
    private readonly timers: IdleTimers = realTimers,
  ) {}

  /** Whether the tail is reading the store now (a member is watching, or the last one left under `idleMs` ago). */
  get running(): boolean {
    return this.feed !== undefined;
  }

  /**
   * Starts the tail if it is not running, then answers the member's items: `joined` (the last position delivered
   * when it subscribed: everything after it follows), then each event. Errors with `TailEnded` when the tail stops.
   */
  async join(): Promise<Observable<TailItem>> {
    // A start that failed (the store unreachable a moment) is forgotten: the next join tries again.
    const feed = await (this.started ??= this.start().catch((error: unknown) => {
      this.started = undefined;
      throw error;
    }));
    // Read and subscribe in one synchronous step: no event can fall between `joined` and the first `event`.
    return defer(() => {
      this.timers.clear(this.idleTimer);
      return concat(of<TailItem>({ kind: 'joined', position: this.position }), feed.pipe(map((event): TailItem => ({ kind: 'event', event }))));
    }).pipe(finalize(() => this.left(feed)));
  }

  /** A member left: with no one left watching, the tail stops reading the store after `idleMs`. */
  private left(feed: Subject<RecordedEvent>): void {
    if (this.feed !== feed) return;
    this.timers.clear(this.idleTimer);
    this.idleTimer = this.timers.set(() => {
      if (this.feed !== feed || feed.observed) return;
      const subscription = this.subscription;
      this.end(feed, 'no one is watching');
      void subscription?.stop().catch((error: unknown) => this.log.warn({ err: error }, 'event tail: stopping the idle subscription failed'));
    }, this.idleMs);
  }

  /** Whether `a` comes after `b` in the feed. */
  isAfter(a: Position, b: Position): boolean {
    return this.store.isAfter(a, b);
  }

  /**
   * The events after `after` up to `to` (inclusive), read from the store in pages: what a resuming member missed
   * before it joined. Empty when there is nothing between them.
   */
  between(after: Position | undefined, to: Position | undefined): Observable<RecordedEvent> {
    if (!after || !to || !this.store.isAfter(to, after)) return EMPTY;
    const store = this.store;
    return from(
      (async function* () {
        let last = after;
        for (;;) {
          const page = await store.readAll({ from: last, to, limit: CATCH_UP_PAGE });
          const fresh = page.filter((event) => store.isAfter(event.position, last));
          yield* fresh;
          if (fresh.length === 0) return;
          last = fresh.at(-1)!.position;
          if (!store.isAfter(to, last)) return;
        }
      })(),
    );
  }

  private async start(): Promise<Subject<RecordedEvent>> {
    this.position = await this.store.headPosition();
    const subscription = this.store.subscribeToAll(this.position ? { from: this.position } : {});
    const feed = new Subject<RecordedEvent>();
    this.feed = feed;
    this.subscription = subscription;
    void (async () => {
      try {
        for await (const item of subscription) {
          if (item.kind !== 'event') continue;
          this.position = item.event.position;
          feed.next(item.event);
        }
        this.end(feed, 'the event tail stopped');
      } catch (error) {
        this.log.warn({ err: error }, 'event tail: the store subscription failed; clients are disconnected and may resume');
        this.end(feed, 'the event store subscription failed');
      }
    })();
    return feed;
  }

  /** Disconnects everyone; the next join starts a new subscription at the head. */
  private end(feed: Subject<RecordedEvent>, reason: string): void {
    if (this.feed !== feed) return;
    this.feed = undefined;
    this.started = undefined;
    this.subscription = undefined;
    feed.error(new TailEnded(reason));
  }

  async stop(): Promise<void> {
    this.timers.clear(this.idleTimer);
    const subscription = this.subscription;
    if (this.feed) this.end(this.feed, 'shutting down');
    await subscription?.stop();
  }
}
