/**
 * Routes served ahead of Koa (http/direct-route.ts): only the exact method and path are taken, and what the caller
 * and the operator see is the app's: the error answers of the error middleware (a 4xx says what to fix, a 500
 * only the request id, Retry-After on 429 and 503), X-Request-Id echoed or made, one request line in the log, the
 * request metrics by route template. Then the signed webhook route itself, through the running service: the
 * direct path answers exactly what the same route answers through Koa (reached with a query string).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import test from 'ava';
import pino from 'pino';
import { z } from 'zod';
import { directRoutes } from '../../http/direct-route.ts';
import { HttpError } from '../../http/errors.ts';
import { route, type RouteSpec } from '../../http/routes/table.ts';
import { startTestService } from '../support/service.ts';
import { paymentWebhook, squareSignature } from '../support/square-webhooks.ts';

/** A direct route whose answer the request's `x-answer` header chooses. */
const probe = route({
  method: 'post',
  path: '/probe',
  access: 'public',
  summary: 'test route',
  response: z.object({ ok: z.literal(true) }),
  handler: () => ({ status: 200, body: { ok: true as const } }),
  async direct(request) {
    switch (request.headers['x-answer']) {
      case 'refused':
        throw new HttpError('VALIDATION_FAILED', 'body.event_id is required');
      case 'limited':
        throw new HttpError('RATE_LIMITED', 'Too many failed authentication attempts from this address; retry in 7 s', { retryAfterSeconds: 7 });
      case 'unavailable':
        throw new HttpError('WEBHOOKS_NOT_CONFIGURED', 'SQUARE_WEBHOOK_SIGNATURE_KEY is not configured');
      case 'bug':
        throw new Error('secret internal detail: relation "pos_webhook_events_raw" does not exist');
      default:
        return { status: 200, body: { ok: true as const } };
    }
  },
});

async function serverWith(routes: RouteSpec[]) {
  const lines: Record<string, unknown>[] = [];
  const metrics: { method: string; route: string; status: number }[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, callback) {
        lines.push(...String(chunk).split('\n').filter(Boolean).map((l) => JSON.parse(l)));
        callback();
      },
    }),
  );
  const direct = directRoutes({ log, routes, metrics: { httpRequest: ({ method, route, status }) => metrics.push({ method, route, status }) } });
  const server = http.createServer((request, response) => {
    if (!direct(request, response)) response.writeHead(418).end('not direct');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, lines, metrics, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('a direct route answers the error middleware’s answers, with the request id, one request line and its metrics', async (t) => {
  const server = await serverWith([probe]);
  t.teardown(server.close);
  const post = (answer: string, headers: Record<string, string> = {}) => fetch(`${server.url}/probe`, { method: 'POST', headers: { 'x-answer': answer, ...headers }, body: '{}' });

  const ok = await post('ok', { 'x-request-id': 'sq-delivery-1' });
  t.is(ok.status, 200);
  t.is(ok.headers.get('content-type'), 'application/json; charset=utf-8');
  t.is(ok.headers.get('x-request-id'), 'sq-delivery-1', 'a plain request id is echoed');
  t.deepEqual(await ok.json(), { ok: true });

  const refused = await post('refused', { 'x-request-id': 'not a plain id!' });
  t.is(refused.status, 400);
  t.regex(refused.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'an unusable request id is replaced by a new one');
  t.deepEqual(await refused.json(), { error: { code: 'VALIDATION_FAILED', message: 'body.event_id is required' } });

  const limited = await post('limited');
  t.is(limited.status, 429);
  t.is(limited.headers.get('retry-after'), '7');
  t.is((await limited.json()).error.code, 'RATE_LIMITED');

  const unavailable = await post('unavailable');
  t.is(unavailable.status, 503);
  t.is(unavailable.headers.get('retry-after'), '5');

  const bug = await post('bug');
  t.is(bug.status, 500);
  const bugBody = await bug.json();
  t.deepEqual(bugBody, { error: { code: 'INTERNAL', message: 'Internal error; quote the request id when reporting it.', requestId: bug.headers.get('x-request-id') } });
  t.false(JSON.stringify(bugBody).includes('pos_webhook_events_raw'), 'no internals in a 500');

  const other = await fetch(`${server.url}/probe?x=1`, { method: 'POST', body: '{}' });
  t.is(other.status, 418, 'a query string is not the exact path: not served directly');
  t.is((await fetch(`${server.url}/probe`)).status, 418, 'nor another method');

  const requests = server.lines.filter((l) => l.msg === 'request');
  t.deepEqual(
    requests.map(({ method, path, status }) => ({ method, path, status })),
    [200, 400, 429, 503, 500].map((status) => ({ method: 'POST', path: '/probe', status })),
    'one request line per direct request',
  );
  t.is(requests[0]!.requestId, 'sq-delivery-1');
  t.is(typeof requests[0]!.ms, 'number');
  const logged = server.lines.find((l) => l.msg === 'unhandled error');
  t.is(logged?.requestId, bugBody.error.requestId, 'the 500 is logged with its request id');
  t.deepEqual(
    server.metrics.map((m) => m.status),
    [200, 400, 429, 503, 500],
  );
  t.true(server.metrics.every((m) => m.route === '/probe' && m.method === 'POST'));
});

test('only a public route without params, query or parsed body can be served directly', (t) => {
  const log = pino({ level: 'silent' });
  const guarded = { ...probe, access: 'admin' } as RouteSpec;
  t.throws(() => directRoutes({ log, routes: [guarded] }), { message: /cannot be served directly/ });
  const withParams = { ...probe, path: '/probe/:id' } as RouteSpec;
  t.throws(() => directRoutes({ log, routes: [withParams] }), { message: /cannot be served directly/ });
});

test('the signed webhook route answers the same served directly and through Koa', async (t) => {
  const key = 'direct-route-webhook-key';
  const base = 'https://api.tally.test';
  const service = await startTestService({ SQUARE_WEBHOOK_SIGNATURE_KEY: key, API_BASE_URL: base });
  t.teardown(() => service.stop());
  const sign = (body: string) => squareSignature(key, `${base}/api/v1/webhooks/square`, body);
  const send = async (path: string, body: string, signature: string | null) => {
    const response = await fetch(`${service.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(signature === null ? {} : { 'x-square-hmacsha256-signature': signature }) },
      body,
    });
    return { status: response.status, type: response.headers.get('content-type'), body: await response.json() };
  };
  const payment = (eventId: string) => JSON.stringify(paymentWebhook({ eventId, merchantId: 'M-NOBODY', paymentId: `pay-${eventId}`, amount: 100 }));
  const noEventId = JSON.stringify({ ...JSON.parse(payment('x')), event_id: undefined });
  const cases: { name: string; body: (via: string) => string; signature: (body: string) => string | null; status: number }[] = [
    { name: 'stored', body: (via) => payment(`evt-direct-${via}`), signature: sign, status: 200 },
    { name: 'a duplicate', body: (via) => payment(`evt-direct-${via}`), signature: sign, status: 200 },
    { name: 'no signature', body: (via) => payment(`evt-unsigned-${via}`), signature: () => null, status: 401 },
    { name: 'a wrong signature', body: (via) => payment(`evt-wrong-${via}`), signature: () => Buffer.alloc(32).toString('base64'), status: 401 },
    { name: 'not JSON', body: () => '{"event_id":', signature: sign, status: 400 },
    { name: 'no event id', body: () => noEventId, signature: sign, status: 400 },
    { name: 'a NUL character', body: (via) => payment(`evt-nul-${via}`).replace('"COMPLETED"', '"COMPLETED\\u0000"'), signature: sign, status: 400 },
    { name: 'too large', body: () => 'x'.repeat(1024 * 1024 + 1), signature: sign, status: 413 },
  ];
  for (const c of cases) {
    const [a, b] = [c.body('a'), c.body('b')];
    const direct = await send('/api/v1/webhooks/square', a, c.signature(a));
    const koa = await send('/api/v1/webhooks/square?via=koa', b, c.signature(b));
    t.is(direct.status, c.status, `${c.name}: ${JSON.stringify(direct.body)}`);
    t.deepEqual(direct, koa, `${c.name}: the same answer both ways`);
  }
  const { rows } = await service.database.pool.query<{ id: string; deliveries: number }>(`SELECT id, deliveries FROM pos_webhook_events_raw WHERE id LIKE 'evt-direct-%' ORDER BY id`);
  t.deepEqual(rows, [
    { id: 'evt-direct-a', deliveries: 2 },
    { id: 'evt-direct-b', deliveries: 2 },
  ]);
});
