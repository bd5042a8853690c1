/** What the composition root stops on shutdown, in the reverse order of starting. */
export class Cleanups {
  private readonly steps: (() => Promise<void>)[] = [];

  /** Registers a step; it runs before every step registered earlier. */
  add(step: () => Promise<void>): void {
    this.steps.unshift(step);
  }

  /** Runs every step, even when one fails; `onError` hears each failure. */
  async run(onError: (error: unknown) => void = () => undefined): Promise<void> {
    for (const step of this.steps.splice(0)) await step().catch(onError);
  }
}

/** The same signal again within this long is one signal delivered twice, not a second one. */
export const REPEATED_SIGNAL_MS = 500;

/**
 * A signal handler that hears one Ctrl-C once. In a terminal, Ctrl-C signals the whole foreground process group,
 * and `npm start` / `npm run <command>`, in it, forwards what it got to the process: the same signal arrives twice
 * within milliseconds, and was taken as a person's second Ctrl-C ("exit at once"), so the orderly stop never ran
 * (found in review, 2026-12-08). A person's second Ctrl-C comes later than `REPEATED_SIGNAL_MS`.
 */
export function onceAPress(handler: (signal: NodeJS.Signals) => void): (signal: NodeJS.Signals) => void {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  return (signal) => {
    const now = Date.now();
    if (first && first.signal === signal && now - first.at < REPEATED_SIGNAL_MS) return;
    first ??= { signal, at: now };
    handler(signal);
  };
}

/** When a periodic task runs: first `firstAfterMs` after start plus up to `jitterMs`, then `everyMs` after each run ends. */
export interface Schedule {
  firstAfterMs: number;
  jitterMs: number;
  everyMs: number;
}

/**
 * The retention runs (webhook bodies, audit rows): soon after start, not only hourly (found in review, 2026-12-08: a
 * service restarted more often than hourly never pruned), spread over a minute so instances started together do
 * not all run at once.
 */
export const RETENTION_SCHEDULE: Schedule = { firstAfterMs: 10_000, jitterMs: 50_000, everyMs: 3_600_000 };

/**
 * Runs `task` on `schedule` in the background: it delays neither start-up nor readiness, a failure is logged and the
 * task runs again at its next turn, and shutdown (`cleanups`) clears the timer, aborts the task's signal and waits
 * for a run in progress, so nothing holds the process and no run meets a closed pool. A task working in slices checks
 * the signal between them: shutdown waits for the slice under way, not for the whole run (found in review,
 * 2026-12-08: a retention run over a backlog outlasted the shutdown bound), and the next run goes on from there.
 */
export function runPeriodically(task: (stopping: AbortSignal) => Promise<unknown>, schedule: Schedule, cleanups: Cleanups, onError: (error: unknown) => void): void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const stopping = new AbortController();
  const turn = (ms: number) => {
    timer = setTimeout(() => {
      running = task(stopping.signal)
        .then(() => undefined, onError)
        .finally(() => {
          running = undefined;
          if (!stopping.signal.aborted) turn(schedule.everyMs);
        });
    }, ms);
    timer.unref();
  };
  turn(schedule.firstAfterMs + Math.floor(Math.random() * schedule.jitterMs));
  cleanups.add(async () => {
    stopping.abort();
    clearTimeout(timer);
    await running;
  });
}
