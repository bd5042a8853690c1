/**
 * Throttling of authentication failures per source address: bad bearer tokens, wrong cron secrets and bad
 * webhook signatures all count. Past the limit a source gets 429 with Retry-After until its window ends, so
 * guessing secrets or flooding with unsigned webhooks is slow. In memory, per process: enough to blunt abuse
 * at one instance; a shared limit belongs at the network edge.
 */
import { HttpError } from './errors.ts';

export interface FailureLimiter {
  /** Throws 429 when the source is over its limit. */
  check(source: string): void;
  /** Counts a failure from the source. */
  fail(source: string): void;
}

export function failureLimiter(options: { limit: number; windowMs: number; now?: () => number }): FailureLimiter {
  const now = options.now ?? Date.now;
  const windows = new Map<string, { count: number; resetAt: number }>();
  const current = (source: string) => {
    const t = now();
    const window = windows.get(source);
    if (window && window.resetAt > t) return window;
    // Forget expired windows now and then, so the map does not grow with every address ever seen.
    if (windows.size > 10_000) for (const [key, w] of windows) if (w.resetAt <= t) windows.delete(key);
    const fresh = { count: 0, resetAt: t + options.windowMs };
    windows.set(source, fresh);
    return fresh;
  };
  return {
    check(source) {
      const window = current(source);
      if (window.count >= options.limit) {
        const retryAfter = Math.max(1, Math.ceil((window.resetAt - now()) / 1000));
        throw new HttpError('RATE_LIMITED', `Too many failed authentication attempts from this address; retry in ${retryAfter} s`, { retryAfterSeconds: retryAfter });
      }
    },
    fail(source) {
      current(source).count++;
    },
  };
}
