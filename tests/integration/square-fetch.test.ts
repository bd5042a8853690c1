/**
 * The `fetch` the Square SDK is given (adapters/square/fetch.ts): node:http keep-alive underneath, answering as
 * `fetch` does. A socket the server is about to close (its keep-alive timeout) is not reused, and nothing is
 * ever sent twice.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import test from 'ava';
import { squareFetch } from '../../adapters/square/fetch.ts';

/** A server that answers the first request of each connection and resets the connection at its second one. */
async function resettingServer(options: { keepAliveTimeoutMs?: number } = {}) {
  const served = new WeakMap<Socket, number>();
  const received: string[] = [];
  const server = http.createServer((request, response) => {
    const count = (served.get(request.socket) ?? 0) + 1;
    served.set(request.socket, count);
    request.resume();
    request.on('end', () => {
      if (count > 1) {
        request.socket.destroy();
        return;
      }
      received.push(request.method!);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ method: request.method, count }));
    });
  });
  if (options.keepAliveTimeoutMs) server.keepAliveTimeout = options.keepAliveTimeoutMs;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/customers/C1`;
  return { url, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('answers like fetch: status, headers and body', async (t) => {
  const server = await resettingServer();
  try {
    const response = await squareFetch(server.url, { method: 'GET', headers: { accept: 'application/json' } });
    t.is(response.status, 200);
    t.is(response.headers.get('content-type'), 'application/json');
    t.deepEqual(await response.json(), { method: 'GET', count: 1 });
  } finally {
    await server.close();
  }
});

test('a socket idle past the server\'s keep-alive hint is not reused: the next call opens a new one', async (t) => {
  // The server announces `Keep-Alive: timeout=2`; the agent drops an idle socket a second before that. Without
  // it, the second call would go out on the socket the server resets at its second request (the race of a server
  // closing an idle connection as the client reuses it).
  const server = await resettingServer({ keepAliveTimeoutMs: 2_000 });
  try {
    t.is((await squareFetch(server.url)).status, 200);
    // Pacing, not synchronisation: the behaviour under test is what an idle second and a bit does to the socket.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    const again = await squareFetch(server.url);
    t.is(again.status, 200);
    t.deepEqual(await again.json(), { method: 'GET', count: 1 }, 'the first request of a new connection');
  } finally {
    await server.close();
  }
});

test('a POST on a reset socket is not sent again: it fails as fetch fails, with the socket error as cause', async (t) => {
  const server = await resettingServer();
  try {
    t.is((await squareFetch(server.url, { method: 'POST', body: '{}' })).status, 200);
    const error = await t.throwsAsync(squareFetch(server.url, { method: 'POST', body: '{}' }), { instanceOf: TypeError, message: 'fetch failed' });
    t.truthy((error?.cause as { code?: string } | undefined)?.code);
    t.deepEqual(server.received, ['POST']);
  } finally {
    await server.close();
  }
});
