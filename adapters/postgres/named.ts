/**
 * A statement named by its own text, so that each connection parses it once and plans it as a prepared statement
 * (custom plans for its first five executions, then the generic plan where PostgreSQL finds it no worse) instead of
 * parsing and planning it on every call, as an unnamed statement is.
 *
 * For statements whose text is built at run time: a projection's batch write names the table it writes (during a
 * rebuild, the fresh copy beside it), a page of `readAll` has the shape of its filter, a read of wallets lists the
 * view's columns. `bench:ingest -- --statements` counted the batch writes' planning alone at 2–4 ms a call on a loaded
 * machine (the audit trail's insert 3.8 ms, the wallets' write 2.2 ms, the program summary's 1.9 ms), not counting the
 * parse; `bench:reads -- --cpu` put PostgreSQL's CPU for `GET /api/v1/me/wallets` at 398–471 µs a request unnamed and
 * 144–191 µs named. A name is the text's SHA-1, so one text has one name on every connection and two texts never
 * share one (node-postgres refuses a name reused for another text). Texts differ by table names and query shapes,
 * never by values (those are parameters), so the map stays small. A prepared statement survives DDL on its tables:
 * PostgreSQL analyses it again from its text when a table it names is replaced (a rebuild's takeover renames tables;
 * tests/integration/named-statements.test.ts).
 */
import { createHash } from 'node:crypto';

const names = new Map<string, string>();

export function named(text: string): { name: string; text: string } {
  let name = names.get(text);
  if (name === undefined) {
    name = `tally_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return { name, text };
}
