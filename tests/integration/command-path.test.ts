/**
 * The command path on a real PostgreSQL event store: commands on one stream within a process wait for each
 * other (no conflicts, no lost decisions); a conflict from another writer is retried after a jittered, growing
 * pause, a bounded number of times, then STREAM_CONTENDED with nothing appended.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { DEFAULT_RETRY } from '../../adapters/commands/path.ts';
import { instrumentEventStore } from '../../adapters/eventstore/instrumented.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { EventStore } from '../../domain/ports/event-store.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import { createCommandPath } from '../../domain/shared/command-path.ts';
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../../domain/shared/codec.ts';
import type { Decider } from '../../domain/shared/decider.ts';
import { StreamContended } from '../../domain/shared/errors.ts';
import { memorySnapshotStore, testCommandPath } from '../support/command-path.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';

const takenEvents = eventCodec(undefined, EventType.define('Taken', z.object({ n: z.number().int() })));
type Taken = EventsOf<typeof takenEvents>;
/** A stock of 50 items: a take is refused once the stock is out, so deciding on stale state would oversell. */
const stock: Decider<{ take: number }, Taken, { taken: number }> = {
  codec: takenEvents,
  initialState: { taken: 0 },
  evolve: (state, event) => ({ taken: state.taken + event.data.n }),
  decide: (command, state) => {
    if (state.taken + command.take > 50) throw new Error('out of stock');
    return [{ type: 'Taken', data: { n: command.take } }];
  },
};

let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

function counting(inner: EventStore) {
  const counts = { appends: 0, conflicts: 0 };
  const observed = instrumentEventStore(inner, { appended: () => counts.appends++, concurrencyConflict: () => counts.conflicts++ });
  return { store: observed, counts };
}

test('80 concurrent commands on one stream in one process queue up: 50 succeed, 30 are refused, not one append conflicts', async (t) => {
  const stream = `stock-${uuid()}`;
  const path = testCommandPath();
  const { store: observed, counts } = counting(store);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 80 }, () => handleCommand(observed, stream, stock, { take: 1 }, { newId: uuid, metadata: {}, path })),
  );
  t.is(outcomes.filter((o) => o.status === 'fulfilled').length, 50);
  t.true(outcomes.filter((o) => o.status === 'rejected').every((o) => /out of stock/.test(String(o.reason))));
  t.is(counts.conflicts, 0, 'the queue let no two commands decide on the same revision');
  t.is((await store.readStream(stream)).length, 50);
  t.is(path.queue.activeKeys, 0, 'the queue forgets a stream once it is idle');
});

test('two processes (two command paths) on one stream: conflicts are retried; a command either lands once or fails as STREAM_CONTENDED having appended nothing', async (t) => {
  const stream = `stock-${uuid()}`;
  const [first, second] = [testCommandPath(), testCommandPath()];
  const { store: observed, counts } = counting(store);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 40 }, (_, i) => handleCommand(observed, stream, stock, { take: 1 }, { newId: uuid, metadata: {}, path: i % 2 ? first : second })),
  );
  const succeeded = outcomes.filter((o) => o.status === 'fulfilled').length;
  const contended = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof StreamContended).length;
  t.is(succeeded + contended, 40, 'no other failure');
  t.is((await store.readStream(stream)).length, succeeded, 'exactly one event per command that succeeded');
  t.true(counts.conflicts > 0, 'the two processes did race');
  t.log(`${succeeded} succeeded, ${contended} contended, ${counts.conflicts} conflicts retried`);
});

test('a stream another writer changes before every append: five attempts with growing jittered pauses, then STREAM_CONTENDED and nothing appended', async (t) => {
  const stream = `stock-${uuid()}`;
  // Another process that writes to the stream just before each of our appends: every attempt truly conflicts.
  const racing: EventStore = Object.assign(Object.create(store) as EventStore, {
    append: async (...[s, events, expected]: Parameters<EventStore['append']>) => {
      await store.append(s, [{ id: uuid(), type: 'Taken', data: { n: 0 }, metadata: { actor: 'other' } }], 'any');
      return store.append(s, events, expected);
    },
  });
  const pauses: number[] = [];
  const path = createCommandPath({
    snapshots: memorySnapshotStore(),
    retry: { ...DEFAULT_RETRY, random: () => 0.999, sleep: async (ms) => void pauses.push(ms) },
  });
  const error = await t.throwsAsync(handleCommand(racing, stream, stock, { take: 1 }, { newId: uuid, metadata: {}, path }));
  t.true(error instanceof StreamContended);
  t.is((error as StreamContended).code, 'STREAM_CONTENDED');
  t.is(pauses.length, DEFAULT_RETRY.attempts - 1, 'a pause before each retry, none after the last attempt');
  pauses.forEach((ms, i) => t.true(ms < DEFAULT_RETRY.baseDelayMs * 2 ** i && ms > DEFAULT_RETRY.baseDelayMs * 2 ** i * 0.99, `pause ${i + 1}: ${ms} ms`));
  const recorded = await store.readStream(stream);
  t.is(recorded.length, DEFAULT_RETRY.attempts, "only the other writer's events: one per attempt");
  t.true(recorded.every((e) => e.metadata.actor === 'other'));
});
