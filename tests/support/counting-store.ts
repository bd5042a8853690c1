/**
 * An event store that counts the events its stream reads return: what a command or a replay read, independent of
 * the machine's speed (a long stream read whole shows as its length).
 */
import type { EventStore } from '../../domain/ports/event-store.ts';

export function countingReads<Store extends EventStore>(store: Store): { store: Store; read: () => number } {
  let read = 0;
  return {
    store: Object.assign(Object.create(store) as Store, {
      readStream: async (...args: Parameters<EventStore['readStream']>) => {
        const events = await store.readStream(...args);
        read += events.length;
        return events;
      },
    }),
    /** The events read since the last call. */
    read: () => {
      const n = read;
      read = 0;
      return n;
    },
  };
}
