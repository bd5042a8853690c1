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
