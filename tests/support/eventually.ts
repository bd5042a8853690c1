/**
 * Waiting for something the system does asynchronously (a background worker, a projection, a reconnect): read it
 * again every `intervalMs` until `done` accepts it or `timeoutMs` has passed, then return the last reading for
 * the test to assert on. The bound keeps a broken system from hanging the test; the assertion says what was wrong.
 */
export async function eventually<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
