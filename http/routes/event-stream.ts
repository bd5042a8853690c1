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
import { z } from 'zod';
import type { EventStore, Position, RecordedEvent } from '../../domain/ports/event-store.ts';
import { auditColumns } from '../../projections/audit.ts';
import type { LiveTail } from '../../projections/live-tail.ts';
import { HttpError } from '../errors.ts';
import { eventTypes as types, id, streamName, timestamp } from '../schemas.ts';
import { route, type RouteSpec } from './table.ts';

export interface EventStreamDependencies {
  tail: LiveTail;
  store: EventStore;
  isPosition(value: string): boolean;
  /** Queued bytes past which a client is dropped; 4 MiB unless given (a burst of appends must fit). */
  maxQueuedBytes?: number;
  /** Comment frames keep idle connections open through proxies; 15 s unless given. */
  heartbeatMs?: number;
}

const streamQuery = z
  .object({ tenantId: id('tenantId').optional(), stream: streamName.optional(), type: types.optional(), lastEventId: z.string().min(1).max(200).optional() })
  .strict();

/** The data of one event frame. */
const eventFrame = z.object({
  id: z.string(),
  position: z.string(),
  stream: z.string(),
  revision: z.number().int(),
  type: z.string(),
  recordedAt: timestamp,
  tenantId: z.string().nullable(),
  data: z.unknown(),
  metadata: z.record(z.string(), z.unknown()),
});

const SSE_HEADERS = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' };

const CATCH_UP_PAGE = 500;

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
  return `id: ${event.position}\ndata: ${JSON.stringify(body)}\n\n`;
}

export function eventStreamRoutes(deps: EventStreamDependencies): RouteSpec[] {
  const maxQueuedBytes = deps.maxQueuedBytes ?? 4 * 1024 * 1024;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
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
      async handler({ query: filter, ctx }) {
        const resumeFrom = ctx.get('Last-Event-ID') || filter.lastEventId;
        if (resumeFrom && !deps.isPosition(resumeFrom)) {
          throw new HttpError('VALIDATION_FAILED', 'Last-Event-ID must be the id (position) of an event this stream sent');
        }
        const wanted = (event: RecordedEvent) =>
          (!filter.stream || event.stream === filter.stream) &&
          (!filter.type || filter.type.includes(event.type)) &&
          (!filter.tenantId || auditColumns(event).tenant_id === filter.tenantId);

        const out = new PassThrough();
        const log = ctx.log;
        let closed = false;
        let catchingUp = true;
        const held: RecordedEvent[] = [];
        const queue: string[] = [];
        let queuedBytes = 0;
        let blocked = false;
        let heartbeat: NodeJS.Timeout | undefined;
        let membership: { leave(): void } | undefined;

        const close = (why?: string) => {
          if (closed) return;
          closed = true;
          clearInterval(heartbeat);
          membership?.leave();
          if (why) log.warn({ why }, 'event tail: client dropped');
          out.destroy();
          ctx.req.socket.destroy();
        };
        const send = (text: string) => {
          if (closed) return;
          if (blocked) {
            queue.push(text);
            queuedBytes += Buffer.byteLength(text);
            if (queuedBytes > maxQueuedBytes) close(`slow client: more than ${maxQueuedBytes} bytes queued`);
            return;
          }
          if (!out.write(text)) blocked = true;
        };
        out.on('drain', () => {
          blocked = false;
          while (!blocked && queue.length && !closed) {
            const text = queue.shift()!;
            queuedBytes -= Buffer.byteLength(text);
            if (!out.write(text)) blocked = true;
          }
        });
        ctx.res.on('close', () => close());

        const membershipNow = await deps.tail.join(
          (event) => {
            if (!wanted(event)) return;
            if (catchingUp) held.push(event);
            else send(frame(event));
          },
          (reason) => {
            log.info({ reason }, 'event tail ended');
            close();
          },
        );
        membership = membershipNow;

        ctx.req.socket.setTimeout(0);
        ctx.req.socket.setNoDelay(true);
        const answer = { status: 200 as const, stream: out, headers: SSE_HEADERS };
        out.write(': tally event tail\n\n');

        // Resuming: what happened after Last-Event-ID up to where this client joined the live tail, from the store.
        let last = resumeFrom as Position | undefined;
        const joinedAt = membershipNow.joinedAt;
        if (last && joinedAt && deps.store.isAfter(joinedAt, last)) {
          try {
            for (;;) {
              const page = await deps.store.readAll({ from: last, to: joinedAt, limit: CATCH_UP_PAGE });
              const fresh = page.filter((event) => deps.store.isAfter(event.position, last!));
              for (const event of fresh) if (wanted(event)) send(frame(event));
              if (closed || fresh.length === 0) break;
              last = fresh.at(-1)!.position;
              if (!deps.store.isAfter(joinedAt, last)) break;
            }
          } catch (error) {
            log.warn({ err: error }, 'event tail: catching up failed');
            close();
            return answer;
          }
        }
        catchingUp = false;
        for (const event of held.splice(0)) send(frame(event));
        heartbeat = setInterval(() => send(': keep-alive\n\n'), heartbeatMs);
        heartbeat.unref();
        return answer;
      },
    }),
  ];
}
