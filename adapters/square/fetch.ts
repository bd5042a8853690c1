/**
 * The `fetch` the Square SDK is given: `node:http`/`node:https` with keep-alive agents, answering a WHATWG
 * `Response` built from the whole body. Through Node's built-in `fetch` (undici) a customer look-up cost 0.66 ms
 * of CPU (SDK, client and a local server in one process); through this, 0.47 ms (README, ingestion benchmark:
 * a look-up for a quarter of the webhooks).
 *
 * It does what the SDK asks of `fetch`: method, headers, a string or byte body, an abort signal (the SDK's
 * timeout: an aborted call rejects with an `AbortError`), and failures to connect reject like `fetch` does
 * (`TypeError: fetch failed`, the socket error as `cause`). Redirects are not followed (Square's API does not
 * redirect); the answer is read whole before it resolves, so the SDK's timeout also covers the body.
 */
import http from 'node:http';
import https from 'node:https';

/**
 * Keep-alive, with an idle timeout so that the server's `Keep-Alive: timeout=N` hint applies: Node's agent closes
 * an idle socket a second before the server would (only when the agent has a timeout of its own, longer than the
 * hint), as undici does; without it, a request sent on a socket the server is closing fails with a reset. The
 * timeout only notifies a request in progress (the SDK's own timeout aborts calls).
 */
const AGENT = { keepAlive: true, maxSockets: 64, timeout: 60_000 };
const agents = { 'http:': new http.Agent(AGENT), 'https:': new https.Agent(AGENT) };

/** Statuses whose answer has no body (a `Response` refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

function requestUrl(input: Parameters<typeof fetch>[0]): URL {
  if (typeof input === 'string') return new URL(input);
  if (input instanceof URL) return input;
  return new URL(input.url);
}

function bodyBytes(body: RequestInit['body']): string | Uint8Array | undefined | null {
  if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof URLSearchParams) return body.toString();
  return null;
}

export const squareFetch: typeof fetch = async (input, init = {}) => {
  const body = bodyBytes(init.body);
  // Anything else (a stream, a form, a Request object with its own body) goes to the built-in fetch.
  if (body === null || (typeof input !== 'string' && !(input instanceof URL))) return fetch(input, init);
  const url = requestUrl(input);
  const agent = url.protocol === 'https:' ? agents['https:'] : url.protocol === 'http:' ? agents['http:'] : undefined;
  if (!agent) return fetch(input, init);
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((value, name) => {
    headers[name] = value;
  });
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  const transport = url.protocol === 'https:' ? https : http;
  const method = (init.method ?? 'GET').toUpperCase();
  return new Promise<Response>((resolve, reject) => {
    const request = transport.request(url, { method, headers, agent, ...(init.signal ? { signal: init.signal } : {}) }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        const answerHeaders = new Headers();
        for (let i = 0; i < response.rawHeaders.length; i += 2) answerHeaders.append(response.rawHeaders[i]!, response.rawHeaders[i + 1]!);
        try {
          resolve(new Response(NULL_BODY.has(status) ? null : Buffer.concat(chunks), { status, statusText: response.statusMessage ?? '', headers: answerHeaders }));
        } catch (error) {
          reject(error);
        }
      });
    });
    // As fetch: nothing is sent again (a dropped connection is the caller's NETWORK error to retry or not).
    request.on('error', (error: Error) => reject(error.name === 'AbortError' ? error : new TypeError('fetch failed', { cause: error })));
    request.end(body);
  });
};
