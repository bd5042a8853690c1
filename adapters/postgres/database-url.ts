/**
 * DATABASE_URL as the service and the commands show it, and the values of it the logger masks. A password may be in
 * the URL's user info or in its `password` (and `sslpassword`, a client key's) query parameters: every one is masked.
 */

const PASSWORD_PARAMETERS = ['password', 'sslpassword'];

/** The URL with every password in it replaced by `***`. */
export function shownDatabaseUrl(url: string): string {
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  for (const name of PASSWORD_PARAMETERS) if (shown.searchParams.has(name)) shown.searchParams.set(name, '***');
  // URLSearchParams writes `*` as `%2A`: readable as it was given.
  return shown.toString().replaceAll('%2A%2A%2A', '***');
}

/** The passwords in the URL, as written and decoded, for the logger to mask wherever they appear. */
export function databaseUrlSecrets(url: string | undefined): string[] {
  if (!url) return [];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  const found = [parsed.password, ...PASSWORD_PARAMETERS.map((name) => parsed.searchParams.get(name) ?? '')].filter(Boolean);
  const decoded = found.map((value) => {
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  });
  return [...new Set([...found, ...decoded])];
}
