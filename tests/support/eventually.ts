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

/**
 * `eventually` for a precondition the test goes on from (a webhook processed, a reader paged once): where nothing
 * asserts on the reading afterwards, a timeout must fail the test here, not let it go on and pass without having
 * reached the state it meant to test.
 */
export async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const value = await eventually(probe, done, options);
  if (!done(value)) {
    const reading = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? String(v) : v))?.slice(0, 300);
    throw new Error(`the condition waited for did not hold within ${options.timeoutMs ?? 30_000} ms; last reading: ${reading}`);
  }
  return value;
}
