/**
 * What the read models answer, declared once as zod schemas: each query's type is inferred from its schema
 * (`z.infer`), and the HTTP routes declare the same schema as their response, so `/openapi.json`, the contract
 * test and the code cannot disagree. A query whose row is its view renamed names its columns as the view's fields
 * and parses the row with the view (`timestampColumn` for `Date`s); one whose answer computes keeps a row schema.
 */
import { z } from 'zod';

/** A date-time as answers carry it (ISO 8601, UTC). */
export const timestamp = z.iso.datetime({ offset: true });

/**
 * A `timestamptz` column as pg returns it (a `Date`), parsed to what answers carry. A statement that names its
 * columns as a view's fields (`registered_at AS "registeredAt"`) is parsed by the view with these in place of
 * `timestamp`: one declaration of the view, no field-by-field mapping.
 */
export const timestampColumn = z.date().transform((date) => date.toISOString());

/** A page of a keyset-paged list; pass `nextCursor` back unchanged for the next one (null: this was the last). */
export const cursorPage = <Item extends z.ZodType>(item: Item) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

/** A keyset cursor of a list ordered by a time and an id: the time to the microsecond as stored (ISO 8601, UTC), the id. */
export const encodeCursor = (at: string, id: string) => Buffer.from(JSON.stringify([at, id])).toString('base64url');
export function decodeCursor(cursor: string): [string, string] {
  // Both go to PostgreSQL: a time it can store (years 1–9999; 0000 is out of its range), an id as text.
  return parseCursor(cursor, z.tuple([z.string().datetime().regex(/^(?!0000)\d{4}-/), cursorId]));
}

/** A keyset cursor of a list ordered by an id alone (a key that never changes): the id. */
export const encodeIdCursor = (id: string) => Buffer.from(JSON.stringify([id])).toString('base64url');
export const decodeIdCursor = (cursor: string): string => parseCursor(cursor, z.tuple([cursorId]))[0];

/** An id as PostgreSQL takes it: text with no control characters (a NUL is refused there with an error), bounded. */
const cursorId = z.string().max(255).regex(/^[^\u0000-\u001f\u007f]*$/);

function parseCursor<T>(cursor: string, shape: z.ZodType<T>): T {
  try {
    return shape.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw Object.assign(new Error('cursor is not a cursor returned by this endpoint'), { status: 400 });
  }
}
