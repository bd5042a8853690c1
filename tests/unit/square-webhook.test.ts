/**
 * Square webhook parsing, against every example payload Square publishes (and the one synthetic variant), then
 * against malformed bodies. The payloads are copied from shared/square/payloads into tests/fixtures/square.
 */
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidSquareWebhook, parseSquareWebhook, type SquareWebhookEvent } from '../../domain/square/webhook.ts';

/** Square's published example payloads, copied from shared/square/payloads (synthetic/ says so in its name). */
const PAYLOADS = fileURLToPath(new URL('../fixtures/square', import.meta.url));

async function payloadFiles(): Promise<string[]> {
  const top = (await readdir(PAYLOADS)).filter((f) => f.endsWith('.json'));
  const synthetic = (await readdir(path.join(PAYLOADS, 'synthetic'))).filter((f) => f.endsWith('.json')).map((f) => `synthetic/${f}`);
  return [...top, ...synthetic];
}

const raw = async (file: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path.join(PAYLOADS, file), 'utf8'));
const parsed = async (file: string) => parseSquareWebhook(await raw(file));

function as<K extends SquareWebhookEvent['kind']>(event: SquareWebhookEvent, kind: K): Extract<SquareWebhookEvent, { kind: K }> {
  if (event.kind !== kind) throw new Error(`expected a ${kind} event, got ${event.kind}`);
  return event as Extract<SquareWebhookEvent, { kind: K }>;
}

/** Deep copy of a payload with one change, for the malformed cases. */
async function variant(file: string, change: (body: any) => void): Promise<unknown> {
  const body = await raw(file);
  change(body);
  return body;
}

const problems = (body: unknown) => {
  const error = (() => {
    try {
      parseSquareWebhook(body);
    } catch (e) {
      return e;
    }
    throw new Error('expected the body to be rejected');
  })();
  if (!(error instanceof InvalidSquareWebhook)) throw error;
  return error.problems;
};

test('every example payload parses, and its envelope is carried over as sent', async (t) => {
  const files = await payloadFiles();
  t.true(files.length >= 12, `found ${files.length} payloads`);
  const kinds: Record<string, string> = {};
  for (const file of files) {
    const body = await raw(file);
    const event = parseSquareWebhook(body);
    const data = body.data as Record<string, unknown>;
    t.like(event, { eventId: body.event_id, type: body.type, merchantId: body.merchant_id, createdAt: body.created_at, dataType: data.type, dataId: data.id }, file);
    kinds[file] = event.kind;
  }
  t.like(kinds, {
    'payment.created.json': 'payment',
    'payment.updated.json': 'payment',
    'synthetic/payment.updated.completed-with-customer_id.json': 'payment',
    'refund.created.json': 'refund',
    'refund.updated.json': 'refund',
    'oauth.authorization.revoked.json': 'authorization-revoked',
    'customer.created.json': 'customer-changed',
    'customer.updated.json': 'customer-changed',
    'customer.deleted.json': 'customer-changed',
    'loyalty.program.updated.json': 'other',
  });
});

test('payment.created: the payment is keyed by its own id, not data.id, and is only APPROVED', async (t) => {
  const event = as(await parsed('payment.created.json'), 'payment');
  t.is(event.dataId, 'KkAkhdMsgzn59SM8A89WgKwekxLZY');
  t.deepEqual(event.object, {
    id: 'hYy9pRFVxpDsO1FB05SunFWUe9JZY',
    status: 'APPROVED',
    amountMinor: 100,
    tipMinor: 0,
    totalMinor: 100,
    currency: 'USD',
    customerId: null,
    buyerEmail: null,
    locationId: 'S8GWD5R9QB376',
    orderId: '03O3USaPaAaFnI6kkwB1JxGgBsUZY',
    createdAt: '2020-11-22T21:16:51.086Z',
    updatedAt: '2020-11-22T21:16:51.198Z',
  });
});

test('payment.updated: the same payment, now COMPLETED; the synthetic variant carries the customer', async (t) => {
  const updated = as(await parsed('payment.updated.json'), 'payment');
  t.like(updated.object, { id: 'hYy9pRFVxpDsO1FB05SunFWUe9JZY', status: 'COMPLETED', customerId: null, updatedAt: '2020-11-22T21:19:00.831Z' });
  const withCustomer = as(await parsed('synthetic/payment.updated.completed-with-customer_id.json'), 'payment');
  t.like(withCustomer.object, { status: 'COMPLETED', customerId: 'W92WH6P11H4Z77CTET0RNTGFW8', totalMinor: 100 });
});

test('refund.created and refund.updated share one event_id: only the refund id and status tell them apart', async (t) => {
  const created = as(await parsed('refund.created.json'), 'refund');
  const updated = as(await parsed('refund.updated.json'), 'refund');
  t.is(created.eventId, updated.eventId);
  t.is(created.object.id, updated.object.id);
  t.like(created.object, { status: 'PENDING', paymentId: 'KkAkhdMsgzn59SM8A89WgKwekxLZY', amountMinor: 1000, currency: 'USD', locationId: 'NAQ1FHV6ZJ8YV' });
  t.like(updated.object, { status: 'COMPLETED', updatedAt: '2020-02-06T22:14:16.381Z' });
});

test('oauth.authorization.revoked names who revoked, with Square’s nanosecond timestamps kept as sent', async (t) => {
  const event = as(await parsed('oauth.authorization.revoked.json'), 'authorization-revoked');
  t.is(event.merchantId, 'J9Z30SF99NPFJ');
  t.is(event.createdAt, '2020-08-14T15:51:04.246373287Z');
  t.deepEqual(event.object, { revokedAt: '2020-08-14T15:51:00.246373287Z', revokerType: 'MERCHANT' });
});

test('customer.created, customer.updated and customer.deleted name the customer, with the contacts it has now (none once deleted)', async (t) => {
  t.like(await parsed('customer.created.json'), { kind: 'customer-changed', object: { customerId: 'QPTXM8PQNX3Q726ZYHPMNP46XC', email: 'jenkins+smorly@squareup.com', phone: '+12126668929' } });
  t.like(await parsed('customer.updated.json'), {
    kind: 'customer-changed',
    object: { customerId: 'A0AP25A6SCVTH8JES9BX01GXM4', email: 'jenkins+smorly@squareup.com', phone: '+13477947111' },
  });
  t.like(await parsed('customer.deleted.json'), { kind: 'customer-changed', object: { customerId: 'QPTXM8PQNX3Q726ZYHPMNP46XC', email: null, phone: null } });
});

test('types the core does not act on keep their envelope and no object, even without data.object', async (t) => {
  const bare = parseSquareWebhook({
    event_id: 'e-1',
    type: 'team_member.created',
    merchant_id: 'M1',
    created_at: '2024-01-01T00:00:00Z',
    data: { type: 'team_member', id: 'TM1' },
  });
  t.like(bare, { kind: 'other', type: 'team_member.created', dataId: 'TM1', object: undefined });
});

test('a missing envelope field is named, and every problem is reported at once', async (t) => {
  const body = await variant('payment.updated.json', (b) => {
    delete b.event_id;
    delete b.merchant_id;
    b.data.id = 42;
  });
  const error = t.throws(() => parseSquareWebhook(body), { instanceOf: InvalidSquareWebhook });
  t.is(error!.code, 'INVALID_SQUARE_WEBHOOK');
  t.deepEqual(error!.problems.sort(), ['data.id must be a string', 'event_id is required', 'merchant_id is required']);
  t.regex(error!.message, /event_id is required/);
});

test('a body that is not a JSON object is refused in plain words', (t) => {
  t.deepEqual(problems('payment.updated'), ['the body must be a JSON object']);
  t.deepEqual(problems(null), ['the body must be a JSON object']);
});

test('a payment event must carry its payment, with location and timestamps', async (t) => {
  t.deepEqual(problems(await variant('payment.updated.json', (b) => delete b.data.object.payment)), ['data.object.payment is required']);
  const missing = await variant('payment.updated.json', (b) => {
    delete b.data.object.payment.location_id;
    b.data.object.payment.updated_at = 'yesterday';
  });
  t.deepEqual(problems(missing).sort(), [
    'data.object.payment.location_id is required',
    'data.object.payment.updated_at must be an ISO 8601 date-time',
  ]);
});

test('amounts must be whole, non-negative and exactly representable', async (t) => {
  const withAmount = (amount: unknown) => variant('payment.updated.json', (b) => (b.data.object.payment.amount_money.amount = amount));
  const field = 'data.object.payment.amount_money.amount';
  t.deepEqual(problems(await withAmount(1.5)), [`${field} must be a whole number of minor units`]);
  t.deepEqual(problems(await withAmount(-100)), [`${field} must not be negative`]);
  t.deepEqual(problems(await withAmount(2 ** 53)), [`${field} must not exceed 9007199254740991`]);
  t.deepEqual(problems(await withAmount('100')), [`${field} must be a number`]);
  const largest = as(parseSquareWebhook(await withAmount(Number.MAX_SAFE_INTEGER)), 'payment');
  t.is(largest.object.amountMinor, Number.MAX_SAFE_INTEGER);
});

test('a refund amount and currency are checked the same way', async (t) => {
  const body = await variant('refund.updated.json', (b) => {
    b.data.object.refund.amount_money = { amount: 0.5, currency: 'usd' };
  });
  t.deepEqual(problems(body).sort(), [
    'data.object.refund.amount_money.amount must be a whole number of minor units',
    'data.object.refund.amount_money.currency must be a three-letter ISO 4217 code',
  ]);
});

test('an unlinked refund (no payment) still parses, with a null payment id', async (t) => {
  const body = await variant('refund.created.json', (b) => delete b.data.object.refund.payment_id);
  t.is(as(parseSquareWebhook(body), 'refund').object.paymentId, null);
});
