/**
 * Hostile input at the webhook endpoint: malformed JSON, wrong types, huge numbers, deep nesting, missing
 * fields, valid signatures over odd payloads. Never a 500, never a stored effect from an unsigned body,
 * never a crash; the worker settles every stored odd payload with an outcome.
 */
import test from 'ava';
import fc from 'fast-check';
import { startTestService, type TestService } from '../support/service.ts';
import { eventually } from '../support/eventually.ts';
import { squarePayload, squareSignature } from '../support/square-webhooks.ts';

const KEY = 'fuzz-webhook-key';
const API_BASE_URL = 'https://api.fuzz.test';
const NOTIFICATION_URL = `${API_BASE_URL}/api/v1/webhooks/square`;
let service: TestService;

test.before(async () => {
  service = await startTestService({ SQUARE_WEBHOOK_SIGNATURE_KEY: KEY, API_BASE_URL, LOG_LEVEL: 'warn' });
});
test.after.always(async () => {
  await service?.stop();
});

async function post(body: string, signature: string | null) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signature !== null) headers['x-square-hmacsha256-signature'] = signature;
  const response = await fetch(`${service.url}/api/v1/webhooks/square`, { method: 'POST', headers, body });
  const text = await response.text();
  return { status: response.status, text };
}

const inboxCount = async () => Number((await service.database.pool.query<{ n: string }>('SELECT count(*) AS n FROM pos_webhook_events_raw')).rows[0]!.n);

/** Bodies that look more or less like Square's envelope, with every field possibly of the wrong type. */
const anything = fc.oneof(fc.jsonValue(), fc.double(), fc.bigInt().map(String), fc.string({ maxLength: 300 }));
const envelope = fc.record(
  {
    event_id: fc.oneof(fc.uuid(), anything),
    type: fc.oneof(fc.constantFrom('payment.updated', 'payment.created', 'refund.updated', 'oauth.authorization.revoked', 'customer.created', 'x'), anything),
    merchant_id: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), anything),
    created_at: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), anything),
    data: fc.oneof(
      fc.record({
        type: fc.constantFrom('payment', 'refund'),
        id: fc.string(),
        object: fc.record({
          payment: fc.record(
            {
              id: fc.string(),
              status: fc.oneof(fc.constantFrom('COMPLETED', 'APPROVED'), anything),
              amount_money: fc.oneof(fc.record({ amount: fc.oneof(fc.integer(), fc.double(), fc.constant(1e308), fc.constant(-1), anything), currency: fc.string() }), anything),
              location_id: anything,
              updated_at: anything,
            },
            { requiredKeys: [] },
          ),
        }),
      }),
      anything,
    ),
  },
  { requiredKeys: [] },
);
const deep = fc.integer({ min: 1, max: 5000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth));
/** Square's own example of a type we do not act on, with odd extra fields and odd ids: accepted and ignored. */
const validOther = fc
  .record({ eventId: fc.uuid(), merchant: fc.string({ minLength: 1, maxLength: 40 }), extra: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue()) })
  .map(({ eventId, merchant, extra }) => JSON.stringify({ ...extra, ...squarePayload('customer.created.json'), event_id: eventId, merchant_id: merchant }));
const body = fc.oneof(
  validOther,
  envelope.map((e) => JSON.stringify(e)),
  anything.map((v) => JSON.stringify(v) ?? 'null'),
  fc.string({ maxLength: 500 }),
  deep,
);

test.serial('signed odd payloads get 200 or a 400 that says what is wrong, never a 500', async (t) => {
  let cases = 0;
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(body, async (text) => {
      cases++;
      const response = await post(text, squareSignature(KEY, NOTIFICATION_URL, text));
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status === 400) return JSON.parse(response.text).error.message.length > 0;
      return response.status === 200 || response.status === 413;
    }),
    { numRuns: 400 },
  );
  t.log(`${cases} signed cases: ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.true((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, 'both accepted and refused bodies were generated');
});

test.serial('unsigned or wrongly signed bodies are 401 and store nothing', async (t) => {
  const before = await inboxCount();
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(body, fc.oneof(fc.constant(null), fc.base64String(), fc.string()), async (text, signature) => {
      cases++;
      const response = await post(text, signature);
      return response.status === 401;
    }),
    { numRuns: 200 },
  );
  t.is(await inboxCount(), before, 'nothing stored from an unsigned body');
  t.log(`${cases} unsigned cases`);
});

test.serial('after the fuzzing the service is alive and every stored webhook is settled with an outcome', async (t) => {
  t.is((await fetch(`${service.url}/healthz`)).status, 200);
  const pending = await eventually(
    async () => Number((await service.database.pool.query<{ n: string }>('SELECT count(*) AS n FROM pos_webhook_events_raw WHERE NOT processed')).rows[0]!.n),
    (n) => n === 0,
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  t.is(pending, 0);
  const outcomes = await service.database.pool.query<{ outcome: string }>('SELECT DISTINCT outcome FROM pos_webhook_events_raw');
  t.true(outcomes.rows.every((r) => ['ignored', 'no_connection', 'revoked', 'failed'].includes(r.outcome)), JSON.stringify(outcomes.rows));
});
