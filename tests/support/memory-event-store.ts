/**
 * An in-memory implementation of the event store port, for property tests that run thousands of cases.
 * It passes the same contract suite as the real adapters (tests/unit/memory-event-store.test.ts), so what the
 * property tests prove holds for the behaviour the adapters guarantee.
 */
import {
  checkAppendManyRequests,
  ConcurrencyConflict,
  MultiStreamConflict,
  type AppendManyResult,
  type AppendResult,
  type EventFilter,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type StreamAppend,
  type StreamConflict,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionItem,
} from '../../domain/ports/event-store.ts';

const pos = (n: number) => String(n).padStart(12, '0') as Position;
const num = (p: Position) => Number(p);

function matches(event: RecordedEvent, filter: EventFilter | undefined): boolean {
  if (filter?.eventTypes?.length && !filter.eventTypes.includes(event.type)) return false;
  if (filter?.streamPrefixes?.length && !filter.streamPrefixes.some((p) => event.stream.startsWith(p))) return false;
  return true;
}

export class InMemoryEventStore implements EventStore {
  readonly all: RecordedEvent[] = [];
  private readonly streams = new Map<string, RecordedEvent[]>();
  private readonly waiters = new Set<() => void>();

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    if (events.length === 0) throw new TypeError('append needs at least one event');
    const plan = this.plan({ stream, events, expected });
    if ('actual' in plan) throw new ConcurrencyConflict(stream, expected, plan.actual);
    const result = 'done' in plan ? plan.done : this.write(stream, events);
    if (!('done' in plan)) this.wakeAll();
    return result;
  }

  /** All or nothing: every request is checked before anything is written. */
  async appendMany(requests: readonly StreamAppend[]): Promise<AppendManyResult> {
    checkAppendManyRequests(requests);
    const plans = requests.map((request) => ({ request, plan: this.plan(request) }));
    const conflicts: StreamConflict[] = [];
    for (const { request, plan } of plans) {
      if ('actual' in plan) conflicts.push({ stream: request.stream, expected: request.expected, actual: plan.actual });
    }
    if (conflicts.length) throw new MultiStreamConflict(conflicts);
    const streams = plans.map(({ request, plan }) => ({
      stream: request.stream,
      ...('done' in plan ? plan.done : this.write(request.stream, request.events)),
    }));
    this.wakeAll();
    const last = streams.reduce<Position | undefined>((max, s) => (max === undefined || s.position > max ? s.position : max), undefined);
    return { streams, ...(last ? { position: last } : {}) };
  }

  async supportsAtomicMultiStream() {
    return true;
  }

  /** What an append would do: nothing (a retried batch already there), a conflict, or a write. */
  private plan({ stream, events, expected }: StreamAppend): { done: AppendResult } | { actual: number | 'no_stream' } | { write: true } {
    const existing = this.streams.get(stream) ?? [];
    const current = existing.length - 1;
    const first = events[0];
    const previous = first ? existing.findIndex((e) => e.id === first.id) : -1;
    if (previous >= 0 && events.every((e, i) => existing[previous + i]?.id === e.id)) {
      const last = existing[previous + events.length - 1]!;
      return { done: { nextExpectedRevision: last.revision, position: last.position } };
    }
    const ok =
      expected === 'any' ||
      (expected === 'no_stream' && existing.length === 0) ||
      (expected === 'stream_exists' && existing.length > 0) ||
      (typeof expected === 'number' && expected === current && existing.length > 0);
    return ok ? { write: true } : { actual: existing.length ? current : 'no_stream' };
  }

  private write(stream: string, events: readonly NewEvent[]): AppendResult {
    const existing = this.streams.get(stream) ?? [];
    const current = existing.length - 1;
    const now = new Date();
    const recorded = events.map((e, i) => ({
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: { schemaVersion: 1, ...e.metadata },
      stream,
      revision: current + 1 + i,
      position: pos(this.all.length + 1 + i),
      recordedAt: now,
    }));
    this.all.push(...recorded);
    this.streams.set(stream, [...existing, ...recorded]);
    const last = recorded[recorded.length - 1]!;
    return { nextExpectedRevision: last.revision, position: last.position };
  }

  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }

  async readStreams(streams: readonly string[]): Promise<Map<string, RecordedEvent[]>> {
    return new Map(streams.map((stream) => [stream, [...(this.streams.get(stream) ?? [])]]));
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    let events = [...(this.streams.get(stream) ?? [])];
    if (options.direction === 'backwards') {
      events.reverse();
      if (options.fromRevision !== undefined) events = events.filter((e) => e.revision <= options.fromRevision!);
    } else if (options.fromRevision !== undefined) events = events.filter((e) => e.revision >= options.fromRevision!);
    return options.limit === undefined ? events : events.slice(0, options.limit);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    let events = this.all.filter((e) => matches(e, options.filter));
    if (backwards) {
      events.reverse();
      if (options.from === 'start') return [];
      if (options.from && options.from !== 'end') events = events.filter((e) => num(e.position) < num(options.from as Position));
    } else {
      if (options.from === 'end') return [];
      if (options.from && options.from !== 'start') events = events.filter((e) => num(e.position) >= num(options.from as Position));
      if (options.to) events = events.filter((e) => num(e.position) <= num(options.to as Position));
    }
    const limited = options.limit === undefined ? events : events.slice(0, options.limit);
    const omit = options.omit ?? [];
    if (omit.length === 0) return limited;
    return limited.map((e) => ({ ...e, ...(omit.includes('data') ? { data: null } : {}), ...(omit.includes('metadata') ? { metadata: e.metadata.schemaVersion === undefined ? {} : { schemaVersion: e.metadata.schemaVersion } } : {}) }));
  }

  subscribeToAll(options: SubscribeOptions = {}): Subscription {
    let stopped = false;
    let wake: (() => void) | undefined;
    const store = this;
    let index = options.from && options.from !== 'start' ? num(options.from) : 0;
    async function* run(): AsyncGenerator<SubscriptionItem> {
      let caughtUp = false;
      while (!stopped) {
        while (index < store.all.length && !stopped) {
          const event = store.all[index++]!;
          if (matches(event, options.filter)) yield { kind: 'event', event };
        }
        if (!caughtUp) {
          caughtUp = true;
          yield { kind: 'caught-up' };
        }
        await new Promise<void>((resolve) => {
          wake = () => {
            store.waiters.delete(wake!);
            resolve();
          };
          store.waiters.add(wake);
        });
      }
    }
    const iterator = run();
    return {
      [Symbol.asyncIterator]: () => iterator,
      async stop() {
        stopped = true;
        wake?.();
        await iterator.return(undefined);
      },
    };
  }

  async headPosition() {
    return this.all.at(-1)?.position;
  }
  isAfter(a: Position, b: Position) {
    if (!/^\d{12}$/.test(a) || !/^\d{12}$/.test(b)) throw new TypeError('not a position');
    return num(a) > num(b);
  }
  async ping() {}
  async close() {
    for (const wake of [...this.waiters]) wake();
  }
}
