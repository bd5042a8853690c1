/**
 * The snapshot store port: the folded state of a stream at a revision, so a decision on a long stream reads
 * the snapshot and the events after it instead of the whole stream. Snapshots are a cache: losing any or all
 * of them changes nothing but speed. `adapters/postgres/snapshot-store.ts` implements it (for either event store).
 */
import type { JsonValue } from './event-store.ts';

export interface StreamSnapshot {
  stream: string;
  /** Revision of the last event folded into `state`. */
  revision: number;
  /** The decider's snapshot version (see `StateSnapshots`); a snapshot of another version is never read. */
  version: string;
  state: JsonValue;
}

export interface SnapshotStore {
  /** The stream's snapshot of this version, if one is stored. */
  read(stream: string, version: string): Promise<StreamSnapshot | undefined>;
  /** Stores the snapshot unless one of the same version at a later revision is already stored. */
  write(snapshot: StreamSnapshot): Promise<void>;
}
