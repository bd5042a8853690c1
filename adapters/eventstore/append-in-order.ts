/**
 * `appendMany` for a store that cannot append to several streams atomically: one `append` per request, in
 * request order, stopping at the first failure. A conflict comes out as a `MultiStreamConflict` that lists the
 * requests already written, so the caller knows what happened; everything else passes through unchanged.
 */
import {
  checkAppendManyRequests,
  ConcurrencyConflict,
  MultiStreamConflict,
  type AppendManyResult,
  type EventStore,
  type StreamAppend,
  type StreamAppendResult,
} from '../../domain/ports/event-store.ts';

export async function appendInOrder(store: Pick<EventStore, 'append'>, requests: readonly StreamAppend[]): Promise<AppendManyResult> {
  checkAppendManyRequests(requests);
  const streams: StreamAppendResult[] = [];
  for (const { stream, events, expected } of requests) {
    try {
      streams.push({ stream, ...(await store.append(stream, events, expected)) });
    } catch (error) {
      if (error instanceof ConcurrencyConflict) {
        throw new MultiStreamConflict([{ stream, expected, actual: error.actual }], streams);
      }
      throw error;
    }
  }
  const last = streams.at(-1);
  return { streams, ...(last ? { position: last.position } : {}) };
}
