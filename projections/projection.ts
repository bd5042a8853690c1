import type { RecordedEvent } from '../domain/ports/event-store.ts';
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
 * commit; it is given every event in order and ignores those it does not care about.
 */
export interface Projection {
  readonly name: string;
  /** Tables the projection owns (logical names); a rebuild recreates exactly these. */
  readonly tables: readonly string[];
  apply(events: readonly RecordedEvent[], context: ProjectionContext): Promise<void>;
}
