/**
 * Requests at the edges of the HTTP layer, found probing the live service (2026-12-07): a webhook posted to the path
 * in another spelling the router takes, subjects with characters beyond an id's, bodies that are not UTF-8, methods a
 * route does not take, unknown query keys, and the bounds of the parsers in front of the routes.
 */
import test from 'ava';
import { createHmac, randomBytes, randomUUID as uuid } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { startTestService, type TestService } from '../support/service.ts';
import { api, registeredAdmin, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { paymentWebhook, squareSignature } from '../support/square-webhooks.ts';

const WEBHOOK_KEY = 'request-edges-webhook-key';
const API_BASE_URL = 'https://api.tally.test';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
let service: TestService;
let call: ReturnType<typeof api>;
let admin: string;

test.before(async () => {
  service = await startTestService({
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: 'ops@edges.test',
    SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY,
    API_BASE_URL,
  });
  call = api(service.url);
  admin = await registeredAdmin(service.url, 'ops@edges.test');
});
test.after.always(async () => {
  await service?.stop();
});

/** Posts a raw webhook body, signed over the configured notification URL, to `path`. */
async function postWebhook(path: string, body: string, signature = squareSignature(WEBHOOK_KEY, NOTIFICATION_URL, body)) {
  const response = await fetch(`${service.url}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': signature },
  });
  return { status: response.status, body: await response.json() };
}

test('a signed webhook posted with a trailing slash or in another case is read raw and acknowledged, as the router takes it', async (t) => {
  for (const [n, path] of ['/api/v1/webhooks/square/', '/api/v1/webhooks/SQUARE', '/API/v1/Webhooks/Square/'].entries()) {
    const body = JSON.stringify(paymentWebhook({ eventId: `edge-slash-${n}`, merchantId: 'M-EDGES', paymentId: `pay-edge-${n}`, amount: 100 }));
    const answer = await postWebhook(path, body);
    t.is(answer.status, 200, `${path}: ${JSON.stringify(answer.body)}`);
    t.deepEqual(answer.body, { received: true, duplicate: false });
  }
  // Still signed over the configured URL: a forged signature is refused on the other spellings too.
  const forged = await postWebhook('/api/v1/webhooks/square/', '{}', 'AAAA');
  t.is(forged.status, 401);
});

test('a user whose token subject has characters beyond an id (/, space, +, é) is approved, suspended and erased by its URL-encoded id', async (t) => {
  const sub = 'a/b c+é';
  const merchant = await tokenFor(sub, 'owner@odd-subject.test');
  const registered = await call('POST', '/api/v1/me/register', { token: merchant, body: { role: 'client', businessName: 'Odd subject' } });
  t.is(registered.status, 201, JSON.stringify(registered.body));
  const path = `/api/v1/admin/users/${encodeURIComponent(sub)}`;
  const approved = await call('PATCH', `${path}/approve`, { token: admin });
  t.is(approved.status, 200, JSON.stringify(approved.body));
  t.is(approved.body.user.id, sub);
  const suspended = await call('PATCH', `${path}/suspend`, { token: admin, body: { reason: 'testing' } });
  t.is(suspended.status, 200, JSON.stringify(suspended.body));
  t.is(suspended.body.user.status, 'suspended');
  const erased = await call('DELETE', `${path}/personal-data`, { token: admin });
  t.is(erased.status, 200, JSON.stringify(erased.body));
  // The audit finds the administrator's writes by an actor holding such an id as well.
  const audit = await call('GET', `/api/v1/admin/audit?actor=${encodeURIComponent(`user:${sub}`)}`, { token: admin });
  t.is(audit.status, 200, JSON.stringify(audit.body));
  t.true(audit.body.items.length > 0);
});

test('a body in a Content-Encoding the service cannot undo is 415 naming the encodings it takes, not malformed JSON', async (t) => {
  const token = await tokenFor('compress-user', 'compress@edges.test');
  const answer = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' }, headers: { 'content-encoding': 'compress' } });
  t.is(answer.status, 415, JSON.stringify(answer.body));
  t.is(answer.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
  t.regex(answer.body.error.message, /compress.*gzip, deflate or br/);
  // A compressed body in an encoding it takes is read as any other.
  const gzipped = await fetch(`${service.url}/api/v1/me/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
    body: gzipSync(JSON.stringify({ role: 'consumer' })),
  });
  t.is(gzipped.status, 201);
});

test('a body that is not valid UTF-8 is 400 INVALID_JSON saying so, never read with U+FFFD in place of its bytes; a charset other than UTF-8 is 415', async (t) => {
  const token = await tokenFor('latin1-merchant', 'owner@latin1.test');
  const register = (body: Buffer<ArrayBuffer> | string, contentType = 'application/json') =>
    fetch(`${service.url}/api/v1/me/register`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body });
  // "Café" in Latin-1: the é is one byte, 0xE9, which UTF-8 never has alone.
  const latin1 = Buffer.concat([Buffer.from('{"role":"client","businessName":"Caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
  const notUtf8 = await register(latin1);
  t.is(notUtf8.status, 400);
  const answer = await notUtf8.json();
  t.is(answer.error.code, 'INVALID_JSON');
  t.regex(answer.error.message, /not valid UTF-8/);

  for (const charset of ['iso-8859-1', 'UTF-16']) {
    const declared = await register(JSON.stringify({ role: 'client', businessName: 'Café' }), `application/json; charset=${charset}`);
    t.is(declared.status, 415, charset);
    const refused = await declared.json();
    t.is(refused.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    t.regex(refused.error.message, new RegExp(`charset=${charset.toLowerCase()} is not accepted`));
  }
  const utf8 = await register(JSON.stringify({ role: 'client', businessName: 'Café' }), 'application/json; charset=UTF-8');
  t.is(utf8.status, 201);
  t.is((await utf8.json()).user.businessName, 'Café');

  // A signed webhook too: its body is stored as text, and read strictly.
  const event = Buffer.concat([Buffer.from(JSON.stringify(paymentWebhook({ eventId: 'latin1-1', merchantId: 'M-EDGES', paymentId: 'pay-latin1', amount: 100 })).slice(0, -1)), Buffer.from(',"note":"Caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
  const signature = createHmac('sha256', WEBHOOK_KEY).update(NOTIFICATION_URL).update(event).digest('base64');
  const webhook = await fetch(`${service.url}/api/v1/webhooks/square`, { method: 'POST', body: event, headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': signature } });
  t.is(webhook.status, 400);
  t.regex((await webhook.json()).error.message, /not valid UTF-8/);
});

test('a method a path does not take is 405 in the error shape naming the methods it takes (with Allow); one no route takes is 501 likewise', async (t) => {
  const put = await call('PUT', '/api/v1/me', { token: admin });
  t.is(put.status, 405);
  t.truthy(put.headers.get('allow'));
  t.regex(put.headers.get('allow')!, /GET/);
  t.is(put.body.error.code, 'METHOD_NOT_ALLOWED');
  t.is(put.body.error.message, `PUT is not allowed on /api/v1/me: use ${put.headers.get('allow')}`);
  t.regex(put.headers.get('content-type') ?? '', /application\/json/);

  const unknown = await call('PROPFIND', '/api/v1/me', { token: admin });
  t.is(unknown.status, 501);
  t.is(unknown.body.error.code, 'NOT_IMPLEMENTED');
  t.regex(unknown.body.error.message, /^PROPFIND is not a method this service answers: use .*GET/);
});

test('a validation message names the part of the request first, and the keys it does not accept', async (t) => {
  const audit = await call('GET', '/api/v1/admin/audit?walletid=x', { token: admin });
  t.is(audit.status, 400);
  t.regex(audit.body.error.message, /query: unknown parameter "walletid"/);
  t.notRegex(audit.body.error.message, /body/);
  const limit = await call('GET', '/api/v1/admin/audit?limit=1000', { token: admin });
  t.regex(limit.body.error.message, /query\.limit: /);
  const body = await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer', extra: 1, other: 2 } });
  t.is(body.status, 400);
  t.regex(body.body.error.message, /body: unknown fields "extra", "other"/);
  const path = await call('PATCH', `/api/v1/admin/users/${'x'.repeat(201)}/approve`, { token: admin });
  t.regex(path.body.error.message, /path\.userId: userId must be at most 200 characters/);
});

test('a signed webhook whose ids are too long to index is 400 naming the field, not a 500', async (t) => {
  // Random: a repeated character compresses below the index's row limit, as a real long id would not.
  const long = randomBytes(3500).toString('hex');
  const cases: [string, (payload: any) => void][] = [
    ['event_id', (p) => (p.event_id = long)],
    ['merchant_id', (p) => (p.merchant_id = long)],
    ['data.id', (p) => (p.data.id = long)],
  ];
  for (const [field, spoil] of cases) {
    const payload = paymentWebhook({ eventId: `long-${field}`, merchantId: 'M-EDGES', paymentId: `pay-long-${field}`, amount: 100 });
    spoil(payload);
    const answer = await postWebhook('/api/v1/webhooks/square', JSON.stringify(payload));
    t.is(answer.status, 400, `${field}: ${JSON.stringify(answer.body)}`);
    t.regex(answer.body.error.message, new RegExp(`${field.replace('.', '\\.')} must be at most 200 characters`));
  }
});

test('limit is a whole number in decimal digits, blank for its default, given once; a user search without q says q is required, and with a long one says how long', async (t) => {
  const audit = (query: string) => call('GET', `/api/v1/admin/audit${query}`, { token: admin });
  for (const query of ['?limit=', '?limit=%20']) t.is((await audit(query)).status, 200, query);
  for (const query of ['?limit=1e1', '?limit=0x10', '?limit=%2B5', '?limit=2.5']) {
    const refused = await audit(query);
    t.is(refused.status, 400, query);
    t.regex(refused.body.error.message, /query\.limit: limit must be a whole number from 1 to 200, in decimal digits/, query);
  }
  t.regex((await audit('?limit=1&limit=2')).body.error.message, /limit must be given once/);
  t.is((await audit('?limit=2')).body.items.length <= 2, true);
  for (const query of ['', '?q=']) {
    const search = await call('GET', `/api/v1/admin/users/search${query}`, { token: admin });
    t.is(search.status, 400, query);
    t.regex(search.body.error.message, /q is required/, query);
  }
  // A q over 200 characters was answered "q is required" (the schema's error callback replaced the max's message).
  const long = await call('GET', `/api/v1/admin/users/search?q=${'a'.repeat(600)}`, { token: admin });
  t.is(long.status, 400);
  t.regex(long.body.error.message, /query\.q: q must be at most 200 characters/);
  t.notRegex(long.body.error.message, /q is required/);
});

test.serial('a blank cursor is the first page on every paged list, as a blank limit is its default; a cursor given twice says so', async (t) => {
  const lists = [
    '/api/v1/admin/audit',
    `/api/v1/admin/audit/streams/wallet-${uuid()}`,
    `/api/v1/admin/audit/correlations/${uuid()}`,
    '/api/v1/admin/webhooks',
    '/api/v1/admin/connections',
  ];
  // The read models caught up first: the audit trail's newest rows do not move between the two reads.
  const head = await service.tally.store.headPosition();
  if (head) await service.tally.runner.waitForPosition(head, 10_000);
  for (const path of lists) {
    const first = await call('GET', `${path}?limit=2`, { token: admin });
    const blank = await call('GET', `${path}?cursor=&limit=2`, { token: admin });
    t.is(blank.status, first.status, path);
    // The same rows (their state may move between the two reads: a webhook processed meanwhile).
    const ids = (body: { items?: Record<string, unknown>[] }) => body.items?.map((i) => i.eventId ?? i.id ?? i.tenantId);
    t.deepEqual(ids(blank.body), ids(first.body), path);
    const twice = await call('GET', `${path}?cursor=a&cursor=b`, { token: admin });
    t.is(twice.status, 400, path);
    t.regex(twice.body.error.message, /query\.cursor: cursor must be given once/, path);
  }
});

test("the webhook lists refuse a misspelt filter and a from after to; the audit trail's unknown tenantId is a 404, as the webhooks'", async (t) => {
  const sub = `strict-${uuid()}`;
  const merchant = await tokenFor(sub, `${sub}@strict.test`);
  t.is((await call('POST', '/api/v1/me/register', { token: merchant, body: { role: 'client', businessName: 'Strict' } })).status, 201);
  t.is((await call('PATCH', `/api/v1/admin/users/${sub}/approve`, { token: admin })).status, 200);
  const misspelt = await call('GET', '/api/v1/client/webhooks?outcom=credited', { token: merchant });
  t.is(misspelt.status, 400);
  t.regex(misspelt.body.error.message, /query: unknown parameter "outcom"/);
  for (const [path, token] of [['/api/v1/client/webhooks', merchant], ['/api/v1/admin/webhooks', admin]] as const) {
    const backwards = await call('GET', `${path}?from=2026-12-07T00:00:00Z&to=2026-12-01T00:00:00Z`, { token });
    t.is(backwards.status, 400, path);
    t.regex(backwards.body.error.message, /from must be before to/, path);
  }
  const unknown = await call('GET', '/api/v1/admin/audit?tenantId=no-such-tenant', { token: admin });
  t.is(unknown.status, 404);
  t.regex(unknown.body.error.message, /No workspace has tenantId no-such-tenant/);
});

test("the OpenAPI document says a paged list's limit range and default, and that the ledger CSV's bare dates are UTC days", async (t) => {
  const document = (await (await fetch(`${service.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { parameters: { name: string; in: string; schema: { description?: string } }[] }>>;
  };
  const parameter = (path: string, name: string) => document.paths[path]!.get!.parameters.find((p) => p.in === 'query' && p.name === name)!.schema;
  t.regex(parameter('/api/v1/admin/audit', 'limit').description ?? '', /from 1 to 200; 50 when not given or blank/);
  t.regex(parameter('/api/v1/client/ledger.csv', 'from').description ?? '', /a UTC day/);
  t.regex(parameter('/api/v1/client/ledger.csv', 'to').description ?? '', /a UTC day/);
});

test("the OpenAPI document lists a wrapped query's parameters, the administrators' tenantId on tenant routes and the webhook's signature header", async (t) => {
  const document = (await (await fetch(`${service.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { parameters: { name: string; in: string; required: boolean }[] }>> };
  const names = (path: string, method: string, where: string) => document.paths[path]![method]!.parameters.filter((p) => p.in === where).map((p) => p.name);
  t.deepEqual(names('/api/v1/oauth/square/callback', 'get', 'query').sort(), ['code', 'error', 'error_description', 'state']);
  t.true(names('/api/v1/client/adjustment-limit', 'get', 'query').includes('tenantId'));
  t.false(names('/api/v1/me', 'get', 'query').includes('tenantId'));
  const signature = document.paths['/api/v1/webhooks/square']!.post!.parameters.find((p) => p.in === 'header');
  t.like(signature, { name: 'x-square-hmacsha256-signature', required: true });
});

test("an administrator's ?tenantId= that is missing, repeated or malformed is a 400 saying which", async (t) => {
  const limit = (query: string) => call('GET', `/api/v1/client/adjustment-limit${query}`, { token: admin });
  for (const query of ['', '?tenantId=']) t.regex((await limit(query)).body.error.message, /Administrators must name the tenant/, query);
  const repeated = await limit('?tenantId=a&tenantId=b');
  t.is(repeated.status, 400);
  t.regex(repeated.body.error.message, /tenantId must be given once/);
  const malformed = await limit('?tenantId=a%20b');
  t.is(malformed.status, 400);
  t.regex(malformed.body.error.message, /tenantId must be a tenant id/);
});

test('a body with a key that reaches the prototype (__proto__, plain or escaped, or constructor.prototype) is 400 INVALID_JSON, as before the parser was replaced', async (t) => {
  const token = await tokenFor('proto-user', 'proto@edges.test');
  for (const raw of ['{"role":"consumer","__proto__":{"admin":true}}', '{"role":"consumer","\\u005f_proto__":{"admin":true}}', '{"role":"consumer","constructor":{"prototype":{}}}']) {
    const answer = await call('POST', '/api/v1/me/register', { token, body: raw });
    t.is(answer.status, 400, raw);
    t.is(answer.body.error.code, 'INVALID_JSON', raw);
  }
});

test('a route that takes no body refuses one (a reason sent to approve would be dropped unread); none, or {}, is taken', async (t) => {
  const merchant = await tokenFor('no-body-merchant', 'owner@no-body.test');
  await call('POST', '/api/v1/me/register', { token: merchant, body: { role: 'client', businessName: 'No body' } });
  const refused = await call('PATCH', '/api/v1/admin/users/no-body-merchant/approve', { token: admin, body: { reason: 'looks fine' } });
  t.is(refused.status, 400);
  t.regex(refused.body.error.message, /body: this route takes no body/);
  const empty = await call('PATCH', '/api/v1/admin/users/no-body-merchant/approve', { token: admin, body: {} });
  t.is(empty.status, 200);
  const none = await call('PATCH', '/api/v1/admin/users/no-body-merchant/approve', { token: admin });
  t.is(none.status, 200, 'approving again is idempotent');
});

test('a body of more values or deeper nesting than any route takes is refused before it is walked, whoever sends it and wherever (413 and 400 naming the bound)', async (t) => {
  // 1 KB compressed, 1 MB of `[0,0,…]` decompressed: parsed and checked, it held the event loop for seconds before
  // the router (a path no route takes) or sign-in was reached.
  const post = (path: string, json: string) =>
    fetch(`${service.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(json) }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const flat = await post('/no/such/route', `[${'0,'.repeat(499_999)}0]`);
  t.is(flat.status, 413);
  t.is(flat.body.error.code, 'PAYLOAD_TOO_LARGE');
  t.regex(flat.body.error.message, /more than 10,000 values/);
  const deep = await post('/api/v1/me/register', `${'['.repeat(400_000)}${']'.repeat(400_000)}`);
  t.is(deep.status, 400);
  t.regex(deep.body.error.message, /more than 32 levels deep/);
  // Brackets, commas and quotes inside strings are text, not structure; a body at the bounds is read.
  const token = await tokenFor('bounded-user', 'bounded@edges.test');
  const inText = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer', unknownKey: `${'[{,"'.repeat(20_000)}` } });
  t.is(inText.status, 400);
  t.regex(inText.body.error.message, /unknownKey/, 'the body was parsed, and refused by the route for its key');
  const nested = (levels: number) => `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
  const atDepth = await call('POST', '/api/v1/me/register', { token, body: `{"role":"consumer","x":${nested(31)}}` });
  t.regex(atDepth.body.error.message, /\bx\b/, 'parsed (32 levels), refused by the route for its key');
});
