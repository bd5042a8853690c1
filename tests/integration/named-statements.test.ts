/**
 * Statements named by their text (adapters/postgres/named.ts): one name per text, never one name for two texts, and
 * a statement prepared on a connection keeps working, on the new table, after the table it names is replaced the way
 * a rebuild's takeover replaces it (the old one renamed away, the fresh copy renamed into its place).
 */
import test from 'ava';
import { named } from '../../adapters/postgres/named.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

test('a text always has the same name, and two texts two names', (t) => {
  const insertA = named('INSERT INTO a (n) VALUES ($1)');
  t.deepEqual(named('INSERT INTO a (n) VALUES ($1)'), insertA);
  t.is(insertA.text, 'INSERT INTO a (n) VALUES ($1)');
  t.regex(insertA.name, /^tally_[0-9a-f]{24}$/);
  t.not(named('INSERT INTO b (n) VALUES ($1)').name, insertA.name);
});

test('a prepared statement writes to the table that holds the name once a takeover has swapped it', async (t) => {
  const client = await database.pool.connect();
  try {
    await client.query('CREATE TABLE swapped (n int NOT NULL)');
    const insert = named('INSERT INTO swapped (n) SELECT unnest($1::int[])');
    // More than five executions: PostgreSQL has settled on a plan by then (custom plans first, then the generic one).
    for (let i = 0; i < 7; i++) await client.query(insert, [[i]]);
    await client.query('CREATE TABLE swapped_fresh (n int NOT NULL)');
    await client.query('ALTER TABLE swapped RENAME TO swapped_old');
    await client.query('ALTER TABLE swapped_fresh RENAME TO swapped');
    await client.query(insert, [[100, 101]]);
    const { rows: fresh } = await client.query<{ n: number }>('SELECT n FROM swapped ORDER BY n');
    t.deepEqual(
      fresh.map((r) => r.n),
      [100, 101],
    );
    const { rows: old } = await client.query<{ count: string }>('SELECT count(*) FROM swapped_old');
    t.is(Number(old[0]!.count), 7);
  } finally {
    client.release();
  }
});
