/**
 * Acknowledgements when the inbox cannot take inserts (a lock on it, a stalled server): every webhook is answered
 * within the wait limit, 503 with Retry-After (Square delivers it again), the instance says it is not ready while
 * webhooks wait, and once inserts go through again webhooks are stored as before. Found in review (2026-12-07): they
 * waited unanswered as long as the lock lasted, held in memory, while /readyz said ready.
 */
import test from 'ava';
import { startTestService, type TestService } from '../support/service.ts';
import { paymentWebhook, squareSignature } from '../support/square-webhooks.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';

const WEBHOOK_KEY = 'ack-bounds-webhook-key';
const API_BASE_URL = 'https://api.tally.test';
let service: TestService;

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, SQUARE_WEBHOOK_SIGNATURE_KEY: WEBHOOK_KEY, API_BASE_URL });
});
test.after.always(async () => {
  await service?.stop();
});

async function send(n: number) {
  const body = JSON.stringify(paymentWebhook({ eventId: `evt-bounds-${n}-${Date.now()}`, merchantId: 'M-BOUNDS', paymentId: `pay-bounds-${n}-${Date.now()}`, amount: 1000 }));
  const response = await fetch(`${service.url}/api/v1/webhooks/square`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-square-hmacsha256-signature': squareSignature(WEBHOOK_KEY, `${API_BASE_URL}/api/v1/webhooks/square`, body) },
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as { error?: { code: string; message: string } } };
}

test('inserts blocked by a lock on the inbox: webhooks answered 503 within the wait limit, the instance not ready meanwhile; stored again once it is let go', async (t) => {
  const holder = await service.database.pool.connect();
  t.teardown(() => holder.release());
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE pos_webhook_events_raw IN EXCLUSIVE MODE');
  const started = Date.now();
  const answers = Promise.all(Array.from({ length: 20 }, (_, i) => send(i)));
  const notReady = await eventually(
    async () => (await fetch(`${service.url}/readyz`)).json() as Promise<{ status: string; checks: Record<string, { ok: boolean; detail?: { waiting?: number } }> }>,
    (r) => r.checks.webhookAcknowledgements?.ok === false,
    { timeoutMs: 8_000, intervalMs: 200 },
  );
  t.is(notReady.status, 'not_ready');
  t.true((notReady.checks.webhookAcknowledgements!.detail?.waiting ?? 0) > 0);
  const answered = await answers;
  const tookMs = Date.now() - started;
  await holder.query('COMMIT');
  t.true(answered.every((a) => a.status === 503 && a.retryAfter !== null && a.body.error?.code === 'UNAVAILABLE'), JSON.stringify(answered.map((a) => a.status)));
  t.regex(answered.at(-1)!.body.error!.message, /could not be stored .*Square delivers it again/);
  t.true(tookMs < 12_000, `all answered in ${tookMs} ms, not when the lock ended`);
  const after = await send(100);
  t.is(after.status, 200);
  await eventually(async () => (await fetch(`${service.url}/readyz`)).status, (status) => status === 200, { timeoutMs: 5_000, intervalMs: 100 });
});
