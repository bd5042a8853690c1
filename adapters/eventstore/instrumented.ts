/**
 * An event store that reports its appends and concurrency conflicts (metrics), and otherwise is the store it
 * wraps: every other call, and every error, passes through unchanged.
 */
import { ConcurrencyConflict, MultiStreamConflict, type EventStore } from '../../domain/ports/event-store.ts';

/** What the decorator reports; `adapters/metrics.ts` implements it. */
export interface AppendObserver {
  appended(stream: string, events: number): void;
  concurrencyConflict(stream: string): void;
}

/** Wraps `store`, telling `observer` about each append that succeeded and each that met a conflict. */
export function instrumentEventStore(store: EventStore, observer: AppendObserver): EventStore {
  return {
    async append(stream, events, expected) {
      try {
        const result = await store.append(stream, events, expected);
        observer.appended(stream, events.length);
        return result;
      } catch (error) {
        if (error instanceof ConcurrencyConflict) observer.concurrencyConflict(stream);
        throw error;
      }
    },
    async appendMany(requests) {
      try {
        const result = await store.appendMany(requests);
        for (const { stream, events } of requests) observer.appended(stream, events.length);
        return result;
      } catch (error) {
        if (error instanceof MultiStreamConflict) {
          for (const { stream } of error.written) observer.appended(stream, requests.find((r) => r.stream === stream)?.events.length ?? 0);
          for (const { stream } of error.conflicts) observer.concurrencyConflict(stream);
        }
        throw error;
      }
    },
    supportsAtomicMultiStream: () => store.supportsAtomicMultiStream(),
    readStream: (stream, options) => store.readStream(stream, options),
    readStreams: (streams) => store.readStreams(streams),
    readAll: (options) => store.readAll(options),
    subscribeToAll: (options) => store.subscribeToAll(options),
    headPosition: (options) => store.headPosition(options),
    isAfter: (a, b) => store.isAfter(a, b),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}
