/**
 * `GET /api/v1/admin/events/stream`: the live event tail as server-sent events, for administrators. Filters as the
 * audit trail's (tenantId, stream, type); each event is sent as `id: <position>` and `data: <event JSON>`, so a
 * browser's EventSource resumes after a disconnect with `Last-Event-ID`, and so can anyone (`?lastEventId=` too).
 *
 * It must never slow ingestion: the shared tail hands each event to every client without waiting. A client whose
 * connection does not keep up has its frames queued, and once the queue passes `maxQueuedBytes` it is dropped
 * (the connection is closed); it may come back with Last-Event-ID and catch up from the store.
 */
import { PassThrough } from 'node:stream';
import type pg from 'pg';
import { filter, interval, map, merge, type Subscription as RxSubscription } from 'rxjs';
import { z } from 'zod';
import type { Position, RecordedEvent } from '../../domain/ports/event-store.ts';
import { auditColumns } from '../../projections/audit.ts';
import { auditItem } from '../../projections/read/audit.ts';
import { eventsAfter, TailEnded, type LiveTail } from '../../projections/live-tail.ts';
import { HttpError } from '../errors.ts';
import { eventTypes as types, id, streamName } from '../schemas.ts';
import { requireWorkspace, route, type RouteSpec } from './table.ts';

export interface EventStreamDependencies {
  tail: LiveTail;
  /** Where a `tenantId` filter is looked up: one naming no workspace is a 404, as on the audit trail. */
  pool: pg.Pool;
  isPosition(value: string): boolean;
  /** The store's newest settled position: no id this stream sent is after it. */
  head(): Promise<Position | undefined>;
  /** Queued bytes past which a client is dropped; 4 MiB unless given (a burst of appends must fit). */
  maxQueuedBytes?: number;
  /** Comment frames keep idle connections open through proxies; 15 s unless given. */
  heartbeatMs?: number;
  /** How often a connection's access is checked again (a suspended admin, an expired token); 5 s unless given. */
  accessRecheckMs?: number;
}

const streamQuery = z
  .object({ tenantId: id('tenantId').optional(), stream: streamName.optional(), type: types.optional(), lastEventId: z.string().min(1).max(200).optional() })
  .strict();

/** The data of one event frame: the event as the audit trail shows it, with its id and its whole metadata. */
const eventFrame = auditItem
  .pick({ position: true, stream: true, revision: true, type: true, recordedAt: true, tenantId: true, data: true })
  .extend({ id: z.string(), metadata: z.record(z.string(), z.unknown()) });

const SSE_HEADERS = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' };

/**
 * Writes to a client's stream without ever waiting: what the socket does not take yet is queued, and a queue past
 * `maxBytes` means the client does not keep up (`write` answers false; the caller drops it).
 */
class BoundedWriter {
  private readonly queue: string[] = [];
  private queuedBytes = 0;
  private blocked = false;
  closed = false;

  constructor(
    private readonly out: PassThrough,
    private readonly maxBytes: number,
  ) {
    out.on('drain', () => {
      this.blocked = false;
      while (!this.blocked && this.queue.length && !this.closed) {
        const text = this.queue.shift()!;
        this.queuedBytes -= Buffer.byteLength(text);
        if (!out.write(text)) this.blocked = true;
      }
    });
  }

  write(text: string): boolean {
    if (this.closed) return true;
    if (this.blocked) {
      this.queue.push(text);
      this.queuedBytes += Buffer.byteLength(text);
      return this.queuedBytes <= this.maxBytes;
    }
    if (!this.out.write(text)) this.blocked = true;
    return true;
  }

  close(): void {
    this.closed = true;
    this.out.destroy();
  }
}

/** Every client shares the tail's event objects: each frame is written once, however many clients send it. */
const frames = new WeakMap<RecordedEvent, string>();

function frame(event: RecordedEvent): string {
  const cached = frames.get(event);
  if (cached !== undefined) return cached;
  const text = frameText(event);
  frames.set(event, text);
  return text;
}

function frameText(event: RecordedEvent): string {
  const body = {
    id: event.id,
    position: event.position,
    stream: event.stream,
    revision: event.revision,
    type: event.type,
    recordedAt: event.recordedAt,
    tenantId: auditColumns(event).tenant_id,
    data: event.data,
    metadata: event.metadata,
  };
  return `id: ${event.position}\ndata: ${JSON.stringify(body).replace(/[\u2028\u2029]/g, escapeSeparator)}\n\n`;
}

/**
 * U+2028 and U+2029 as JSON escapes: JSON.stringify leaves them as they are, and a client reading the frame with
 * JavaScript's line rules (`.`, `^`/`$` under /m) cuts the line there and loses the event.
 */
const escapeSeparator = (c: string) => (c === '\u2028' ? '\\u2028' : '\\u2029');

/**
 * The position a tail resumes after (`Last-Event-ID`, or `?lastEventId=`): a position, and none after the store's
 * head. One after the newest event was never sent (a position of another database, a restored one, a typo): the tail
 * would wait for it silently for good (found in review, 2026-12-08). A lagging instance's own tail may be behind a
 * genuine id, so the store's head decides.
 */
async function resumePosition(deps: EventStreamDependencies, given: string | undefined): Promise<Position | undefined> {
  if (!given) return undefined;
  if (!deps.isPosition(given)) throw new HttpError('VALIDATION_FAILED', 'Last-Event-ID must be the id (position) of an event this stream sent');
  const head = await deps.head();
  if (!head || deps.tail.isAfter(given as Position, head)) {
    throw new HttpError('VALIDATION_FAILED', `Last-Event-ID ${given} is after the newest event${head ? ` (${head})` : ' (there is none)'}: this stream never sent it; leave it out to start at the newest event`);
  }
  return given as Position;
}

export function eventStreamRoutes(deps: EventStreamDependencies): RouteSpec[] {
  const maxQueuedBytes = deps.maxQueuedBytes ?? 4 * 1024 * 1024;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const accessRecheckMs = deps.accessRecheckMs ?? 5_000;
  return [
    route({
      method: 'get',
      path: '/api/v1/admin/events/stream',
      access: 'admin',
      answers: 'event-stream',
      summary:
        'Live events as server-sent events (id = position), filtered by tenantId, stream, type (as the audit trail); resumes after Last-Event-ID. A client that does not keep up is dropped.',
      query: streamQuery,
      response: eventFrame,
      async handler({ query: wantedOnly, ctx }) {
        // A tenant that has no workspace is a 404 before the tail opens: it streamed nothing, for good (found in review, 2026-12-08).
        await requireWorkspace(deps.pool, wantedOnly.tenantId);
        const resumeFrom = await resumePosition(deps, ctx.get('Last-Event-ID') || wantedOnly.lastEventId);
        const wanted = (event: RecordedEvent) =>
          (!wantedOnly.stream || event.stream === wantedOnly.stream) &&
          (!wantedOnly.type || wantedOnly.type.includes(event.type)) &&
          (!wantedOnly.tenantId || auditColumns(event).tenant_id === wantedOnly.tenantId);

        const out = new PassThrough();
        const log = ctx.log;
        let subscription: RxSubscription | undefined;
        const writer = new BoundedWriter(out, maxQueuedBytes);
        // An answer that never ends outlives the checks made when it began: they are made again while it runs, and
        // a caller suspended since, or whose token has expired, is cut off.
        const recheck = setInterval(() => {
          ctx.state.recheckAccess?.().catch((error: unknown) => close(`access withdrawn: ${error instanceof Error ? error.message : String(error)}`));
        }, accessRecheckMs);
        const close = (why?: string) => {
          if (writer.closed) return;
          // The request's cut is the server's doing, not the client's (the app's `error` listener counts it so).
          if (why) ctx.state.droppedBy = why;
          clearInterval(recheck);
          writer.close();
          subscription?.unsubscribe();
          if (why) log.warn({ why }, 'event tail: client dropped');
          ctx.req.socket.destroy();
        };
        ctx.res.on('close', () => close());

        // The missed events first, then the live ones after the resume position, each once and in feed order, even on
        // an instance whose tail lags behind the one the client read from (`eventsAfter`).
        const tail = deps.tail;
        const events = eventsAfter(await tail.join(), resumeFrom, (after, to) => tail.between(after, to), (a, b) => tail.isAfter(a, b)).pipe(
          filter(wanted),
          map(frame),
        );
        const keepAlive = interval(heartbeatMs).pipe(map(() => ': keep-alive\n\n'));
        ctx.req.socket.setTimeout(0);
        ctx.req.socket.setNoDelay(true);
        out.write(': tally event tail\n\n');
        subscription = merge(events, keepAlive).subscribe({
          next: (text) => {
            if (!writer.write(text)) close(`slow client: more than ${maxQueuedBytes} bytes queued`);
          },
          error: (error: unknown) => {
            if (error instanceof TailEnded) log.info({ reason: error.reason }, 'event tail ended');
            else log.warn({ err: error }, 'event tail: catching up failed');
            ctx.state.droppedBy = error instanceof TailEnded ? `ended: ${error.reason}` : 'catching up failed';
            close();
          },
        });
        if (writer.closed) subscription.unsubscribe();
        return { status: 200, stream: out, headers: SSE_HEADERS };
      },
    }),
  ];
}
