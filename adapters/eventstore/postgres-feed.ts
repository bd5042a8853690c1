/**
 * The PostgreSQL feed as the subscriptions of one event store (one process) read it: **one reader** scans the
 * global feed once, a page at a time, and hands each attached subscription the events its filter selects, each
 * at its own pace. Before, every subscription scanned every event row for itself: ten projections and reactors
 * read each event ten times, each with its own wake-up and its own look at the feed's horizon.
 *
 * - **Gap-safe as before**: the reader's pages come from the same `scan` as a subscription's own (the feed never
 *   passes an append still in progress, see postgres.ts), so what the reader hands out is final.
 * - **Catch-up alone, then join**: a subscription first reads on its own from where it starts (its checkpoint,
 *   `start`, a rebuild from 0), in its own page size, until a page comes back short (it has reached the head),
 *   and only then joins the reader. Joining ahead of the reader, it skips what it has already handed out; behind
 *   it (the reader moved on meanwhile), it first reads the few events in between (`gap`, all final: the reader
 *   passed them), then takes what the reader hands it.
 * - **Nobody waits for the slowest**: the reader reads on while one attached subscription has room (fewer than
 *   ROOM events waiting). A subscription that lets more than QUEUE_LIMIT events pile up is let go: it hands out
 *   what it was given, reads on by itself from there, and joins again once it has caught up. A subscription that
 *   stops or fails leaves; the reader stops when the last one leaves, and starts again, where the next one is,
 *   when one joins.
 * Each subscription keeps its own position: the events it handed out, in order, none twice, none skipped.
 */
import { EventStoreUnavailable, type EventFilter, type Position, type RecordedEvent, type SubscribeOptions, type Subscription, type SubscriptionItem } from '../../domain/ports/event-store.ts';
import { isTransientPgError } from '../postgres/errors.ts';

/**
 * A scan that failed for a while only (the server restarting, no pool connection free within its timeout): the
 * reader, or the subscription reading by itself, looks again after the poll interval. One reader feeds every
 * subscription, so a busy pool must not fail them all at once.
 */
const isTransient = (error: unknown) => error instanceof EventStoreUnavailable || isTransientPgError(error);

/** A place in the feed (the ordering key and sequence of an event). */
export interface FeedCursor {
  tx: bigint;
  seq: bigint;
}

/** One scan of the feed: the events selected, and how far the scan went. */
export interface ScanPage {
  events: RecordedEvent[];
  /** Events were visible beyond the safe bound: a transaction still in progress holds them back. */
  heldBack: boolean;
  /** Rows scanned (selected or not), up to `scannedTo`. */
  scanned: number;
  scannedTo: FeedCursor | undefined;
}

/** What the shared feed needs of the store (postgres.ts). */
export interface FeedSource {
  /**
   * The next `pageSize` events after `after`, whatever their type, those `filter` selects with their data. With
   * `upTo`, only events up to it, all known to be final (a reader has passed them): no safe bound applies.
   */
  scan(after: FeedCursor | undefined, filter: EventFilter | undefined, pageSize: number, upTo?: FeedCursor): Promise<ScanPage>;
  /** Sleeps until an append (local or NOTIFY) wakes it, `ms` pass, or `expose`'s waker is called. */
  sleep(ms: number, expose: (wake: () => void) => void): Promise<void>;
  /** How many wake-ups there have been (appends here, NOTIFY from elsewhere): one during a scan calls for another. */
  wakes(): number;
  /** Resolves once appends of other processes wake sleepers (LISTEN), or the poll is all there is. */
  listening(): Promise<void>;
  isClosed(): boolean;
  readonly pollIntervalMs: number;
  encode(cursor: FeedCursor): Position;
  decode(position: Position): FeedCursor;
}

/** Rows per page of the shared reader. */
const PAGE = 1000;
/** The reader reads on while one attached subscription has fewer events than this waiting. */
const ROOM = PAGE;
/** A subscription with more than this many events waiting is let go, to read on by itself. */
const QUEUE_LIMIT = 4 * PAGE;
/** How soon a page held back by an append in progress is read again. */
const HELD_BACK_MS = 5;

/** Orders cursors; `undefined` (before the first event) comes first. */
function compare(a: FeedCursor | undefined, b: FeedCursor | undefined): number {
  if (!a || !b) return a ? 1 : b ? -1 : 0;
  if (a.tx !== b.tx) return a.tx < b.tx ? -1 : 1;
  return a.seq === b.seq ? 0 : a.seq < b.seq ? -1 : 1;
}

/** The filter as a predicate (same meaning as its SQL in postgres.ts: types, and stream name prefixes); none: all. */
function matcherOf(filter: EventFilter | undefined): ((event: RecordedEvent) => boolean) | undefined {
  const types = filter?.eventTypes?.length ? new Set(filter.eventTypes) : undefined;
  const prefixes = filter?.streamPrefixes?.length ? filter.streamPrefixes : undefined;
  if (!types && !prefixes) return undefined;
  return (event) => (!types || types.has(event.type)) && (!prefixes || prefixes.some((prefix) => event.stream.startsWith(prefix)));
}

/** A subscription, as the reader sees it while it is attached. */
interface Member {
  readonly matches: ((event: RecordedEvent) => boolean) | undefined;
  /** Handed over by the reader, not yet taken by the subscription. */
  queue: RecordedEvent[];
  /** Everything up to here is in `queue` or was handed out. */
  queuedTo: FeedCursor | undefined;
  /** Joined ahead of the reader: events up to here were handed out already. */
  skipThrough: FeedCursor | undefined;
  /** Joined behind the reader: the events in (after, upTo] are read by the subscription itself, before `queue`. */
  gap: { after: FeedCursor | undefined; upTo: FeedCursor } | undefined;
  /** The reader found nothing more to read (nothing held back) since the subscription joined. */
  atHead: boolean;
  /** The reader let it go (it fell behind) or failed (`error`): it reads on by itself from `queuedTo`. */
  released: boolean;
  error: unknown;
  /** Wakes the subscription when it waits for the reader. */
  wake: (() => void) | undefined;
  run: ReaderRun | undefined;
}

/** One run of the reader: from where its first subscription joined, until its last one leaves. */
class ReaderRun {
  readonly members = new Set<Member>();
  stopped = false;
  private wakeReader: (() => void) | undefined;
  readonly done: Promise<void>;

  constructor(
    private readonly source: FeedSource,
    public cursor: FeedCursor | undefined,
    first: Member,
    private readonly stats: SharedFeedStats,
  ) {
    this.members.add(first);
    this.done = this.read();
  }

  wake(): void {
    this.wakeReader?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.done;
  }

  private hasRoom(): boolean {
    for (const member of this.members) if (member.queue.length < ROOM) return true;
    return false;
  }

  private scan(): Promise<ScanPage> {
    const page = this.source.scan(this.cursor, undefined, PAGE);
    // Its failure is handled where it is awaited; a run that stops awaits it without looking.
    page.catch(() => undefined);
    return page;
  }

  private async read(): Promise<void> {
    let ahead: Promise<ScanPage> | undefined;
    try {
      while (!this.stopped && this.members.size > 0 && !this.source.isClosed()) {
        // Every member has a full queue: wait until one takes its events (or leaves, or a new one joins, or the store
        // closes: the store's own wake-ups end this wait too).
        if (!ahead && !this.hasRoom()) {
          await this.source.sleep(this.source.pollIntervalMs, (wake) => (this.wakeReader = wake));
          continue;
        }
        const readAhead = ahead !== undefined;
        const wakesBefore = this.source.wakes();
        let page: ScanPage;
        try {
          page = await (ahead ?? this.scan());
        } catch (error) {
          ahead = undefined;
          if (!isTransient(error)) {
            this.fail(error);
            return;
          }
          if (this.stopped) break;
          await this.source.sleep(this.source.pollIntervalMs, (wake) => (this.wakeReader = wake));
          continue;
        }
        ahead = undefined;
        this.cursor = page.scannedTo ?? this.cursor;
        this.stats.pages++;
        this.stats.rows += page.scanned;
        const full = page.scanned === PAGE;
        // A full page: the next is read while this one is handed out (one page ahead, no more).
        if (full) ahead = this.scan();
        const atHead = !full && !readAhead && !page.heldBack;
        for (const member of [...this.members]) this.hand(member, page.events, atHead);
        // Not full, but read ahead, or an append woke nobody while this page was read: look again at once rather
        // than wait for a wake-up that has already passed.
        if (full || readAhead || this.source.wakes() !== wakesBefore) continue;
        // Stopped while the page was read: `stop` has woken nobody.
        if (this.stopped) break;
        // Held-back events become readable as soon as the transaction in front of them ends: look again soon.
        await this.source.sleep(page.heldBack ? HELD_BACK_MS : this.source.pollIntervalMs, (wake) => (this.wakeReader = wake));
      }
    } finally {
      // Decided synchronously with the loop's last check: a subscription joining from now on starts a new run.
      this.stopped = true;
      for (const member of this.members) member.wake?.();
      await ahead?.catch(() => undefined);
    }
  }

  /** Hands a page's events to one member: those after where it joined, that its filter selects. */
  private hand(member: Member, events: readonly RecordedEvent[], atHead: boolean): void {
    const to = this.cursor;
    let fresh = events;
    if (member.skipThrough) {
      const skip = member.skipThrough;
      if (compare(to, skip) <= 0) {
        // The reader has not reached where the member joined: nothing new for it yet.
        if (atHead && !member.atHead) this.signal(member, () => (member.atHead = true));
        return;
      }
      fresh = events.filter((event) => compare(this.source.decode(event.position), skip) > 0);
      member.skipThrough = undefined;
    }
    const mine = member.matches ? fresh.filter(member.matches) : fresh;
    if (member.queue.length + mine.length > QUEUE_LIMIT) {
      // It fell behind: let it go, so that it holds nobody back. It reads on by itself from `queuedTo`.
      this.members.delete(member);
      member.run = undefined;
      this.signal(member, () => (member.released = true));
      return;
    }
    for (const event of mine) member.queue.push(event);
    member.queuedTo = to;
    if (mine.length > 0 || (atHead && !member.atHead)) this.signal(member, () => (member.atHead ||= atHead));
  }

  private signal(member: Member, change: () => void): void {
    change();
    const wake = member.wake;
    member.wake = undefined;
    wake?.();
  }

  /** A failure that is not transient ends the run: each member hands out what it has, then throws it. */
  private fail(error: unknown): void {
    for (const member of this.members) {
      member.run = undefined;
      this.signal(member, () => {
        member.released = true;
        member.error = error;
      });
    }
    this.members.clear();
  }
}

/** What the shared reader did (tests and benchmarks). */
export interface SharedFeedStats {
  /** Pages the reader scanned, and their rows. */
  pages: number;
  rows: number;
  /** Subscriptions that joined the reader, and those it let go because they fell behind. */
  joins: number;
  releases: number;
}

export class SharedFeed {
  private current: ReaderRun | undefined;
  readonly stats: SharedFeedStats = { pages: 0, rows: 0, joins: 0, releases: 0 };

  constructor(private readonly source: FeedSource) {}

  /** How many subscriptions the reader feeds right now. */
  get attached(): number {
    return this.current && !this.current.stopped ? this.current.members.size : 0;
  }

  /**
   * Joins `member`, whose events up to `at` are handed out, to the reader: ahead of it or level, it skips what it
   * has; behind it, it reads the gap first. A stopped run is replaced by a new one, starting at `at`.
   */
  private join(member: Member, at: FeedCursor | undefined): void {
    Object.assign(member, { queue: [], queuedTo: at, skipThrough: undefined, gap: undefined, atHead: false, released: false, error: undefined });
    this.stats.joins++;
    const run = this.current;
    if (!run || run.stopped) {
      member.run = this.current = new ReaderRun(this.source, at, member, this.stats);
      return;
    }
    const order = compare(at, run.cursor);
    if (order > 0) member.skipThrough = at;
    if (order < 0) {
      member.gap = { after: at, upTo: run.cursor as FeedCursor };
      member.queuedTo = run.cursor;
    }
    member.run = run;
    run.members.add(member);
    // Its empty queue may be the room a waiting reader needs; and it wants to hear soon that the head is reached.
    run.wake();
  }

  /** Leaves the reader; the last member to leave stops it (and waits for its statement in flight). */
  private async leave(member: Member): Promise<void> {
    const run = member.run;
    member.run = undefined;
    if (!run) return;
    run.members.delete(member);
    if (run.members.size > 0) {
      // Its full queue may have been what held the reader.
      run.wake();
      return;
    }
    if (this.current === run) this.current = undefined;
    await run.stop();
  }

  // Over 80 lines because a subscription's two modes (reading alone, fed by the reader) share its position and its stop in one closure.
  subscribe(options: SubscribeOptions): Subscription {
    const { source } = this;
    const feed = this;
    let stopped = false;
    let wakeCurrent: (() => void) | undefined;
    const start = options.from === undefined || options.from === 'start' ? undefined : source.decode(options.from);
    const pageSize = Math.max(1, Math.floor(options.pageSize ?? PAGE));
    const member: Member = {
      matches: matcherOf(options.filter),
      queue: [],
      queuedTo: undefined,
      skipThrough: undefined,
      gap: undefined,
      atHead: false,
      released: false,
      error: undefined,
      wake: undefined,
      run: undefined,
    };
    const ownScan = async (after: FeedCursor | undefined, upTo?: FeedCursor): Promise<ScanPage | undefined> => {
      try {
        return await source.scan(after, options.filter, pageSize, upTo);
      } catch (error) {
        if (!isTransient(error)) throw error;
        if (!stopped) await source.sleep(source.pollIntervalMs, (w) => (wakeCurrent = w));
        return undefined;
      }
    };

    async function* run(): AsyncGenerator<SubscriptionItem> {
      await source.listening();
      let cursor = start;
      let caughtUp = false;
      let joined = false;
      let ahead: Promise<ScanPage | undefined> | undefined;
      const caughtUpItem = (): SubscriptionItem => ({ kind: 'caught-up', ...(cursor ? { position: source.encode(cursor) } : {}) });
      try {
        while (!stopped && !source.isClosed()) {
          if (joined) {
            const gap = member.gap;
            if (gap) {
              // The events between where it joined and where the reader was: final, read by itself.
              const page = await ownScan(gap.after, gap.upTo);
              if (!page) continue;
              for (const event of page.events) {
                if (stopped) return;
                yield { kind: 'event', event };
              }
              const rest = page.scanned === pageSize && page.scannedTo && compare(page.scannedTo, gap.upTo) < 0;
              member.gap = rest ? { after: page.scannedTo, upTo: gap.upTo } : undefined;
              continue;
            }
            if (member.queue.length > 0) {
              const events = member.queue;
              member.queue = [];
              member.run?.wake();
              for (const event of events) {
                if (stopped) return;
                yield { kind: 'event', event };
              }
              continue;
            }
            // Everything the reader handed over is out: the subscription stands where the reader covered it.
            cursor = member.queuedTo;
            if (member.error !== undefined) throw member.error;
            if (member.released) {
              joined = false;
              feed.stats.releases++;
              continue;
            }
            if (member.atHead && !caughtUp) {
              caughtUp = true;
              yield caughtUpItem();
              continue;
            }
            await new Promise<void>((resolve) => (member.wake = wakeCurrent = resolve));
            continue;
          }
          const readAhead = ahead !== undefined;
          const page = await (ahead ?? ownScan(cursor));
          ahead = undefined;
          if (!page) continue;
          cursor = page.scannedTo ?? cursor;
          const full = page.scanned === pageSize;
          if (full) {
            // Read ahead; its failure is handled when it is awaited (a stopped subscription never awaits it).
            ahead = ownScan(cursor);
            ahead.catch(() => undefined);
          }
          for (const event of page.events) {
            if (stopped) return;
            yield { kind: 'event', event };
          }
          // Not full, but read ahead: look again at once rather than wait for a wake-up that may already have passed.
          if (full || readAhead) continue;
          // Events held back by an open transaction are part of the history: not caught up until they are read.
          if (!caughtUp && !page.heldBack) {
            caughtUp = true;
            yield caughtUpItem();
          }
          // At the head: from now on the shared reader hands it its events.
          if (stopped || source.isClosed()) break;
          feed.join(member, cursor);
          joined = true;
        }
      } finally {
        await feed.leave(member);
        // A page read ahead and never handed out: let it finish before the subscription counts as stopped.
        await ahead?.catch(() => undefined);
      }
    }

    const iterator = run();
    return {
      [Symbol.asyncIterator]: () => iterator,
      async stop() {
        stopped = true;
        wakeCurrent?.();
        await iterator.return(undefined);
      },
    };
  }
}
