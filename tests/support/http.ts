/** Small helpers for HTTP tests: minting tokens with the service's secret and calling the API. */
import { SignJWT } from 'jose';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/**
 * A bearer token as an identity provider would issue it. The email counts as verified (`email_verified: true`),
 * as it is for most real users; `claims` adds or overrides claims (e.g. `{ email_verified: false }`).
 */
export async function tokenFor(
  sub: string,
  email: string,
  options: { secret?: string; ttl?: string; claims?: Record<string, unknown> } = {},
): Promise<string> {
  return new SignJWT({ email, email_verified: true, ...options.claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(options.ttl ?? '1h')
    .sign(new TextEncoder().encode(options.secret ?? TEST_JWT_SECRET));
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export function api(baseUrl: string) {
  return async function call<T = any>(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
      redirect: 'manual',
    });
    const text = await response.text();
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: keep the text.
    }
    return { status: response.status, body, headers: response.headers };
  };
}

/**
 * The browser's part of the Square connect flow: it opens the start URL the API handed out (on the service at
 * `serviceUrl`, whatever origin API_BASE_URL names), keeps the HttpOnly nonce cookie it is given, and follows
 * the redirect to Square's authorize URL. The cookie goes back with the callback, as the browser would send it.
 */
export async function openConnectUrl(serviceUrl: string, connectUrl: string): Promise<{ authorizeUrl: URL; cookie: string; setCookie: string }> {
  const start = new URL(connectUrl);
  const response = await fetch(`${serviceUrl}${start.pathname}${start.search}`, { redirect: 'manual' });
  await response.text();
  const location = response.headers.get('location');
  const setCookie = response.headers.get('set-cookie') ?? '';
  if (response.status !== 302 || !location) throw new Error(`the start URL answered ${response.status}`);
  return { authorizeUrl: new URL(location), cookie: setCookie.split(';')[0] ?? '', setCookie };
}
