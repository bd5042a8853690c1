/**
 * The events the feed and runner tests append (`Counted`, `Numbered`): data `{ n }`. Their projections read `n`
 * through a schema, as every reader of event data does, never by a cast.
 */
import { z } from 'zod';
import type { RecordedEvent } from '../../domain/ports/event-store.ts';

const numberedData = z.object({ n: z.number().int() });

/** The `n` of a test event; throws if its data is not `{ n }`. */
export const numberOf = (event: RecordedEvent): number => numberedData.parse(event.data).n;
