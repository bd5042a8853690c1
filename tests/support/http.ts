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

/**
 * A token of the administrator `email` names (the service's ADMIN_EMAILS lists it), registered: what a suite signs in
 * with for the admin routes.
 */
export async function registeredAdmin(baseUrl: string, email: string, sub = 'ops'): Promise<string> {
  const token = await tokenFor(sub, email);
  await api(baseUrl)('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } });
  return token;
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
 * The browser's part of the Square connect flow: its app asked for the connect URL (`connect`, the answer to
 * `GET /api/v1/client/pos/square/connect`), which set the HttpOnly nonce cookie the URL is bound to; the browser
 * opens the start URL (on the service at `serviceUrl`, whatever origin API_BASE_URL names) with that cookie and
 * follows the redirect to Square's authorize URL. The cookie goes back with the callback, as the browser would send it.
 */
export async function openConnectUrl(
  serviceUrl: string,
  connect: { body: { url: string }; headers: Headers },
): Promise<{ authorizeUrl: URL; cookie: string; setCookie: string }> {
  const setCookie = connect.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  const start = new URL(connect.body.url);
  const response = await fetch(`${serviceUrl}${start.pathname}${start.search}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  await response.text();
  const location = response.headers.get('location');
  if (response.status !== 302 || !location) throw new Error(`the start URL answered ${response.status}`);
  return { authorizeUrl: new URL(location), cookie, setCookie };
}

/** Keeps the cookies an answer sets, as a browser does (name → value). */
export function remember(jar: Map<string, string>, headers: Headers): Map<string, string> {
  for (const line of headers.getSetCookie()) {
    const [pair] = line.split(';');
    const at = pair!.indexOf('=');
    jar.set(pair!.slice(0, at).trim(), pair!.slice(at + 1).trim());
  }
  return jar;
}

/** A browser's cookies, starting with those `headers` set (the connect URL's answer sets the cookie its start URL is bound to). */
export function cookieJar(headers?: Headers): Map<string, string> {
  const jar = new Map<string, string>();
  return headers ? remember(jar, headers) : jar;
}

/** Follows redirects by hand, keeping cookies, as a browser does; returns every URL visited and the last answer. */
export async function browse(url: string, jar: Map<string, string>, init: RequestInit = {}) {
  const visited: string[] = [];
  let next: string | undefined = url;
  let options = init;
  let response: Response | undefined;
  while (next && visited.length < 10) {
    visited.push(next);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    response = await fetch(next, { ...options, redirect: 'manual', headers: { ...(options.headers as Record<string, string>), ...(cookie ? { cookie } : {}) } });
    remember(jar, response.headers);
    const location = response.headers.get('location');
    next = response.status >= 300 && response.status < 400 && location ? new URL(location, next).toString() : undefined;
    options = {}; // a 302 after a POST is followed with a GET
  }
  return { visited, response: response!, text: await response!.text() };
}
