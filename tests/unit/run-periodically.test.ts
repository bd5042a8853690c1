/**
 * `runPeriodically` (wiring/lifecycle.ts), which runs the retention: a first run soon after start, a failure
 * reported and the next run made anyway, and shutdown waiting for a run in progress and arming no other (no timer
 * holds the process, no run meets a closed pool).
 */
import test from 'ava';
import { Cleanups, runPeriodically } from '../../wiring/lifecycle.ts';

const SOON = { firstAfterMs: 0, jitterMs: 0, everyMs: 0 };

test('the first run comes soon after start; a failed run is reported and the next one runs', async (t) => {
  const cleanups = new Cleanups();
  const errors: unknown[] = [];
  let runs = 0;
  let second!: () => void;
  const ranTwice = new Promise<void>((resolve) => (second = resolve));
  runPeriodically(
    async () => {
      runs += 1;
      if (runs === 1) throw new Error('database down');
      if (runs === 2) second();
    },
    SOON,
    cleanups,
    (error) => errors.push(error),
  );
  await ranTwice;
  await cleanups.run();
  t.is((errors[0] as Error).message, 'database down');
  t.is(errors.length, 1);
});

test('shutdown waits for the run in progress and arms no further run', async (t) => {
  const cleanups = new Cleanups();
  const order: string[] = [];
  let runs = 0;
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  runPeriodically(
    async () => {
      runs += 1;
      started();
      await held;
      order.push('run ended');
    },
    SOON,
    cleanups,
    () => undefined,
  );
  await running;
  const stopping = cleanups.run().then(() => order.push('stopped'));
  // Every promise callback has run by the next turn of the event loop: a shutdown that did not wait has finished.
  await new Promise((resolve) => setImmediate(resolve));
  release();
  await stopping;
  t.deepEqual(order, ['run ended', 'stopped']);
  // everyMs is 0: a run armed after shutdown would have started by the time a timer of a few ms fires.
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(runs, 1);
});

test('shutdown before the first run clears its timer: it never runs', async (t) => {
  const cleanups = new Cleanups();
  let runs = 0;
  runPeriodically(async () => void (runs += 1), { firstAfterMs: 5, jitterMs: 0, everyMs: 5 }, cleanups, () => undefined);
  await cleanups.run();
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.is(runs, 0);
});
