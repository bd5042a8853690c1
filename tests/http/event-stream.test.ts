/**
 * The live event tail (GET /api/v1/admin/events/stream) over a real socket: admins only, the audit trail's filters
 * (unknown ones refused), events as they are appended, resuming after Last-Event-ID without repeating or skipping,
 * and a client that stops reading dropped once its queue is full while a reading client gets every event.
 */
import test from 'ava';
import net from 'node:net';
import { decodeJwt } from 'jose';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import type { Position } from '../../domain/ports/event-store.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { eventually, until } from '../support/eventually.ts';

const ADMIN_EMAIL = 'root@tail.test';
const PATH = '/api/v1/admin/events/stream';

let service: TestService;
let call: ReturnType<typeof api>;
let admin: string;
const adminId = `admin-${uuid()}`;
const SECOND_ADMIN_EMAIL = 'second@tail.test';

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: `${ADMIN_EMAIL},${SECOND_ADMIN_EMAIL}` });
  call = api(service.url);
  admin = await tokenFor(adminId, ADMIN_EMAIL);
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
});
test.after.always(async () => {
  await service?.stop();
});

interface Frame {
  id: string;
  event: { type: string; stream: string; position: string; data: any };
}

/** An SSE client on fetch: frames as they arrive. */
async function tail(query: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(`${service.url}${PATH}${query}`, { headers: { authorization: `Bearer ${admin}`, ...headers }, signal: controller.signal });
  const frames: Frame[] = [];
  let text = '';
  let received = '';
  let ended = false;
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        const decoded = decoder.decode(chunk, { stream: true });
        received += decoded;
        text += decoded;
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const id = /^id: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (id && data) frames.push({ id, event: JSON.parse(data) });
        }
      }
    } catch {
      // aborted by the test, or cut by the server
    }
    ended = true;
  })();
  return {
    response,
    frames,
    /** Everything the server sent so far, as text. */
    received: () => received,
    /** Whether the server ended the answer (or the test closed it). */
    ended: () => ended,
    /** Until `count` frames have come (a timeout fails the test: the assertions after it could hold on fewer). */
    async waitFor(count: number) {
      return until(async () => frames.length, (n) => n >= count, { timeoutMs: 30_000, intervalMs: 20 });
    },
    async close() {
      controller.abort();
      await reading;
    },
  };
}

async function registerConsumer(): Promise<{ userId: string; position: string }> {
  const userId = uuid();
  const token = await tokenFor(userId, `${userId.slice(0, 8)}@tail.test`);
  const registered = await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } });
  return { userId, position: registered.body.position };
}

test.serial('admins only; unknown filters and a bad Last-Event-ID are 400 and say what to fix; an unknown tenant is 404', async (t) => {
  t.is((await call('GET', PATH)).status, 401);
  const consumer = await tokenFor(uuid(), 'someone@tail.test');
  await call('POST', '/api/v1/me/register', { token: consumer, body: { role: 'consumer' } });
  t.is((await call('GET', PATH, { token: consumer })).status, 403);
  const unknown = await call('GET', `${PATH}?colour=red`, { token: admin });
  t.is(unknown.status, 400);
  t.regex(JSON.stringify(unknown.body), /colour/);
  t.is((await call('GET', `${PATH}?type=not%20a%20type`, { token: admin })).status, 400);
  // A tenant that has no workspace is a 404, as on the audit trail, not a tail that streams nothing for good.
  const nowhere = uuid();
  const noWorkspace = await fetch(`${service.url}${PATH}?tenantId=${nowhere}`, { headers: { authorization: `Bearer ${admin}` } });
  if (noWorkspace.status !== 404) await noWorkspace.body?.cancel();
  t.is(noWorkspace.status, 404);
  t.like(noWorkspace.status === 404 ? await noWorkspace.json() : {}, { error: { code: 'NOT_FOUND', message: `No workspace has tenantId ${nowhere}` } });
  const badResume = await call('GET', PATH, { token: admin, headers: { 'last-event-id': 'yesterday' } });
  t.is(badResume.status, 400);
  t.regex(badResume.body.error.message, /Last-Event-ID/);
  // Well formed but after the newest event (another database's, a typo): never sent, so a 400, not a tail that waits for it for good.
  for (const neverSent of ['99999999999999999999999.1', '999999999.0']) {
    // fetch resolves at the status: a tail opened instead is seen at once, and ended.
    const beyond = await fetch(`${service.url}${PATH}`, { headers: { authorization: `Bearer ${admin}`, 'last-event-id': neverSent } });
    if (beyond.status !== 400) await beyond.body?.cancel();
    t.is(beyond.status, 400, neverSent);
    t.regex(beyond.status === 400 ? ((await beyond.json()) as { error: { message: string } }).error.message : '', /is after the newest event .*this stream never sent it/, neverSent);
  }
});

test.serial('events arrive as they are appended, filtered; Last-Event-ID resumes after that event, with nothing repeated or skipped', async (t) => {
  const live = await tail('?type=UserRegistered');
  t.is(live.response.status, 200);
  t.regex(live.response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const first = await registerConsumer();
  const second = await registerConsumer();
  await live.waitFor(2);
  t.deepEqual(live.frames.map((f) => f.event.stream), [`user-${first.userId}`, `user-${second.userId}`]);
  t.true(live.frames.every((f) => f.event.type === 'UserRegistered' && f.id === f.event.position));
  // A registration appends UserRegistered and, for a verified email, UserEmailVerified after it: the write answers
  // the position of its last event, the frame carries the UserRegistered event's own.
  const [registered] = await service.tally.store.readStream(`user-${first.userId}`);
  t.is(live.frames[0]!.id, String(registered?.position), 'the id is the event\'s position in the feed');
  t.true(registered !== undefined && service.tally.store.isAfter(first.position as Position, registered.position), 'the write answered the position of its last event');
  await live.close();

  // Missed while away: the third registration. Resume after the first one: the second and third, in order.
  const third = await registerConsumer();
  const resumed = await tail(`?type=UserRegistered`, { 'last-event-id': first.position });
  const fourth = await registerConsumer();
  await resumed.waitFor(3);
  t.deepEqual(
    resumed.frames.map((f) => f.event.stream),
    [`user-${second.userId}`, `user-${third.userId}`, `user-${fourth.userId}`],
  );
  await resumed.close();

  // One stream, resumed: every event of the fourth user's stream (all appended after the first), and nothing else.
  const fourthEvents = await service.tally.store.readStream(`user-${fourth.userId}`);
  const oneStream = await tail(`?stream=user-${fourth.userId}`, { 'last-event-id': first.position });
  await oneStream.waitFor(fourthEvents.length);
  t.deepEqual(
    oneStream.frames.map((f) => [f.event.stream, f.event.type]),
    fourthEvents.map((e) => [`user-${fourth.userId}`, e.type]),
  );
  await oneStream.close();
});

test.serial("an event whose data holds U+2028 or U+2029 arrives intact: the frame's JSON escapes them, so no line-based reader cuts it", async (t) => {
  const stream = `probe-${uuid()}`;
  const live = await tail(`?stream=${stream}`);
  t.is(live.response.status, 200);
  const data = { note: 'line\u2028separator', paragraph: 'one\u2029two' };
  await service.tally.store.append(stream, [{ id: uuid(), type: 'SeparatorProbe', data }], 'no_stream');
  // The helper reads frames with `/^data: (.*)$/m`, as the console did: a raw separator would cut the line there.
  await live.waitFor(1);
  t.deepEqual(live.frames[0]!.event.data, data);
  t.false(/[\u2028\u2029]/.test(live.received()), 'the separators are sent as \\u2028 and \\u2029');
  t.true(live.received().includes('line\\u2028separator') && live.received().includes('one\\u2029two'));
  await live.close();
});

test.serial('a client that stops reading is dropped once its queue passes the bound; a reading client still gets every event', async (t) => {
  t.timeout(120_000);
  const stream = `tail-padding-${uuid()}`;
  const reader = await tail(`?stream=${stream}`);
  // The stuck client: a raw socket that sends its request and never reads a byte of the answer.
  const stuck = net.connect(Number(new URL(service.url).port), new URL(service.url).hostname);
  await new Promise<void>((resolve) => stuck.once('connect', () => resolve()));
  stuck.pause();
  let stuckClosed = false;
  stuck.on('close', () => (stuckClosed = true));
  stuck.on('error', () => undefined);
  stuck.write(`GET ${PATH}?stream=${stream} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${admin}\r\nAccept: text/event-stream\r\n\r\n`);
  // Its answer has begun (the headers sit unread in its buffer): it has joined the tail.
  t.true(await eventually(async () => stuck.readableLength > 0, Boolean, { timeoutMs: 10_000, intervalMs: 20 }));

  // 24 MB of events, in appends of 300 kB: far more than the socket buffers between the two ends and the 4 MiB queue bound together.
  const padding = 'x'.repeat(60_000);
  const count = 400;
  for (let i = 0; i < count; i += 5) {
    await service.tally.store.append(
      stream,
      Array.from({ length: 5 }, (_, k) => ({ id: uuid(), type: 'TailPadding', data: { n: i + k, padding }, metadata: {} })),
      'any',
    );
    // The reading client keeps up (it is only ever one append behind), so only the stuck one can pass the bound.
    await reader.waitFor(i + 5);
  }
  const dropped = await eventually(async () => service.logs.some((l) => l.includes('event tail: client dropped')), Boolean, { timeoutMs: 30_000 });
  t.true(dropped, 'the server logged the drop');
  // Counted as the server's doing, not as a client that left nor as a failure.
  const counted = await eventually(
    async () => (await (await fetch(`${service.url}/metrics`)).text()).match(/^tally_http_answers_cut_total\{method="GET",route="\/api\/v1\/admin\/events\/stream",cause="(\w+)"\} \d+$/gm) ?? [],
    (lines) => lines.some((l) => l.includes('cause="dropped"')),
    { timeoutMs: 10_000 },
  );
  t.true(counted.some((l) => l.includes('cause="dropped"')), counted.join('\n'));
  t.false(counted.some((l) => l.includes('cause="failed"')), counted.join('\n'));
  // Reading again, the stuck client finds what was in flight, then the end of the connection the server closed.
  stuck.resume();
  t.true(await eventually(async () => stuckClosed, Boolean, { timeoutMs: 30_000 }), 'the server closed the stuck connection');
  await reader.waitFor(count);
  t.is(reader.frames.length, count, 'the reading client got every event, in order');
  t.deepEqual(reader.frames.map((f) => f.event.data.n), Array.from({ length: count }, (_, i) => i));
  await reader.close();
  stuck.destroy();
});

test.serial('a tail ends once its admin is suspended, or once the token it was opened with expires', async (t) => {
  t.timeout(60_000);
  // A second admin opens a tail; the first suspends them: the open answer ends too (checked again every 5 s).
  const secondId = `admin-${uuid()}`;
  const second = await tokenFor(secondId, SECOND_ADMIN_EMAIL);
  t.is((await call('POST', '/api/v1/me/register', { token: second, body: { role: 'consumer' } })).status, 201);
  const theirs = await tail('?type=UserRegistered', { authorization: `Bearer ${second}` });
  t.is(theirs.response.status, 200);
  const suspended = await call('PATCH', `/api/v1/admin/users/${secondId}/suspend`, { token: admin, body: { reason: 'left the company' } });
  t.is(suspended.status, 200);
  t.true(await eventually(async () => theirs.ended(), Boolean, { timeoutMs: 15_000, intervalMs: 50 }), 'the suspended admin\'s tail ended');
  t.true(service.logs.some((line) => line.includes('access withdrawn') && line.includes('suspended')));

  // A token valid for 3 to 4 s more (its expiry is in whole seconds), ending before the first access recheck, 5 s
  // after the tail opens: the tail is open well inside its validity, and ends at that recheck.
  const shortLived = await tokenFor(adminId, ADMIN_EMAIL, { ttl: '4s' });
  const expiresAt = (decodeJwt(shortLived).exp ?? 0) * 1000;
  const mine = await tail('?type=UserRegistered', { authorization: `Bearer ${shortLived}` });
  t.is(mine.response.status, 200);
  t.true(await eventually(async () => mine.ended(), Boolean, { timeoutMs: 15_000, intervalMs: 50 }), 'the tail of the expired token ended');
  t.true(Date.now() >= expiresAt, `not before the token expired (${expiresAt - Date.now()} ms early)`);
  const reader = await tail('?type=UserRegistered');
  t.false(reader.ended(), 'a tail with a valid token goes on');
  await reader.close();
});
