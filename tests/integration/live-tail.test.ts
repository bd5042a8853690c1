/**
 * The live tail's events for a resuming member (`eventsAfter`, projections/live-tail.ts) against real PostgreSQL
 * positions: with several instances, a client resumes on an instance whose tail joined before the client's resume
 * position (its tail lags behind the instance the client read from), and gets each event after it once.
 */
import test from 'ava';
import { from, lastValueFrom, toArray } from 'rxjs';
import pino from 'pino';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { eventsAfter, LiveTail, type TailItem } from '../../projections/live-tail.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { numberedEvent, numberOf } from '../support/numbered-events.ts';
import { eventually } from '../support/eventually.ts';

let database: TestDatabase;
let store: PostgresEventStore;

test.before(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore(database.pool, { connectionString: database.url });
});
test.after.always(async () => {
  await store?.close();
  await database?.drop();
});

test('a member resuming after a position its tail has not reached yet gets only the events after it, once', async (t) => {
  await store.append('numbered-lag', [1, 2, 3, 4, 5].map(numberedEvent), 'no_stream');
  const recorded = await store.readStream('numbered-lag');
  const [first, , third] = recorded;
  if (!first || !third) throw new Error('the events were not recorded');
  const tail = new LiveTail(store, pino({ level: 'silent' }));
  // The lagging instance's tail joined at event 1 and then delivers 2–5 live; the client had read up to event 3.
  const items = from<TailItem[]>([{ kind: 'joined', position: first.position }, ...recorded.slice(1).map((event): TailItem => ({ kind: 'event', event }))]);
  const sent = await lastValueFrom(eventsAfter(items, third.position, (after, to) => tail.between(after, to), (a, b) => tail.isAfter(a, b)).pipe(toArray()));
  t.deepEqual(sent.map(numberOf), [4, 5]);

  // A tail ahead of the resume position: the missed events from the store, then the live ones.
  const [, , , fourth, fifth] = recorded;
  if (!fourth || !fifth) throw new Error('the events were not recorded');
  const ahead = from<TailItem[]>([{ kind: 'joined', position: fourth.position }, { kind: 'event', event: fifth }]);
  const caughtUp = await lastValueFrom(eventsAfter(ahead, first.position, (after, to) => tail.between(after, to), (a, b) => tail.isAfter(a, b)).pipe(toArray()));
  t.deepEqual(caughtUp.map(numberOf), [2, 3, 4, 5]);
});

test('the tail stops reading the store once the last member has left for idleMs, and starts again on the next join', async (t) => {
  // The idle timer fired by hand: what it does when it fires is the question, not the clock.
  const armed: (() => void)[] = [];
  const fire = () => armed.splice(0).forEach((run) => run());
  const tail = new LiveTail(store, pino({ level: 'silent' }), 100, { set: (run) => armed.push(run), clear: () => undefined });
  t.teardown(() => tail.stop());
  const received: number[] = [];
  const first = (await tail.join()).subscribe((item) => item.kind === 'event' && item.event.stream === 'numbered-idle' && received.push(numberOf(item.event)));
  const second = (await tail.join()).subscribe(() => {});
  await store.append('numbered-idle', [1].map(numberedEvent), 'no_stream');
  await eventually(async () => received, (r) => r.length === 1, { timeoutMs: 5_000, intervalMs: 20 });
  first.unsubscribe();
  t.true(armed.length > 0, 'a member left: the idle stop is armed');
  fire();
  t.true(tail.running, 'one member still watching: it does not stop');
  second.unsubscribe();
  fire();
  t.false(tail.running, 'no one watching: the subscription stopped');

  const again: number[] = [];
  const third = (await tail.join()).subscribe((item) => item.kind === 'event' && item.event.stream === 'numbered-idle' && again.push(numberOf(item.event)));
  t.teardown(() => third.unsubscribe());
  await store.append('numbered-idle', [2].map(numberedEvent), 0);
  await eventually(async () => again, (r) => r.length === 1, { timeoutMs: 5_000, intervalMs: 20 });
  t.deepEqual(again, [2]);
});

test('a tail whose start failed (the store unreachable a moment) starts again on the next join', async (t) => {
  let failures = 1;
  const flaky = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'headPosition')
        return async () => {
          if (failures-- > 0) throw new Error('the store is unreachable');
          return target.headPosition();
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const tail = new LiveTail(flaky, pino({ level: 'silent' }));
  t.teardown(() => tail.stop());
  await t.throwsAsync(tail.join(), { message: 'the store is unreachable' });
  const items = await tail.join();
  const received: number[] = [];
  const member = items.subscribe((item) => item.kind === 'event' && item.event.stream === 'numbered-restart' && received.push(numberOf(item.event)));
  t.teardown(() => member.unsubscribe());
  await store.append('numbered-restart', [7].map(numberedEvent), 'no_stream');
  await eventually(async () => received, (r) => r.length === 1, { timeoutMs: 5_000, intervalMs: 20 });
  t.deepEqual(received, [7]);
});
