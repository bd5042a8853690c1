/**
 * `runPeriodically` (wiring/lifecycle.ts), which runs the retention: a first run soon after start, a failure
 * reported and the next run made anyway, and shutdown waiting for a run in progress and arming no other (no timer
 * holds the process, no run meets a closed pool), and telling that run to stop: a run in slices ends after the slice
 * under way (found in review, 2026-12-08: shutdown waited for a whole retention run over a backlog).
 */
import test from 'ava';
import { Cleanups, runPeriodically } from '../../wiring/lifecycle.ts';
import { gate } from '../support/gate.ts';

const SOON = { firstAfterMs: 0, jitterMs: 0, everyMs: 0 };

test('the first run comes soon after start; a failed run is reported and the next one runs', async (t) => {
  const cleanups = new Cleanups();
  const errors: unknown[] = [];
  let runs = 0;
  const ranTwice = gate();
  runPeriodically(
    async () => {
      runs += 1;
      if (runs === 1) throw new Error('database down');
      if (runs === 2) ranTwice.open();
    },
    SOON,
    cleanups,
    (error) => errors.push(error),
  );
  await ranTwice.opened;
  await cleanups.run();
  t.is((errors[0] as Error).message, 'database down');
  t.is(errors.length, 1);
});

test('shutdown tells the run in progress to stop, waits for it and arms no further run', async (t) => {
  const cleanups = new Cleanups();
  const order: string[] = [];
  let runs = 0;
  const started = gate();
  const held = gate();
  runPeriodically(
    async (signal) => {
      runs += 1;
      started.open();
      await held.opened;
      // A run in slices checks this between them: shutdown waits for the slice under way, not the whole run.
      order.push(signal.aborted ? 'run told to stop' : 'run not told');
      order.push('run ended');
    },
    SOON,
    cleanups,
    () => undefined,
  );
  await started.opened;
  const stopping = cleanups.run().then(() => order.push('stopped'));
  // Every promise callback has run by the next turn of the event loop: a shutdown that did not wait has finished.
  await new Promise((resolve) => setImmediate(resolve));
  held.open();
  await stopping;
  t.deepEqual(order, ['run told to stop', 'run ended', 'stopped']);
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
