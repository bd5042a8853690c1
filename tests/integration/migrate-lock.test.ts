/**
 * A migration waiting for a lock (a long transaction of a running instance on a table it alters, another instance
 * migrating) gives up after `lock_timeout`, rolls back and tries again, instead of queueing every reader and writer
 * of that table behind itself for as long as that transaction lasts.
 */
import test from 'ava';
import pino from 'pino';
import { Writable } from 'node:stream';
import { runMigrations } from '../../adapters/postgres/migrate.ts';
import { createTestDatabase } from '../support/database.ts';

test('a migration that waits for a lock past its timeout rolls back and tries again, then applies once the lock is free', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const holder = await database.pool.connect();
  t.teardown(() => holder.release());
  // A long transaction holds the migrations' own table: the runner cannot read what is applied.
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE');
  const warnings: { attempt: number; msg: string }[] = [];
  let released: (() => void) | undefined;
  const freed = new Promise<void>((resolve) => (released = resolve));
  const log = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _encoding, done) {
        const line = JSON.parse(String(chunk)) as { attempt: number; msg: string };
        warnings.push(line);
        // The lock is let go once the runner has given up on it twice.
        if (warnings.length === 2) void holder.query('COMMIT').then(() => released!());
        done();
      },
    }),
  );
  const applied = await runMigrations(database.url, log, { lockTimeoutMs: 200, pauseMs: () => 20 });
  await freed;
  t.deepEqual(applied, [], 'everything was applied already: nothing twice');
  t.true(warnings.length >= 2, JSON.stringify(warnings));
  t.regex(warnings[0]!.msg, /waited too long for a lock/);
  t.deepEqual(warnings.slice(0, 2).map((w) => w.attempt), [1, 2]);
});

test('a lock that stays taken fails the migrations after the tries, naming the lock timeout', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const holder = await database.pool.connect();
  t.teardown(async () => {
    await holder.query('ROLLBACK');
    holder.release();
  });
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE');
  const error = await t.throwsAsync(runMigrations(database.url, undefined, { lockTimeoutMs: 100, tries: 3, pauseMs: () => 10 }));
  t.regex(String(error?.message), /lock timeout/i);
});
