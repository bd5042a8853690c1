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
import { v4 as uuid } from 'uuid';
import { z } from 'zod';
import { accessCheck, accessControl } from '../../http/access.ts';
import { createHttpApp } from '../../http/app.ts';
import { createTokenVerifier } from '../../http/auth.ts';
import { directRoutes, parseQuery } from '../../http/direct-route.ts';
import { HttpError } from '../../http/errors.ts';
import { failureLimiter } from '../../http/rate-limit.ts';
import { caller, tenantOf } from '../../http/request.ts';
import { buildRouter, route, type RouteSpec } from '../../http/routes/table.ts';
import { NotFound } from '../../domain/shared/errors.ts';
import type { UserState } from '../../domain/users/events.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
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

/** A logger whose lines, and request metrics whose records, the test reads. */
function captured() {
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
  const requestMetrics = { httpRequest: ({ method, route, status }: { method: string; route: string; status: number }) => metrics.push({ method, route, status }) };
  return { lines, metrics, log, requestMetrics };
}

async function serverWith(routes: RouteSpec[]) {
  const { lines, metrics, log, requestMetrics } = captured();
  const direct = directRoutes({ log, routes, metrics: requestMetrics });
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

test('parseQuery gives what Koa gives as ctx.query: one string per key, an array for a repeated one, in order, every key its own', (t) => {
  const koaQuery = (search: string) => {
    const params = new URLSearchParams(search);
    const query: Record<string, unknown> = {};
    for (const key of params.keys()) {
      const values = params.getAll(key);
      Object.defineProperty(query, key, { value: values.length <= 1 ? values[0] : values, writable: true, enumerable: true, configurable: true });
    }
    return query;
  };
  for (const search of ['', 'a=1', 'a=1&b=2&a=3&a=', 'x=%20y&&=z&__proto__=p&constructor=c', 'k&k&k=v', 'q=caf%C3%A9+au+lait']) {
    const parsed = parseQuery(search);
    t.deepEqual(parsed, koaQuery(search), search);
    t.deepEqual(Object.keys(parsed), Object.keys(koaQuery(search)), search);
  }
  t.true(Object.hasOwn(parseQuery('__proto__=p'), '__proto__'));
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

// ------------------------------------------------------------------ authenticated GETs served directly (`direct: true`)

const item = z.object({ tenantId: z.string(), itemId: z.string(), limit: z.number().nullable() });
const MISSING_ITEM = '00000000-0000-4000-8000-000000000000';

/** Guarded routes of every access level that authenticates, with params, `exists`, a query schema and a header. */
const guardedRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/t/me',
    access: 'user',
    direct: true,
    summary: 'test route',
    response: z.object({ userId: z.string(), role: z.string() }),
    handler: ({ ctx }) => ({ status: 200, body: { userId: caller(ctx).userId, role: caller(ctx).user?.role ?? 'none' } }),
  }),
  route({
    method: 'get',
    path: '/t/self',
    access: 'self',
    direct: true,
    summary: 'test route',
    response: z.object({ registered: z.boolean() }),
    handler: ({ ctx }) => ({ status: 200, body: { registered: caller(ctx).user !== undefined } }),
  }),
  route({
    method: 'get',
    path: '/t/items/:itemId',
    access: 'tenant',
    direct: true,
    summary: 'test route',
    params: z.object({ itemId: z.uuid({ error: 'itemId must be a uuid' }) }),
    query: z.object({ limit: z.coerce.number().int().min(1).max(10).optional() }),
    exists: ({ params }) => {
      if (params.itemId === MISSING_ITEM) throw new NotFound('Item');
    },
    response: item,
    handler: ({ params, query, ctx }) => ({ status: 200, body: { tenantId: tenantOf(ctx), itemId: params.itemId, limit: query.limit ?? null }, headers: { 'Cache-Control': 'no-store' } }),
  }),
  route({
    method: 'get',
    path: '/t/admin',
    access: 'admin',
    direct: true,
    summary: 'test route',
    response: z.array(z.string()),
    handler: ({ ctx }) => {
      ctx.log.info({ seen: true }, 'admin read');
      return { status: 200, body: ['ok'] };
    },
  }),
];

const user = (userId: string, role: 'consumer' | 'client' | 'admin', status: 'approved' | 'pending' | 'suspended', tenantId: string | null = null): UserState => ({
  status,
  userId,
  role,
  tenantId,
  businessName: null,
  emailHash: 'hash',
  emailVerified: true,
  phoneHash: null,
  phoneVerified: false,
  registeredAt: '2026-12-01T00:00:00.000Z',
  statusBeforeSuspension: status === 'suspended' ? 'approved' : null,
  erased: false,
});

const USERS = new Map<string, UserState>([
  ['consumer', user('consumer', 'consumer', 'approved')],
  ['suspended', user('suspended', 'consumer', 'suspended')],
  ['pending', user('pending', 'client', 'pending')],
  ['merchant', user('merchant', 'client', 'approved', 'tenant-1')],
  ['unprovisioned', user('unprovisioned', 'client', 'approved')],
  ['admin', user('admin', 'admin', 'approved')],
]);

/**
 * The same routes twice, each with its own failure limit and logs: once behind the direct path alone (anything it
 * leaves to Koa answers 418, so every other answer is the direct path's), once through the Koa app alone.
 */
async function guardedServers(failureLimit: number) {
  const make = async (mode: 'direct' | 'koa') => {
    const { lines, metrics, log, requestMetrics } = captured();
    const authorize = accessCheck({
      verifyToken: createTokenVerifier({ secret: TEST_JWT_SECRET }),
      loadUser: async (userId) => USERS.get(userId) ?? { status: 'unregistered' },
      workspaceExists: async (tenantId) => tenantId === 'tenant-1',
      cronSecret: 'cron-secret',
      failures: failureLimiter({ limit: failureLimit, windowMs: 60_000, now: () => 1_000_000 }),
    });
    const koa = createHttpApp({
      log,
      metrics: requestMetrics,
      routers: [buildRouter(guardedRoutes, { guard: accessControl(authorize), waitForPosition: async () => true, isPosition: () => true })],
    }).callback();
    const direct = directRoutes({ log, routes: guardedRoutes, authorize, metrics: requestMetrics });
    const server = http.createServer((request, response) => {
      if (mode === 'koa') void koa(request, response);
      else if (!direct(request, response)) response.writeHead(418).end('not direct');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { url, lines, metrics, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  };
  return { direct: await make('direct'), koa: await make('koa') };
}

/** What a client sees of an answer: status, every header but Date, and the body. */
async function seen(response: Response) {
  const headers = Object.fromEntries([...response.headers].filter(([name]) => name !== 'date'));
  return { status: response.status, headers, body: await response.text() };
}

test('authenticated GETs answer the same served directly and through Koa: tokens, suspension, roles, tenants, queries, params, rate limit', async (t) => {
  const tokens = {
    consumer: await tokenFor('consumer', 'c@example.test'),
    suspended: await tokenFor('suspended', 's@example.test'),
    pending: await tokenFor('pending', 'p@example.test'),
    merchant: await tokenFor('merchant', 'm@example.test'),
    unprovisioned: await tokenFor('unprovisioned', 'u@example.test'),
    admin: await tokenFor('admin', 'a@example.test'),
    unregistered: await tokenFor('nobody', 'n@example.test'),
    expired: await tokenFor('consumer', 'c@example.test', { ttl: '-10s' }),
    forged: await tokenFor('consumer', 'c@example.test', { secret: 'another-secret-that-is-long-enough-for-hs256-000' }),
  };
  const item = `/t/items/${'5f1d7c8e-2b1a-4c3d-9e8f-0a1b2c3d4e5f'}`;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const cases: { name: string; path: string; headers?: Record<string, string>; status: number }[] = [
    { name: 'a valid token', path: '/t/me', headers: { ...bearer(tokens.consumer), 'x-request-id': 'client-id-1' }, status: 200 },
    { name: 'no token', path: '/t/me', status: 401 },
    { name: 'not a bearer header', path: '/t/me', headers: { authorization: 'Basic abc' }, status: 401 },
    { name: 'a token not signed with our secret', path: '/t/me', headers: bearer(tokens.forged), status: 401 },
    { name: 'an expired token', path: '/t/me', headers: bearer(tokens.expired), status: 401 },
    { name: 'a malformed token', path: '/t/me', headers: bearer('not.a.jwt'), status: 401 },
    { name: 'an unregistered caller', path: '/t/me', headers: bearer(tokens.unregistered), status: 403 },
    { name: 'an unregistered caller on a self route', path: '/t/self', headers: bearer(tokens.unregistered), status: 200 },
    { name: 'a suspended user', path: '/t/me', headers: bearer(tokens.suspended), status: 403 },
    { name: 'a suspended user on a self route', path: '/t/self', headers: bearer(tokens.suspended), status: 200 },
    { name: 'a pending user', path: '/t/me', headers: bearer(tokens.pending), status: 403 },
    { name: 'the wrong role (consumer, admin route)', path: '/t/admin', headers: bearer(tokens.consumer), status: 403 },
    { name: 'the wrong role (consumer, tenant route)', path: item, headers: bearer(tokens.consumer), status: 403 },
    { name: 'an admin', path: '/t/admin', headers: bearer(tokens.admin), status: 200 },
    { name: "a merchant's tenant", path: `${item}?limit=3`, headers: bearer(tokens.merchant), status: 200 },
    { name: 'a merchant without a workspace', path: item, headers: bearer(tokens.unprovisioned), status: 403 },
    { name: 'an admin naming no tenant', path: item, headers: bearer(tokens.admin), status: 400 },
    { name: 'an admin naming an unknown tenant', path: `${item}?tenantId=tenant-2`, headers: bearer(tokens.admin), status: 404 },
    { name: 'an admin naming a tenant', path: `${item}?tenantId=tenant-1&limit=2`, headers: bearer(tokens.admin), status: 200 },
    { name: 'an admin naming two tenants', path: `${item}?tenantId=tenant-1&tenantId=tenant-2`, headers: bearer(tokens.admin), status: 400 },
    { name: 'a query failing its schema', path: `${item}?limit=abc`, headers: bearer(tokens.merchant), status: 400 },
    { name: 'a repeated query key', path: `${item}?limit=1&limit=2`, headers: bearer(tokens.merchant), status: 400 },
    { name: 'escaped query text', path: `${item}?limit=%31%30&x=a+b%26c`, headers: bearer(tokens.merchant), status: 200 },
    { name: 'a NUL in the query, before authentication', path: '/t/me?q=a%00b', status: 400 },
    { name: 'a param failing its schema', path: '/t/items/not-a-uuid', headers: bearer(tokens.merchant), status: 400 },
    { name: 'a missing resource', path: `/t/items/${MISSING_ITEM}?limit=abc`, headers: bearer(tokens.merchant), status: 404 },
  ];
  const failures = cases.filter((c) => c.status === 401).length;
  cases.push(
    { name: 'one failure past the limit', path: '/t/me', headers: bearer(tokens.forged), status: 429 },
    { name: 'a valid token past the limit', path: '/t/me', headers: bearer(tokens.consumer), status: 200 },
  );
  const servers = await guardedServers(failures);
  t.teardown(() => Promise.all([servers.direct.close(), servers.koa.close()]));

  for (const c of cases) {
    const [direct, koa] = await Promise.all([servers.direct, servers.koa].map(async (s) => seen(await fetch(`${s.url}${c.path}`, { headers: c.headers }))));
    t.is(direct!.status, c.status, `${c.name}: ${direct!.body}`);
    const generated = /^[0-9a-f-]{36}$/;
    if (!c.headers?.['x-request-id']) {
      t.regex(direct!.headers['x-request-id'] ?? '', generated);
      t.regex(koa!.headers['x-request-id'] ?? '', generated);
      const ids = [direct!, koa!].map((a) => a.headers['x-request-id']!);
      // A 500's body would carry its request id: none here, so the bodies compare as they are.
      t.false(direct!.body.includes(ids[0]!), c.name);
      direct!.headers['x-request-id'] = koa!.headers['x-request-id']!;
    }
    t.deepEqual(direct, koa, `${c.name}: the same status, headers and body both ways`);
  }
  t.is(servers.direct.metrics.length, cases.length);
  t.deepEqual(servers.direct.metrics, servers.koa.metrics, 'the same request metrics (method, route template, status)');
  const requestLines = (lines: Record<string, unknown>[]) =>
    lines.filter((l) => l.msg === 'request').map(({ method, path, status, userId, requestId }) => ({ method, path, status, userId, requestId: requestId === 'client-id-1' ? requestId : typeof requestId }));
  t.deepEqual(requestLines(servers.direct.lines), requestLines(servers.koa.lines), 'the same request lines (the caller’s user id once known)');
  const handlerLine = (lines: Record<string, unknown>[]) => lines.filter((l) => l.msg === 'admin read').map(({ userId, seen }) => ({ userId, seen }));
  t.deepEqual(handlerLine(servers.direct.lines), [{ userId: 'admin', seen: true }]);
  t.deepEqual(handlerLine(servers.direct.lines), handlerLine(servers.koa.lines), 'a handler’s own lines carry the same bindings');
});

test('what the direct path cannot answer as Koa would is left to Koa', async (t) => {
  const servers = await guardedServers(100);
  t.teardown(() => Promise.all([servers.direct.close(), servers.koa.close()]));
  const token = await tokenFor('consumer', 'c@example.test');
  const left = async (path: string, init: RequestInit = {}) => (await fetch(`${servers.direct.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } })).status;
  t.is(await left('/t/me'), 200, 'served directly');
  t.is(await left('/t/me/'), 418, 'a trailing slash');
  t.is(await left('/T/me'), 418, 'another case');
  t.is(await left('/t/me', { method: 'HEAD' }), 418, 'HEAD');
  t.is(await left('/t/me', { headers: { 'x-min-position': '1' } }), 418, 'read-your-writes');
  const withBody = await new Promise<number>((resolve, reject) => {
    const request = http.request(`${servers.direct.url}/t/me`, { method: 'GET', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain', 'content-length': '2' } }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.once('error', reject);
    request.end('hi');
  });
  t.is(withBody, 418, 'a body (Koa answers 415 for this one)');
  t.is(await left('/t/items/a%2Fb'), 418, 'an escaped param');
  t.throws(() => directRoutes({ log: pino({ level: 'silent' }), routes: guardedRoutes }), { message: /access checks were not given/ });
  const shadowing = route({ ...guardedRoutes[0]!, path: '/t/items/:other', direct: undefined, handler: () => ({ status: 200, body: { userId: '', role: '' } }) });
  t.throws(() => directRoutes({ log: pino({ level: 'silent' }), routes: [shadowing, ...guardedRoutes], authorize: async () => undefined }), {
    message: /GET \/t\/items\/:other, declared before it, could take its requests/,
  });
});

test('the wallet reads and GET /api/v1/me answer the same served directly and through Koa', async (t) => {
  const service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: 'ops@tally.test' });
  t.teardown(() => service.stop());
  const call = api(service.url);
  const registered = async (role: 'consumer' | 'client', email: string, extra: Record<string, unknown> = {}) => {
    const id = uuid();
    const token = await tokenFor(id, email);
    const response = await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
    t.true(response.status === 200 || response.status === 201, `register ${email}: ${response.status}`);
    return { id, token };
  };
  const admin = await registered('consumer', 'ops@tally.test');
  const merchant = await registered('client', 'owner@bakery.test', { businessName: 'Bakery' });
  t.is((await call('PATCH', `/api/v1/admin/users/${merchant.id}/approve`, { token: admin.token })).status, 200);
  const consumer = await registered('consumer', 'jane@example.test');
  const suspended = await registered('consumer', 'joe@example.test');
  t.is((await call('PATCH', `/api/v1/admin/users/${suspended.id}/suspend`, { token: admin.token, body: { reason: 'test' } })).status, 200);
  const head = await service.tally.store.headPosition();
  t.true(head !== undefined && (await service.tally.runner.waitForPosition(head, 30_000)));
  const tenantId = (await call('GET', '/api/v1/me', { token: merchant.token })).body.tenantId as string;
  const walletId = uuid();
  await service.database.pool.query(
    `INSERT INTO wallets (id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, created_at, updated_at) VALUES ($1, $2, $3, 120, 120, 0, now(), now())`,
    [walletId, tenantId, consumer.id],
  );
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const tokens = {
    expired: await tokenFor(consumer.id, 'jane@example.test', { ttl: '-10s' }),
    forged: await tokenFor(consumer.id, 'jane@example.test', { secret: 'another-secret-that-is-long-enough-for-hs256-000' }),
    unregistered: await tokenFor(uuid(), 'nobody@example.test'),
  };
  const cases: { name: string; path: string; headers?: Record<string, string>; status: number }[] = [
    { name: 'wallets, a valid token', path: '/api/v1/me/wallets', headers: bearer(consumer.token), status: 200 },
    { name: 'wallets, no token', path: '/api/v1/me/wallets', status: 401 },
    { name: 'wallets, a forged token', path: '/api/v1/me/wallets', headers: bearer(tokens.forged), status: 401 },
    { name: 'wallets, an expired token', path: '/api/v1/me/wallets', headers: bearer(tokens.expired), status: 401 },
    { name: 'wallets, a suspended user', path: '/api/v1/me/wallets', headers: bearer(suspended.token), status: 403 },
    { name: 'wallets, an unregistered caller', path: '/api/v1/me/wallets', headers: bearer(tokens.unregistered), status: 403 },
    { name: 'wallets, a merchant (none of its own)', path: '/api/v1/me/wallets', headers: bearer(merchant.token), status: 200 },
    { name: 'ledger', path: `/api/v1/me/wallets/${walletId}/ledger?limit=2`, headers: bearer(consumer.token), status: 200 },
    { name: 'ledger, a bad limit', path: `/api/v1/me/wallets/${walletId}/ledger?limit=abc`, headers: bearer(consumer.token), status: 400 },
    { name: 'ledger, not a wallet id', path: '/api/v1/me/wallets/abc/ledger', headers: bearer(consumer.token), status: 400 },
    { name: 'ledger, another’s wallet', path: `/api/v1/me/wallets/${walletId}/ledger`, headers: bearer(admin.token), status: 404 },
    { name: 'rewards', path: `/api/v1/me/wallets/${walletId}/rewards`, headers: bearer(consumer.token), status: 200 },
    { name: 'search, a merchant', path: '/api/v1/client/wallets?q=jane%40example.test', headers: bearer(merchant.token), status: 200 },
    { name: 'search, no q', path: '/api/v1/client/wallets', headers: bearer(merchant.token), status: 400 },
    { name: 'search, the wrong role', path: '/api/v1/client/wallets?q=jane%40example.test', headers: bearer(consumer.token), status: 403 },
    { name: 'search, an admin naming no tenant', path: '/api/v1/client/wallets?q=jane%40example.test', headers: bearer(admin.token), status: 400 },
    { name: 'search, an admin naming the tenant', path: `/api/v1/client/wallets?q=jane%40example.test&tenantId=${tenantId}`, headers: bearer(admin.token), status: 200 },
    { name: 'a wallet of the tenant', path: `/api/v1/client/wallets/${walletId}`, headers: bearer(merchant.token), status: 200 },
    { name: 'its ledger', path: `/api/v1/client/wallets/${walletId}/ledger`, headers: bearer(merchant.token), status: 200 },
    { name: 'its rewards', path: `/api/v1/client/wallets/${walletId}/rewards`, headers: bearer(merchant.token), status: 200 },
    { name: 'me', path: '/api/v1/me', headers: bearer(consumer.token), status: 200 },
    { name: 'me, a suspended user', path: '/api/v1/me', headers: bearer(suspended.token), status: 200 },
    { name: 'me, an unregistered caller', path: '/api/v1/me', headers: bearer(tokens.unregistered), status: 404 },
  ];
  // The same route through Koa: the router also takes the path with a trailing slash, which the direct path leaves to it.
  const throughKoa = (path: string) => path.replace(/(\?|$)/, '/$1');
  for (const c of cases) {
    const [direct, koa] = await Promise.all([c.path, throughKoa(c.path)].map(async (path) => seen(await fetch(`${service.url}${path}`, { headers: { ...c.headers, 'x-request-id': 'same-id' } }))));
    t.is(direct!.status, c.status, `${c.name}: ${direct!.body}`);
    t.deepEqual(direct, koa, `${c.name}: the same status, headers and body both ways`);
  }
});
