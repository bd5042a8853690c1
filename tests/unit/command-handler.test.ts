/**
 * The command handler: decide on the stream's state, append at exactly the revision decided on, and decide again
 * on a conflict. A caller that already read the stream may pass it in; a write after that read is a conflict.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { handleCommand, loadState } from '../../domain/shared/command-handler.ts';
import { z } from 'zod';
import type { Decider } from '../../domain/shared/decider.ts';
import { EventType, eventCodec, type EventsOf } from '../../domain/shared/codec.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';

const addedEvents = eventCodec(undefined, EventType.define('Added', z.object({ n: z.number().int() })));
type Added = EventsOf<typeof addedEvents>;
/** A counter that refuses to pass 3: the decision depends on the state, so deciding on stale state would show. */
const capped: Decider<{ add: number }, Added, { total: number }> = {
  codec: addedEvents,
  initialState: { total: 0 },
  evolve: (state, event) => ({ total: state.total + event.data.n }),
  decide: (command, state) => (state.total + command.add > 3 ? [] : [{ type: 'Added', data: { n: command.add } }]),
};
const context = { newId: uuid, metadata: {} };

test('a state passed in is decided on without reading the stream again', async (t) => {
  const store = new InMemoryEventStore();
  const stream = `counter-${uuid()}`;
  await handleCommand(store, stream, capped, { add: 1 }, context);
  const loaded = await loadState(store, stream, capped);
  let reads = 0;
  const counting = Object.assign(Object.create(store) as InMemoryEventStore, {
    readStream: (...args: Parameters<InMemoryEventStore['readStream']>) => (reads++, store.readStream(...args)),
  });
  const result = await handleCommand(counting, stream, capped, { add: 2 }, context, loaded);
  t.is(reads, 0);
  t.deepEqual(result.state, { total: 3 });
});

test('a write after the caller read the stream is a conflict: the command is decided again on the fresh state', async (t) => {
  const store = new InMemoryEventStore();
  const stream = `counter-${uuid()}`;
  await handleCommand(store, stream, capped, { add: 1 }, context);
  const loaded = await loadState(store, stream, capped);
  await handleCommand(store, stream, capped, { add: 2 }, context); // someone else, meanwhile: total 3
  const result = await handleCommand(store, stream, capped, { add: 2 }, context, loaded);
  t.deepEqual(result.events, [], 'on the stale state (1) adding 2 was allowed; on the fresh one (3) it is not');
  t.deepEqual((await loadState(store, stream, capped)).state, { total: 3 });
});
