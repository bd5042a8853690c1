/**
 * When a Square access token is refreshed. Tokens live 30 days; Square advises refreshing at least every
 * 7 days. A token is due when it is older than 7 days, or expires within 8 (so one missed daily run never
 * lets a token lapse).
 */
import type { ConnectedState } from './events.ts';

const DAY_MS = 24 * 3600_000;
export const REFRESH_WHEN_OLDER_THAN_DAYS = 7;
export const REFRESH_WHEN_EXPIRING_WITHIN_DAYS = 8;

/** When the current token was obtained: its last refresh, or the authorization. */
export const tokenIssuedAt = (state: ConnectedState): string => state.lastRefreshedAt ?? state.authorizedAt;

export function refreshIsDue(state: ConnectedState, now: Date): boolean {
  const age = now.getTime() - Date.parse(tokenIssuedAt(state));
  const left = Date.parse(state.tokenExpiresAt) - now.getTime();
  return age > REFRESH_WHEN_OLDER_THAN_DAYS * DAY_MS || left < REFRESH_WHEN_EXPIRING_WITHIN_DAYS * DAY_MS;
}
