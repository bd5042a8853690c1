/**
 * The in-memory caller view (projections/caller-view.ts) against real PostgreSQL, with a second store standing
 * for another instance: its suspensions reach this instance's view through the feed alone.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { ConcurrencyConflict, type EventStore } from '../../domain/ports/event-store.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import { userDecider } from '../../domain/users/decider.ts';
import { userStream } from '../../domain/users/events.ts';
import { callerView, learnOnAppend, type CallerView } from '../../projections/caller-view.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/eventually.ts';
import { testCommandPath } from '../support/command-path.ts';

/** What another instance's suspension may take to bind here: the feed's latency (NOTIFY), well inside the 1 s poll. */
const BOUND_MS = 1_000;

let database: TestDatabase;
let local: PostgresEventStore;
let other: PostgresEventStore;

test.before(async () => {
  database = await createTestDatabase();
  local = new PostgresEventStore(database.pool, { connectionString: database.url });
  other = new PostgresEventStore(database.pool, { connectionString: database.url });
});
test.after.always(async () => {
  await local?.close();
  await other?.close();
  await database?.drop();
});

const context = { newId: () => uuid(), metadata: {}, path: testCommandPath() };
const now = () => new Date().toISOString();

async function registerConsumer(store: EventStore): Promise<string> {
  const userId = uuid();
  await handleCommand(store, userStream(userId), userDecider, {
    type: 'RegisterUser',
    userId,
    requestedRole: 'consumer',
    isAdmin: false,
    emailVerifiedVia: 'token',
    phoneVerifiedVia: null,
    suspendedAsUser: null,
    emailHash: `email:${userId}`,
    phoneHash: null,
    businessName: null,
    now: now(),
  }, context);
  return userId;
}

test('a suspension by another instance binds within the feed latency under read load, and the caller was served from memory meanwhile', async (t) => {
  const view = callerView(local);
  view.start();
  try {
    const userId = await registerConsumer(other);
    t.like(await view.load(userId), { status: 'approved', role: 'consumer' });
    // Kept once the subscription is live (a load before that reads the stream and keeps nothing).
    await until(async () => (await view.load(userId), view.stats().kept), (kept) => kept === 1, { timeoutMs: 5_000 });

    const loads: { startedAt: number; status: string }[] = [];
    let stop = false;
    const reader = async () => {
      while (!stop) {
        const startedAt = performance.now();
        const state = await view.load(userId);
        loads.push({ startedAt, status: state.status });
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const readers = Array.from({ length: 8 }, reader);
    await handleCommand(other, userStream(userId), userDecider, { type: 'SuspendUser', userId, by: 'admin-1', reason: null, now: now() }, context);
    const committedAt = performance.now();
    await until(async () => loads.filter((l) => l.status === 'suspended').length, (n) => n > 0, { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop = true;
    await Promise.all(readers);

    const firstSuspended = loads.find((l) => l.status === 'suspended' && l.startedAt > committedAt);
    t.log(`suspension bound after ${((firstSuspended?.startedAt ?? Number.NaN) - committedAt).toFixed(1)} ms; ${loads.length} loads, ${view.stats().fromMemory} from memory`);
    t.is(loads.filter((l) => l.startedAt > committedAt + BOUND_MS && l.status !== 'suspended').length, 0);
    t.true(loads.filter((l) => l.startedAt > (firstSuspended?.startedAt ?? Infinity)).every((l) => l.status === 'suspended'), 'never approved again once suspended');
    t.true(view.stats().fromMemory > loads.length / 2, 'most loads answered from memory');
  } finally {
    await view.stop();
  }
});

test('a caller the view has not seen is read from its stream and kept; a stopped view reads every caller from the stream', async (t) => {
  const view = callerView(local);
  view.start();
  try {
    t.deepEqual(await view.load(uuid()), { status: 'unregistered' }, 'an unknown user is not kept');
    const userId = await registerConsumer(other);
    await until(async () => (await view.load(userId), view.stats().kept), (kept) => kept >= 1, { timeoutMs: 5_000 });
    const before = view.stats();
    t.like(await view.load(userId), { status: 'approved' });
    t.is(view.stats().fromMemory, before.fromMemory + 1);

    // Stopped, the view keeps nothing: every load reads the stream.
    await view.stop();
    await handleCommand(other, userStream(userId), userDecider, { type: 'SuspendUser', userId, by: 'admin-1', reason: null, now: now() }, context);
    const fromStream = view.stats().fromStream;
    t.like(await view.load(userId), { status: 'suspended' });
    t.is(view.stats().fromStream, fromStream + 1);
  } finally {
    await view.stop();
  }
});

/** A started view, live (a user registered elsewhere is kept after one load), and the store that teaches it this process's appends. */
async function withLearningView(body: (view: CallerView, learning: EventStore) => Promise<void>): Promise<void> {
  const view = callerView(local);
  view.start();
  try {
    const probe = await registerConsumer(other);
    await until(async () => (await view.load(probe), view.stats().kept), (kept) => kept >= 1, { timeoutMs: 5_000 });
    await body(view, learnOnAppend(local, view));
  } finally {
    await view.stop();
  }
}

test('appends through this process bring the caller up to date before they return: a registration is served from memory at once, a suspension binds at once', (t) =>
  withLearningView(async (view, learning) => {
    const userId = await registerConsumer(learning);
    const before = view.stats();
    t.like(await view.load(userId), { status: 'approved', role: 'consumer' });
    t.is(view.stats().fromStream, before.fromStream, 'the new user was not read from its stream');
    t.is(view.stats().fromMemory, before.fromMemory + 1);

    await handleCommand(learning, userStream(userId), userDecider, { type: 'SuspendUser', userId, by: 'admin-1', reason: null, now: now() }, context);
    t.like(await view.load(userId), { status: 'suspended' }, 'in force for the very next load, without waiting for the feed');
    t.is(view.stats().fromStream, before.fromStream);
    // What the view holds is what the stream says.
    t.deepEqual(await view.load(userId), await callerView(local).load(userId));
  }));

test('a failed append through this process drops the caller: the next load reads the stream', (t) =>
  withLearningView(async (view, learning) => {
    const userId = await registerConsumer(learning);
    await view.load(userId);
    const event = { id: uuid(), type: 'UserSuspended', data: {}, metadata: {} };
    await t.throwsAsync(learning.append(userStream(userId), [event], 'no_stream'), { instanceOf: ConcurrencyConflict });
    const fromStream = view.stats().fromStream;
    t.like(await view.load(userId), { status: 'approved' });
    t.is(view.stats().fromStream, fromStream + 1);
  }));

test('an append that succeeds but that the view cannot apply still answers its result, and drops the caller: the next load reads the stream', (t) =>
  withLearningView(async (view, learning) => {
    const userId = await registerConsumer(learning);
    t.like(await view.load(userId), { status: 'approved' });
    const kept = view.stats().kept;
    const written = (await local.readStream(userStream(userId))).length;
    // Stored as written (the store does not decode), but not a `UserSuspended` the codec accepts: the view cannot fold it.
    const result = await learning.append(userStream(userId), [{ id: uuid(), type: 'UserSuspended', data: { unexpected: true }, metadata: {} }], 'any');
    t.is(result.nextExpectedRevision, written, 'the append answered its own result');
    t.is(view.stats().kept, kept - 1, 'the caller is no longer kept');
    const fromStream = view.stats().fromStream;
    // Read from the stream, the stored event stops the read loudly, naming where it is.
    const error = await t.throwsAsync(view.load(userId));
    t.regex(error?.message ?? '', new RegExp(`user-${userId}`));
    t.is(view.stats().fromStream, fromStream + 1);
  }));

test('an event of the feed the view cannot decode drops its user only: the subscription stays live and every other caller is still served from memory', async (t) => {
  const errors: string[] = [];
  const view = callerView(local, { onError: (_error, consequence) => errors.push(consequence) });
  view.start();
  try {
    const [bystander, userId] = [await registerConsumer(other), await registerConsumer(other)];
    await until(async () => (await view.load(bystander), await view.load(userId), view.stats().kept), (kept) => kept === 2, { timeoutMs: 5_000 });
    // Written by another instance, so only the feed brings it here; stored as written, not a `UserSuspended` the codec accepts.
    await other.append(userStream(userId), [{ id: uuid(), type: 'UserSuspended', data: { unexpected: true }, metadata: {} }], 'any');
    await until(async () => view.stats().kept, (kept) => kept < 2, { timeoutMs: 5_000 });
    t.is(view.stats().kept, 1, 'the bystander is still kept');
    t.deepEqual(errors, [`user ${userId} dropped: read from the stream on its next request`]);
    const before = view.stats();
    t.like(await view.load(bystander), { status: 'approved' });
    t.is(view.stats().fromMemory, before.fromMemory + 1, 'served from memory: the view is still live');
  } finally {
    await view.stop();
  }
});
