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
  /** Tables the projection owns (logical names); a rebuild recreates exactly these. */
  readonly tables: readonly string[];
  /** The event types it handles; `all`: every event of the feed, as stored (the audit trail). */
  readonly eventTypes: readonly string[] | 'all';
  apply(events: readonly RecordedEvent[], context: ProjectionContext): Promise<void>;
}

export interface ProjectionDefinition<E extends DomainEvent> {
  name: string;
  tables: readonly string[];
  /** The event types it handles, and how they decode. */
  events: EventCodec<E>;
  /** The batch's events of the handled types, decoded (an event that does not decode fails the batch, named). */
  apply(events: readonly Decoded<E>[], context: ProjectionContext): Promise<void>;
}

/** A projection that reads its events decoded through its codec. */
export function projection<E extends DomainEvent>(definition: ProjectionDefinition<E>): Projection {
  return {
    name: definition.name,
    tables: definition.tables,
    eventTypes: definition.events.types,
    apply: (events, context) => definition.apply(definition.events.decodeHandled(events), context),
  };
}
