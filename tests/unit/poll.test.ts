/**
 * The poll's policy, with Square and ingestion stood in: how long it waits on a 429 inside the cron request, and
 * that one list failing (a location whose payment fails every time) stops neither the other locations nor the
 * refunds, while its cursor stays before what was not processed. Square's own answers over a socket are covered by
 * tests/http/poll-faults.test.ts.
 */
import test from 'ava';
import { MAX_POLL_RATE_LIMIT_WAIT_MS, pollService } from '../../domain/payments/poll.ts';
import { SquareApiError, type SquareApi, type SquarePayment, type SquareRefund } from '../../domain/ports/square.ts';
import type { IngestionService } from '../../domain/payments/ingestion.ts';

const CONNECTED_AT = '2026-03-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(CONNECTED_AT) + minutes * 60_000).toISOString();

const payment = (id: string, locationId: string, updatedAt: string): SquarePayment => ({
  id, status: 'COMPLETED', amountMinor: 1000, tipMinor: 0, totalMinor: 1000, currency: 'USD', customerId: null, buyerEmail: null,
  locationId, orderId: null, createdAt: updatedAt, updatedAt,
});
const refund = (id: string, updatedAt: string): SquareRefund => ({
  id, paymentId: 'P-KIOSK', status: 'COMPLETED', amountMinor: 100, currency: 'USD', createdAt: updatedAt, updatedAt, locationId: 'L-KIOSK',
});
const throttled = (seconds: number, operation: 'payments.list' | 'locations.list' = 'payments.list') =>
  new SquareApiError({ code: 'RATE_LIMITED', operation, statusCode: 429, retryAfterSeconds: seconds, detail: 'Too many requests' });

async function* listing<T>(items: readonly T[], failAfter?: unknown): AsyncGenerator<T> {
  for (const item of items) yield item;
  if (failAfter) throw failAfter;
}

/** A poll of one connection against `api`; what it ingested, slept and recorded. */
function harness(api: Partial<SquareApi>, options: { failingPayment?: string; pollCursor?: string; outcome?: string } = {}) {
  const ingested: string[] = [];
  const sleeps: number[] = [];
  const recorded: { cursor: string | null; summary: unknown }[] = [];
  const quietPolls: string[] = [];
  const ingestion = {
    async ingestPayment(_tenant: string, _merchant: string, p: SquarePayment) {
      if (p.id === options.failingPayment) throw new Error(`payment ${p.id} cannot be decided`);
      ingested.push(p.id);
      return { outcome: options.outcome ?? 'credited', position: undefined };
    },
    async ingestRefund(_tenant: string, r: SquareRefund) {
      ingested.push(r.id);
      return { outcome: 'refund_applied', position: undefined };
    },
  } as unknown as IngestionService;
  const poll = pollService({
    ingestion,
    activeConnections: async () => [{ tenantId: 't1', merchantId: 'M1', pollCursor: options.pollCursor ?? null, connectedAt: CONNECTED_AT }],
    apiFor: async () => ({ api: { listRefunds: () => listing([]), ...api } as SquareApi, merchantId: 'M1' }),
    recordPoll: async (_tenant, record) => void recorded.push(record),
    recordQuietPoll: async (_tenant, quiet) => void quietPolls.push(quiet.polledAt),
    recordFailed: () => {},
    now: () => new Date(at(60)),
    sleep: async (ms) => void sleeps.push(ms),
  });
  return { poll, ingested, sleeps, recorded, quietPolls };
}

const oneLocation = async () => [{ id: 'L-MAIN', name: 'Main', status: 'ACTIVE', timezone: null }];

test('a 429 asking for longer than the poll waits ends this merchant’s poll at once: no sleep, the error recorded, the cursor kept', async (t) => {
  let lists = 0;
  const { poll, sleeps, recorded } = harness({
    listLocations: oneLocation,
    listPayments: () => {
      lists++;
      return listing([], throttled(120));
    },
  });
  const [summary] = (await poll.pollAll()).connections;
  t.deepEqual(sleeps, [], 'nothing waits 120 s (nor a capped 30 s) inside the cron request');
  t.is(lists, 1);
  t.like(summary, { status: 'failed', seen: 0 });
  t.regex(summary!.errors.join(), /RATE_LIMITED.*120 s.*next run/);
  t.deepEqual(JSON.parse(recorded[0]!.cursor!), { payments: {}, refunds: null }, 'the next run starts where this one would have');
});

test('a short Retry-After is waited out inside the poll, for payments and for the locations list alike', async (t) => {
  let locationCalls = 0;
  let paymentCalls = 0;
  const { poll, sleeps, ingested } = harness({
    listLocations: async () => {
      if (locationCalls++ === 0) throw throttled(1, 'locations.list');
      return oneLocation();
    },
    listPayments: () => (paymentCalls++ === 0 ? listing([], throttled(2)) : listing([payment('P1', 'L-MAIN', at(1))])),
  });
  const [summary] = (await poll.pollAll()).connections;
  t.like(summary, { status: 'ok', credited: 1, errors: [] });
  t.deepEqual(ingested, ['P1']);
  t.is(sleeps.length, 2);
  t.true(sleeps[0]! >= 1000 && sleeps[1]! >= 2000 && sleeps.every((ms) => ms <= MAX_POLL_RATE_LIMIT_WAIT_MS * 1.2), JSON.stringify(sleeps));
});

test('a payment that fails every time stops its own location there, not the other locations or the refunds', async (t) => {
  const byLocation: Record<string, SquarePayment[]> = {
    'L-MAIN': [payment('P-OK', 'L-MAIN', at(1)), payment('P-POISON', 'L-MAIN', at(2)), payment('P-AFTER', 'L-MAIN', at(3))],
    'L-KIOSK': [payment('P-KIOSK', 'L-KIOSK', at(4))],
  };
  const { poll, ingested, recorded } = harness(
    {
      listLocations: async () => [
        { id: 'L-MAIN', name: 'Main', status: 'ACTIVE', timezone: null },
        { id: 'L-KIOSK', name: 'Kiosk', status: 'ACTIVE', timezone: null },
      ],
      listPayments: ({ locationId }) => listing(byLocation[locationId] ?? []),
      listRefunds: () => listing([refund('R1', at(5))]),
    },
    { failingPayment: 'P-POISON' },
  );
  const [summary] = (await poll.pollAll()).connections;
  t.deepEqual(ingested, ['P-OK', 'P-KIOSK', 'R1'], 'the kiosk and the refunds were polled after the main location failed');
  t.like(summary, { status: 'partial', seen: 3, credited: 2, other: 1 });
  t.regex(summary!.errors.join(), /P-POISON cannot be decided/);
  const cursor = JSON.parse(recorded[0]!.cursor!);
  t.is(cursor.payments['L-MAIN'], at(1), 'the main location resumes before the payment it could not process');
  t.is(cursor.payments['L-KIOSK'], at(4));
  t.is(cursor.refunds, at(5));
});

test('a locations list that fails still lets the refunds be polled', async (t) => {
  const { poll, ingested } = harness({
    listLocations: async () => {
      throw new SquareApiError({ code: 'INTERNAL_SERVER_ERROR', operation: 'locations.list', statusCode: 500, detail: 'boom' });
    },
    listPayments: () => listing([]),
    listRefunds: () => listing([refund('R1', at(5))]),
  });
  const [summary] = (await poll.pollAll()).connections;
  t.deepEqual(ingested, ['R1']);
  t.like(summary, { status: 'partial', seen: 1 });
  t.regex(summary!.errors.join(), /INTERNAL_SERVER_ERROR/);
});

test('a run that finds nothing new records only when it polled; a run that processes a payment records its cursor', async (t) => {
  const quiet = harness({ listLocations: oneLocation, listPayments: () => listing([]) });
  await quiet.poll.pollAll();
  t.deepEqual(quiet.recorded, [], 'no poll record: nothing to resume from that was not there');
  t.deepEqual(quiet.quietPolls, [at(60)]);
  const busy = harness({ listLocations: oneLocation, listPayments: () => listing([payment('P-1', 'L-MAIN', at(30))]) });
  await busy.poll.pollAll();
  t.is(busy.recorded.length, 1);
  t.deepEqual(busy.quietPolls, []);
});

test('an item the overlap lists again that settles as before (a duplicate, or ignored again) is re-read, so the run stays quiet', async (t) => {
  // P-1 was processed by an earlier run (the cursor is at it): listed again in the overlap, it is nothing new.
  for (const outcome of ['ignored', 'duplicate']) {
    const again = harness({ listLocations: oneLocation, listPayments: () => listing([payment('P-1', 'L-MAIN', at(30))]) }, { outcome, pollCursor: JSON.stringify({ payments: { 'L-MAIN': at(30) }, refunds: null }) });
    await again.poll.pollAll();
    t.deepEqual(again.recorded, [], `${outcome}: no record`);
    t.deepEqual(again.quietPolls, [at(60)], outcome);
  }
});
