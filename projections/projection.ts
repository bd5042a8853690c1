import type { RecordedEvent } from '../domain/ports/event-store.ts';
import type { DomainEvent } from '../domain/shared/decider.ts';
import type { Decoded, EventCodec } from '../domain/shared/codec.ts';
import type { Queryable } from '../adapters/postgres/transaction.ts';

/** What a projection may use inside the transaction that also moves its checkpoint. */
export interface ProjectionContext {
  /**
   * Queries inside the batch's transaction. The live runner opens that transaction at the first query: a batch
   * the projection has nothing to write for costs no commit (its checkpoint is written later, see feed.ts).
   */
  db: Queryable;
  /**
   * The physical name of one of the projection's tables. Normally the table itself; during a rebuild the
   * fresh copy being filled beside it. Always write SQL through this, never with a literal table name.
   */
  table(logicalName: string): string;
}

/**
 * A read model fed from the global feed: a pure fold of events into row changes, plus the SQL that writes
 * them. `apply` runs inside the runner's transaction together with the checkpoint update, so it must not
 * commit; it is given the batch's events in order and passes over those of types it does not handle.
 */
export interface Projection {
  readonly name: string;
  /**
   * The version of what it writes. Raising it (new columns, a fixed fold) rebuilds the projection at the next
   * start-up, beside the live one (rebuild.ts), which it replaces once caught up.
   */
  readonly version: number;
  /** Tables the projection owns (logical names); a rebuild recreates exactly these. */
  readonly tables: readonly string[];
  /** The event types it handles (its subscription's filter); `all`: every event of the feed, as stored (the audit trail). */
  readonly eventTypes: readonly string[] | 'all';
  apply(events: readonly RecordedEvent[], context: ProjectionContext): Promise<void>;
  /**
   * Optional, rebuilds only: a fold that keeps state in memory across batches (running balances), so that a
   * replay of the whole feed writes each row less often than `apply` would. A rebuild uses one for its batches and
   * calls `settle` before each takeover attempt; the takeover's own gap still goes through `apply`.
   */
  replay?(): Replay;
}

/**
 * A rebuild's in-memory fold (see `Projection.replay`). The rebuild hands it every event exactly once, in feed
 * order, inside batch transactions with its checkpoint. `apply` writes its rows and stages what it keeps in memory;
 * `settle` writes what was kept in memory, so that the tables hold exactly what `apply` would have written up to
 * the checkpoint. Each runs in a transaction; `committed` is called after that transaction commits and makes what
 * it staged the base of what follows. A call that rolled back is forgotten at the next `apply` or `settle`.
 */
export interface Replay {
  apply(events: readonly RecordedEvent[], context: ProjectionContext): Promise<void>;
  settle(context: ProjectionContext): Promise<void>;
  committed(): void;
}

/** A replay that reads its events decoded (see `ProjectionDefinition.replay`). */
export interface DecodedReplay<E extends DomainEvent> extends Omit<Replay, 'apply'> {
  apply(events: readonly Decoded<E>[], context: ProjectionContext): Promise<void>;
}

/** What a reactor may use: reads of the read models it names in `reads`, outside any checkpoint transaction. */
export interface ReactorContext {
  db: Queryable;
}

/**
 * A process fed from the global feed that turns events into commands on other streams. It owns no tables and is
 * never rebuilt: replaying the feed to it would issue its commands again. Its commands must be idempotent (a
 * crash before its checkpoint delivers a batch again). The runner hands it a batch only once every read model
 * in `reads` has applied that batch, so what it reads there is at least as new as the events it handles.
 */
export interface Reactor {
  readonly name: string;
  readonly eventTypes: readonly string[];
  /** Projections whose tables it reads. */
  readonly reads: readonly string[];
  handle(events: readonly RecordedEvent[], context: ReactorContext): Promise<void>;
}

/** Whatever the runner feeds: read models, and reactors. */
export type FeedReader = Projection | Reactor;

export const isReactor = (reader: FeedReader): reader is Reactor => 'handle' in reader;

export interface ProjectionDefinition<E extends DomainEvent> {
  name: string;
  version: number;
  tables: readonly string[];
  /** The event types it handles, and how they decode. */
  events: EventCodec<E>;
  /** The batch's events of the handled types, decoded (an event that does not decode fails the batch, named). */
  apply(events: readonly Decoded<E>[], context: ProjectionContext): Promise<void>;
  /** Optional rebuild-only fold kept in memory (see `Projection.replay`). */
  replay?(): DecodedReplay<E>;
}

/** A projection that reads its events decoded through its codec. */
export function projection<E extends DomainEvent>(definition: ProjectionDefinition<E>): Projection {
  const { replay } = definition;
  return {
    name: definition.name,
    version: definition.version,
    tables: definition.tables,
    eventTypes: definition.events.types,
    apply: (events, context) => definition.apply(definition.events.decodeHandled(events), context),
    ...(replay
      ? {
          replay: (): Replay => {
            const fold = replay();
            return {
              apply: (events, context) => fold.apply(definition.events.decodeHandled(events), context),
              committed: () => fold.committed(),
              settle: (context) => fold.settle(context),
            };
          },
        }
      : {}),
  };
}

export interface ReactorDefinition<E extends DomainEvent> {
  name: string;
  events: EventCodec<E>;
  reads?: readonly string[];
  handle(events: readonly Decoded<E>[], context: ReactorContext): Promise<void>;
}

/** A reactor that reads its events decoded through its codec. */
export function reactor<E extends DomainEvent>(definition: ReactorDefinition<E>): Reactor {
  return {
    name: definition.name,
    eventTypes: definition.events.types,
    reads: definition.reads ?? [],
    handle: (events, context) => definition.handle(definition.events.decodeHandled(events), context),
  };
}
