/**
 * A command path for tests that run on the in-memory event store: snapshots in a Map, the production retry
 * policy. Tests on PostgreSQL use the production one (`provideCommandPath`).
 */
import { DEFAULT_RETRY, sleep } from '../../adapters/commands/path.ts';
import { createCommandPath, type CommandPath, type CommandPathOptions } from '../../domain/shared/command-path.ts';
import type { SnapshotStore, StreamSnapshot } from '../../domain/ports/snapshot-store.ts';

export function memorySnapshotStore(): SnapshotStore & { snapshots: Map<string, StreamSnapshot> } {
  const snapshots = new Map<string, StreamSnapshot>();
  return {
    snapshots,
    async read(stream, version) {
      const snapshot = snapshots.get(stream);
      return snapshot?.version === version ? structuredClone(snapshot) : undefined;
    },
    async write(snapshot) {
      const stored = snapshots.get(snapshot.stream);
      if (!stored || stored.version !== snapshot.version || stored.revision < snapshot.revision) snapshots.set(snapshot.stream, structuredClone(snapshot));
    },
  };
}

export function testCommandPath(options: Partial<CommandPathOptions> = {}): CommandPath {
  return createCommandPath({ snapshots: memorySnapshotStore(), retry: { ...DEFAULT_RETRY, random: Math.random, sleep }, ...options });
}
