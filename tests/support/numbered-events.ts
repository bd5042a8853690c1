/**
 * The events the feed and runner tests append (`Counted`, `Numbered`): data `{ n }`. Their projections read `n`
 * through a schema, as every reader of event data does, never by a cast.
 */
import { v4 as uuid } from 'uuid';
import { z } from 'zod';
import type { NewEvent, RecordedEvent } from '../../domain/ports/event-store.ts';

const numberedData = z.object({ n: z.number().int() });

/** A new `Numbered` event with data `{ n }`, its own id, no metadata. */
export const numberedEvent = (n: number): NewEvent => ({ id: uuid(), type: 'Numbered', data: { n }, metadata: {} });

/** The `n` of a test event; throws if its data is not `{ n }`. */
export const numberOf = (event: RecordedEvent): number => numberedData.parse(event.data).n;

/**
 * Appends one event to a new stream through `append_events` on `client`, inside the transaction the caller has begun
 * and keeps open: an append in progress, which holds back the feed beyond it until it commits or rolls back.
 */
export async function appendInOpenTransaction(
  client: { query(text: string, values: unknown[]): Promise<unknown> },
  stream: string,
  event: { id: string; type: string; data: unknown },
): Promise<void> {
  await client.query(`SELECT * FROM append_events($1, 'no_stream', NULL, $2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[])`, [
    stream,
    [event.id],
    [event.type],
    [JSON.stringify(event.data)],
    ['{}'],
  ]);
}
