/**
 * Throttling of authentication failures per source address and per kind of credential: bad bearer tokens,
 * wrong cron secrets and bad webhook signatures each count in their own bucket. Only failures are refused:
 * past the limit a failing request gets 429 with Retry-After instead of 401, so guessing is slow, while a
 * valid credential from the same address always passes (an attacker sharing a NAT or a proxy with a merchant,
 * or with Square, cannot lock them out). In memory, per process: enough to blunt abuse at one instance; a
 * shared limit belongs at the network edge.
 */
import { HttpError } from './errors.ts';

export type CredentialKind = 'bearer' | 'cron' | 'webhook';

export interface FailureLimiter {
  /**
   * Counts a failed credential from the source; throws 429 once the source is past its limit for that kind.
   * The caller answers 401 when it returns.
   */
  fail(source: string, kind: CredentialKind): void;
  /** How many (source, kind) windows are held now. */
  tracked(): number;
}

/** How many sources' windows are kept at most: past it the oldest are forgotten first (bounded memory under a flood of addresses). */
export const MAX_TRACKED_SOURCES = 100_000;

export function failureLimiter(options: { limit: number; windowMs: number; now?: () => number; maxSources?: number }): FailureLimiter {
  const now = options.now ?? Date.now;
  const maxSources = options.maxSources ?? MAX_TRACKED_SOURCES;
  // In the order the windows were opened, so in the order they end (every window lasts `windowMs`): expired ones
  // are dropped from the front, each once, and a flood of new addresses costs O(1) a failure, never a scan.
  const windows = new Map<string, { count: number; resetAt: number }>();
  const current = (key: string) => {
    const t = now();
    const window = windows.get(key);
    if (window && window.resetAt > t) return window;
    windows.delete(key);
    for (const [k, w] of windows) {
      if (w.resetAt > t && windows.size < maxSources) break;
      windows.delete(k);
    }
    const fresh = { count: 0, resetAt: t + options.windowMs };
    windows.set(key, fresh);
    return fresh;
  };
  return {
    tracked: () => windows.size,
    fail(source, kind) {
      const window = current(`${kind}\0${source}`);
      window.count++;
      if (window.count > options.limit) {
        const retryAfter = Math.max(1, Math.ceil((window.resetAt - now()) / 1000));
        throw new HttpError('RATE_LIMITED', `Too many failed authentication attempts from this address; retry in ${retryAfter} s`, { retryAfterSeconds: retryAfter });
      }
    },
  };
}
