/**
 * A fresh, migrated PostgreSQL database per test file, cloned from the template that tests/run.ts prepared
 * on the embedded server (or on the server named by DATABASE_URL).
 */
import pg from 'pg';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through 'npm test' (tests/run.ts prepares the database server)`);
  return value;
}

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = requireEnv('TALLY_TEST_ADMIN_URL');
  const template = requireEnv('TALLY_TEST_TEMPLATE');
  const name = `tally_t_${uuid().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  pool.on('error', () => undefined);
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A fresh database with a PostgreSQL event store on it; `close` stops the store and drops the database. */
export async function createTestEventStore(): Promise<{ database: TestDatabase; store: PostgresEventStore; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const store = new PostgresEventStore(database.pool, { connectionString: database.url });
  return {
    database,
    store,
    async close() {
      await store.close();
      await database.drop();
    },
  };
}

/**
 * A fresh database with a PostgreSQL event store for a test file: made before its tests, closed after them. Read
 * `database` and `store` inside the tests (they are set once `before` has run).
 */
export function eventStoreForTests(test: { before(fn: () => Promise<void>): void; after: { always(fn: () => Promise<void>): void } }) {
  const suite = {} as { database: TestDatabase; store: PostgresEventStore; close(): Promise<void> };
  test.before(async () => {
    Object.assign(suite, await createTestEventStore());
  });
  test.after.always(async () => suite.close?.());
  return suite;
}
