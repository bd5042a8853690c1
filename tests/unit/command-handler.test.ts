/**
 * The command handler: decide on the stream's state, append at exactly the revision decided on, and decide again
 * on a conflict. A caller that already read the stream may pass it in; a write after that read is a conflict.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { handleCommand, loadState, loadWithSnapshot } from '../../domain/shared/command-handler.ts';
import { z } from 'zod';
import type { Decider } from '../../domain/shared/decider.ts';
import { EventType, eventCodec, type EventsOf } from '../../domain/shared/codec.ts';
import { memorySnapshotStore, testCommandPath } from '../support/command-path.ts';
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
const context = { newId: uuid, metadata: {}, path: testCommandPath() };

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

test('a state held ahead of the stored stream (a database crash lost commits this process took as written) is dropped at the conflict, and the command decided again on the stream as stored', async (t) => {
  const store = new InMemoryEventStore();
  const stream = `counter-${uuid()}`;
  const path = testCommandPath();
  await handleCommand(store, stream, capped, { add: 1 }, { ...context, path });
  // What the process holds after a lost commit: a later revision than the store has. Appending at it conflicts;
  // reading the events after it finds none, so retrying on the held state conflicted every time (503).
  path.recent.set(stream, capped.evolve, { state: { total: 1 }, revision: 4, snapshotRevision: -1 });
  const result = await handleCommand(store, stream, capped, { add: 1 }, { ...context, path });
  t.deepEqual(result.events, [{ type: 'Added', data: { n: 1 } }]);
  t.deepEqual((await loadState(store, stream, capped)).state, { total: 2 });
});

/** The counter with snapshots (its state is already JSON). */
const snapshotted: Decider<{ add: number }, Added, { total: number }> = {
  ...capped,
  decide: (command) => [{ type: 'Added', data: { n: command.add } }],
  snapshots: { version: 1, toJson: (state) => state, fromJson: (json) => z.object({ total: z.number().int() }).parse(json) },
};

test('snapshots fold their tail through the codec, and a new version of an event type never reads an older snapshot', async (t) => {
  const store = new InMemoryEventStore();
  const stream = `counter-${uuid()}`;
  const snapshots = memorySnapshotStore();
  const writer = testCommandPath({ snapshots, snapshotEvery: 4 });
  for (let i = 0; i < 5; i++) await handleCommand(store, stream, snapshotted, { add: 1 }, { ...context, path: writer });
  t.is(snapshots.snapshots.get(stream)?.revision, 3, 'a snapshot once four events are past none');
  let read = 0;
  const counting = Object.assign(Object.create(store) as InMemoryEventStore, {
    readStream: async (...args: Parameters<InMemoryEventStore['readStream']>) => {
      const events = await store.readStream(...args);
      read += events.length;
      return events;
    },
  });

  // A cold process with the same code: the snapshot, then the one event after it, decoded.
  t.deepEqual((await loadWithSnapshot(counting, testCommandPath({ snapshots }), stream, snapshotted)).state, { total: 5 });
  t.is(read, 1);

  // Added gains a version 2 (n doubled, as if v1 had recorded halves): evolve's code is unchanged, but the
  // snapshot was folded on v1's shape, so it is not read: the whole stream is decoded and upcast again.
  const v2 = eventCodec(undefined, EventType.define('Added', z.object({ n: z.number().int() })).next(z.object({ n: z.number().int() }), ({ n }) => ({ n: n * 2 })));
  const upgraded: Decider<{ add: number }, Added, { total: number }> = { ...snapshotted, codec: v2 };
  read = 0;
  t.deepEqual((await loadWithSnapshot(counting, testCommandPath({ snapshots }), stream, upgraded)).state, { total: 10 });
  t.is(read, 5);
});
