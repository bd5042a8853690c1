/**
 * A batch of rows sent to PostgreSQL as one `jsonb` parameter: an array of objects keyed by column name, read back
 * by `jsonb_to_recordset` in the order given (`ord`, from 1).
 *
 * Why not one array parameter per column (`unnest($1::text[], …)`): node-postgres turns a JavaScript array into
 * an array literal in JavaScript, quoting every string element with two regular-expression replaces and
 * concatenating the lot. For columns that hold JSON text (an event's data, a webhook's raw body, 1–3 KiB each, full
 * of quotes) that was a quarter of everything the ingestion benchmark's burst allocated in the service (V8's
 * sampling heap profile, `npm run bench:ingest -- --heap-profile`) and 5.6 µs per value against 1.6 for
 * `JSON.stringify` of the same values, which is native and makes one string. A `jsonb` column of the batch (an
 * event's data) also travels as itself, not as text to be parsed again.
 */

/** Column name and PostgreSQL type, in the order of the statement's column list. */
export type RecordsetColumns = readonly (readonly [name: string, type: string])[];

/**
 * The `FROM` item reading parameter `$n` as rows of `columns`, plus `ord` (bigint, 1-based): a key missing from an
 * object, or JSON null, reads as NULL; values are cast from their JSON form (text for uuid, timestamptz, …).
 */
export function recordsetFrom(columns: RecordsetColumns, parameter: number, alias: string): string {
  const definitions = columns.map(([name, type]) => `${name} ${type}`).join(', ');
  const names = columns.map(([name]) => name).join(', ');
  return `ROWS FROM (jsonb_to_recordset($${parameter}::jsonb) AS (${definitions})) WITH ORDINALITY AS ${alias}(${names}, ord)`;
}

/** The parameter for `recordsetFrom`: the rows as one JSON text (Dates as ISO strings, bigints refused by JSON). */
export function recordsetParameter(rows: readonly object[]): string {
  return JSON.stringify(rows);
}

/**
 * `INSERT INTO table (columns) … ON CONFLICT DO NOTHING` of the rows of parameter `$1` (`recordsetParameter`), in
 * their order: an idempotent batch insert, one statement for any number of rows. Rows repeating a key within the
 * batch insert once, as rows already present do.
 */
export function insertRecordsetSql(table: string, columns: RecordsetColumns): string {
  const names = columns.map(([name]) => name).join(', ');
  return `INSERT INTO ${table} (${names}) SELECT ${names} FROM ${recordsetFrom(columns, 1, 'b')} ORDER BY ord ON CONFLICT DO NOTHING`;
}
