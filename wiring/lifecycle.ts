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
