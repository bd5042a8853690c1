/**
 * The poll: for every active connection, payments (per location: Square lists only the main location without
 * one) and refunds updated since the connection's cursor, fed through the same ingestion path as webhooks.
 * The cursor advances only past what was processed, per location, so a failure resumes where it stopped.
 * Each list is read again from `POLL_OVERLAP_MS` before its cursor: Square may list an update late, with an
 * `updated_at` older than one it already listed (two tills committing out of order, indexing lag), and a cursor
 * read from exactly where it stopped would skip it for good. What the overlap lists again is answered `duplicate`
 * (or `stale`) by the payment decider and counted as `reread`, not as seen. A list read again within the run (after a
 * 429) lists again what this run processed before the refusal: each run is one source, so the decider answers such an
 * item with its first outcome (`credited`), and only the run's own memory of the ids it processed keeps it in `reread`.
 * A connection whose token fails is reported and skipped; the others go on. So is one whose run could not be recorded:
 * what it processed stands (each payment is decided once), and the next run resumes from the cursor recorded before.
 * A quiet run of a connection (nothing processed for the first time, cursor unchanged, no error) appends nothing:
 * it only records when it polled (`recordQuietPoll`), so polling every few minutes does not grow the event store.
 */
import { z } from 'zod';
import type { EventMetadata, JsonObject } from '../ports/event-store.ts';
import { SquareApiError, type SquareApi } from '../ports/square.ts';
import type { IngestionOutcome, IngestionService } from './ingestion.ts';

export interface PollDependencies {
  ingestion: IngestionService;
  activeConnections(): Promise<{ tenantId: string; merchantId: string; pollCursor: string | null; connectedAt: string }[]>;
  apiFor(tenantId: string): Promise<{ api: SquareApi; merchantId: string }>;
  recordPoll(tenantId: string, poll: { cursor: string | null; polledAt: string; summary: JsonObject }, metadata: EventMetadata): Promise<void>;
  /** A run that found nothing new for the connection: only its time is kept (outside the event store). */
  recordQuietPoll(tenantId: string, poll: { merchantId: string; polledAt: string }): Promise<void>;
  /** A connection's run could not be recorded (its summary says so too); the run goes on with the other connections. */
  recordFailed(error: unknown, connection: { tenantId: string; merchantId: string }): void;
  now(): Date;
  /** Waits before a retry after a 429 (injected so tests need not sleep for real). */
  sleep(ms: number): Promise<void>;
  maxRateLimitRetries?: number;
}

/** Per-location payment cursors and the refunds cursor: the newest `updated_at` fully processed. */
interface Cursor {
  payments: Record<string, string>;
  refunds: string | null;
}

/** How far before its cursor each payments and refunds list is read again (see the module comment). */
export const POLL_OVERLAP_MS = 5 * 60_000;

/** What one connection's poll did: what the poll record carries and `POST /api/v1/internal/cron/square-poll-payments` answers. */
export const connectionPollSummary = z.object({
  tenantId: z.string(),
  merchantId: z.string(),
  status: z.enum(['ok', 'partial', 'failed']),
  /** Items processed for the first time (counted in one of the outcomes below). */
  seen: z.number().int(),
  /** Items the overlap listed again, already processed by an earlier run or earlier in this one: nothing new (not in `seen`). */
  reread: z.number().int(),
  credited: z.number().int(),
  duplicate: z.number().int(),
  stored_anonymous: z.number().int(),
  no_rule_no_credit: z.number().int(),
  other: z.number().int(),
  errors: z.array(z.string()),
});
export type ConnectionPollSummary = z.infer<typeof connectionPollSummary>;

function parseCursor(raw: string | null): Cursor {
  if (!raw) return { payments: {}, refunds: null };
  try {
    const parsed = JSON.parse(raw) as Partial<Cursor>;
    return { payments: parsed.payments ?? {}, refunds: parsed.refunds ?? null };
  } catch {
    return { payments: {}, refunds: null };
  }
}

const later = (a: string | null | undefined, b: string) => (!a || Date.parse(b) > Date.parse(a) ? b : a);

/** Where a list resumes: `POLL_OVERLAP_MS` before its cursor, never before `floor` (when the merchant connected). */
function resumeFrom(cursor: string | null | undefined, floor: string): string {
  if (!cursor) return floor;
  const from = Date.parse(cursor) - POLL_OVERLAP_MS;
  return from > Date.parse(floor) ? new Date(from).toISOString() : floor;
}

/**
 * Outcomes of an item listed again that an earlier run already processed: nothing new happened. An item within the
 * overlap may also be new (Square lists some late), so only these count as re-read: `ignored` (a refund of another
 * merchant's payment, decided the same every time) too, or a merchant whose newest item it is would never have a
 * quiet run.
 */
const REPEATED = new Set<IngestionOutcome>(['duplicate', 'stale', 'refund_pending', 'ignored']);

/** At or before the cursor a list was read from: processed before (by an earlier run, or before a retry). */
const withinOverlap = (updatedAt: string, cursor: string | null | undefined) => !!cursor && Date.parse(updatedAt) <= Date.parse(cursor);

/**
 * The longest a poll waits inside the cron request for a 429 to pass. When Square asks for longer (`Retry-After`),
 * or keeps refusing, this merchant's poll ends for now with the error recorded, and the next run resumes from the
 * cursor: the cron request is never held for minutes.
 */
export const MAX_POLL_RATE_LIMIT_WAIT_MS = 5_000;

/** Square throttled this merchant longer than a poll waits: its poll stops here and resumes on the next run. */
class RateLimitedForNow extends Error {
  constructor(refusal: SquareApiError, waitMs: number) {
    super(`${refusal.code}: ${refusal.detail} (Square asked to wait ${Math.ceil(waitMs / 1000)} s: this merchant's poll resumes from its cursor on the next run)`, { cause: refusal });
  }
}

/**
 * Nothing new: no item processed for the first time (what the overlap listed again does not count), no error, and
 * the cursor where it was. Recording such a run would only say "polled at"; its record adds nothing to resume from.
 */
const isQuiet = (summary: ConnectionPollSummary, cursor: Cursor, before: string | null) =>
  summary.seen === 0 && summary.errors.length === 0 && JSON.stringify(cursor) === JSON.stringify(parseCursor(before));

type PolledConnection = { tenantId: string; merchantId: string; pollCursor: string | null; connectedAt: string };

/** Nothing more can be read for this merchant in this run: throttled for longer than a poll waits, or the grant is gone. */
const endsThePoll = (error: unknown) => error instanceof RateLimitedForNow || (error instanceof SquareApiError && error.needsReconnect);

/** One connection's run: its summary and its cursor, which only ever advances past what was processed. */
function pollRun(connection: PolledConnection) {
  const summary: ConnectionPollSummary = {
    tenantId: connection.tenantId,
    merchantId: connection.merchantId,
    status: 'ok',
    seen: 0,
    reread: 0,
    credited: 0,
    duplicate: 0,
    stored_anonymous: 0,
    no_rule_no_credit: 0,
    other: 0,
    errors: [],
  };
  let listsCompleted = 0;
  /** The payments and refunds this run processed (`payment:<id>`, `refund:<id>`): listed again after a 429, they are re-read. */
  const processed = new Set<string>();
  return {
    summary,
    cursor: parseCursor(connection.pollCursor),
    count(item: string, outcome: IngestionOutcome, updatedAt: string, processedUpTo: string | null | undefined) {
      const again = processed.has(item) || (REPEATED.has(outcome) && withinOverlap(updatedAt, processedUpTo));
      processed.add(item);
      if (again) return void summary.reread++;
      summary.seen++;
      if (outcome === 'credited' || outcome === 'duplicate' || outcome === 'stored_anonymous' || outcome === 'no_rule_no_credit') summary[outcome]++;
      else summary.other++;
    },
    completed: () => void listsCompleted++,
    failed: (error: unknown) => void summary.errors.push(describe(error)),
    /** `partial` when some list (a location's payments, the refunds) was read to its end despite the errors. */
    result(): ConnectionPollSummary {
      if (summary.errors.length) summary.status = listsCompleted > 0 || summary.seen > 0 ? 'partial' : 'failed';
      return summary;
    },
  };
}

// Over 80 lines because it is a factory: the poll of one connection and of all share its dependencies and retry policy.
export function pollService(deps: PollDependencies) {
  const maxRetries = deps.maxRateLimitRetries ?? 3;

  /** Runs `run` again (from the cursor) after a 429 whose Retry-After is short; a longer one throws `RateLimitedForNow`. */
  async function withRateLimitRetries<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (!(error instanceof SquareApiError) || error.code !== 'RATE_LIMITED') throw error;
        const askedMs = (error.retryAfterSeconds ?? 2 ** attempt) * 1000;
        if (attempt >= maxRetries || askedMs > MAX_POLL_RATE_LIMIT_WAIT_MS) throw new RateLimitedForNow(error, askedMs);
        await deps.sleep(askedMs * (1 + Math.random() * 0.2));
      }
    }
  }

  async function pollConnection(connection: PolledConnection): Promise<ConnectionPollSummary> {
    const run = pollRun(connection);
    const { cursor } = run;
    const started = deps.now();
    // A first poll (of a connection, or of a location new to it) starts when the merchant connected: sales from
    // before are not Tally's to credit (issue 15).
    const defaultBegin = connection.connectedAt;
    const metadata: EventMetadata = { correlationId: `poll:${connection.tenantId}:${started.toISOString()}`, actor: 'system:poll' };
    // Each poll run is its own source: a payment seen again by a later run is a duplicate, not its first outcome.
    const source = (id: string) => `poll:${started.toISOString()}:${id}`;

    let api: SquareApi;
    try {
      api = (await deps.apiFor(connection.tenantId)).api;
    } catch (error) {
      run.failed(error);
      return run.result();
    }
    // Each list on its own: a location whose payment fails every time stops that location's cursor there, not the
    // other locations or the refunds.
    const lists: (() => Promise<void>)[] = [];
    let ended = false;
    try {
      const locations = await withRateLimitRetries(() => api.listLocations());
      for (const location of locations) {
        lists.push(async () => {
          const processedUpTo = cursor.payments[location.id];
          for await (const payment of api.listPayments({ locationId: location.id, updatedAtBeginTime: resumeFrom(processedUpTo, defaultBegin), limit: 100 })) {
            const result = await deps.ingestion.ingestPayment(connection.tenantId, connection.merchantId, payment, source(payment.id), metadata);
            run.count(`payment:${payment.id}`, result.outcome, payment.updatedAt, processedUpTo);
            cursor.payments[location.id] = later(cursor.payments[location.id], payment.updatedAt);
          }
        });
      }
    } catch (error) {
      run.failed(error);
      ended = endsThePoll(error);
    }
    if (!ended) {
      lists.push(async () => {
        const processedUpTo = cursor.refunds;
        for await (const refund of api.listRefunds({ updatedAtBeginTime: resumeFrom(processedUpTo, defaultBegin), limit: 100 })) {
          const result = await deps.ingestion.ingestRefund(connection.tenantId, refund, source(refund.id), metadata);
          run.count(`refund:${refund.id}`, result.outcome, refund.updatedAt, processedUpTo);
          cursor.refunds = later(cursor.refunds, refund.updatedAt);
        }
      });
    }
    for (const list of lists) {
      try {
        await withRateLimitRetries(list);
        run.completed();
      } catch (error) {
        run.failed(error);
        if (endsThePoll(error)) break;
      }
    }
    const summary = run.result();
    const polledAt = started.toISOString();
    try {
      if (isQuiet(summary, cursor, connection.pollCursor)) await deps.recordQuietPoll(connection.tenantId, { merchantId: connection.merchantId, polledAt });
      else await deps.recordPoll(connection.tenantId, { cursor: JSON.stringify(cursor), polledAt, summary: { ...summary, errors: [...summary.errors] } }, metadata);
    } catch (error) {
      deps.recordFailed(error, { tenantId: connection.tenantId, merchantId: connection.merchantId });
      run.failed(`poll record not written (${describe(error)}): the next run resumes from the cursor recorded before`);
      return run.result();
    }
    return summary;
  }

  return {
    async pollAll(): Promise<{ connections: ConnectionPollSummary[] }> {
      const connections = await deps.activeConnections();
      const results: ConnectionPollSummary[] = [];
      // One at a time: Square's rate limits are per application, and a poll is a background job.
      for (const connection of connections) results.push(await pollConnection(connection));
      return { connections: results };
    },
  };
}

function describe(error: unknown): string {
  if (error instanceof SquareApiError) return `${error.code}: ${error.detail}`;
  if (error instanceof Error && 'code' in error) return `${String((error as { code: unknown }).code)}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
