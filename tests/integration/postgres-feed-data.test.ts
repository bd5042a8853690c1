/**
 * What the PostgreSQL feed's pages carry (adapters/eventstore/postgres.ts, `scanPage`): a row beyond an append still
 * in progress cannot be handed out by the page that finds it, so the page does not carry its data; the row is read
 * again, with its data, once it can be. Under a burst of appends most pages end in such rows, and they were sent and
 * parsed in full only to be dropped.
 */
import test from 'ava';
import pg from 'pg';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { take } from './event-store.contract.ts';
import { appendInOpenTransaction, numberedEvent } from '../support/numbered-events.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

interface ScannedRow {
  event_id: string;
  data: unknown;
}

/** A pool whose scans of the feed (the statements named `tally_scan_…`) are recorded, row by row, as answered. */
function recordingPool(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined); // a backend still closing when the test database is dropped
  const pages: ScannedRow[][] = [];
  const query = pool.query.bind(pool) as (config: unknown, values?: unknown) => Promise<pg.QueryResult>;
  Object.assign(pool, {
    async query(config: unknown, values?: unknown) {
      const result = await query(config, values);
      const name = typeof config === 'object' && config !== null && 'name' in config ? String(config.name) : '';
      if (name.startsWith('tally_scan_')) pages.push(result.rows as ScannedRow[]);
      return result;
    },
  });
  return { pool, pages };
}

const event = numberedEvent;

test('a row beyond an append in progress comes without its data, then is handed out with it once the append ends', async (t) => {
  const { pool, pages } = recordingPool(database.url);
  const store = new PostgresEventStore(pool, { connectionString: database.url });
  const prefix = `data-${uuid().slice(0, 8)}`;
  const subscription = store.subscribeToAll({ filter: { streamPrefixes: [prefix] } });
  const slow = await database.pool.connect();
  try {
    // An append left open: every event committed after it lies beyond the server's xmin until it ends.
    await slow.query('BEGIN');
    const held = event(1);
    await appendInOpenTransaction(slow, `${prefix}-slow`, held);
    const later = event(2);
    await store.append(`${prefix}-fast`, [later], 'no_stream');
    await t.throwsAsync(take(subscription, 1, 1_000), { message: /gave 0\/1 events/ }, 'the later event waits for the open append');

    const sightings = pages.map((rows) => rows.find((row) => row.event_id === later.id)).filter((row) => row !== undefined);
    t.true(sightings.length > 0, 'the feed has scanned past the open append');
    t.is(sightings[0]!.data, null, 'the first page to find the later event could not hand it out, and did not carry its data');

    await slow.query('COMMIT');
    t.deepEqual((await take(subscription, 2)).events.map((e) => e.data), [{ n: 1 }, { n: 2 }]);
  } finally {
    await slow.query('ROLLBACK').catch(() => undefined);
    slow.release();
    await subscription.stop();
    await store.close();
    await pool.end();
  }
});
