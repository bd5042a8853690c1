/**
 * The batched identity match (webhook batches) answers, for every set of hashes, exactly what the one-at-a-time
 * match answers: the approved, unerased consumer owning the set's first owned hash (a verified identity), in one
 * query for the whole batch.
 */
import test from 'ava';
import type pg from 'pg';
import { consumerByIdentity, consumersByIdentity } from '../../projections/read/accounts.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
  const pool = database.pool;
  const user = (id: string, status: string, email: string, phone: string | null, erased = false, role = 'consumer') =>
    pool.query(
      `INSERT INTO users (id, role, status, email_hash, phone_hash, registered_at, updated_at, erased) VALUES ($1, $2, $3, $4, $5, now(), now(), $6)`,
      [id, role, status, email, phone, erased],
    );
  const own = (hash: string, consumerId: string) => pool.query(`INSERT INTO identity_owners (identity_hash, consumer_id, since) VALUES ($1, $2, now())`, [hash, consumerId]);
  // ann verified both; bob verified his email only (his phone is unverified: no owner row); cat verified a phone
  // but is suspended; dan is erased (his owner row kept here on purpose: the read must still refuse him);
  // eve took over a phone first registered by bob.
  await user('ann', 'approved', 'email:ann', 'phone:ann');
  await user('bob', 'approved', 'email:bob', 'phone:bob');
  await user('cat', 'suspended', 'email:cat', 'phone:cat');
  await user('dan', 'approved', 'email:dan', null, true);
  await user('eve', 'approved', 'email:eve', 'phone:shared');
  await own('email:ann', 'ann');
  await own('phone:ann', 'ann');
  await own('email:bob', 'bob');
  await own('phone:cat', 'cat');
  await own('email:dan', 'dan');
  await own('phone:shared', 'eve');
});
test.after.always(async () => {
  await database?.drop();
});

const SETS: string[][] = [
  [],
  ['email:ann'],
  ['email:nobody', 'phone:ann'],
  ['email:bob', 'phone:ann'],
  ['phone:ann', 'email:bob'],
  ['phone:bob'],
  ['email:cat', 'phone:cat'],
  ['phone:cat', 'email:bob'],
  ['email:dan'],
  ['email:dan', 'phone:shared'],
  ['phone:shared', 'phone:shared'],
  ['email:unknown', 'phone:unknown'],
];

test('each set gets what consumerByIdentity answers for it, in one query', async (t) => {
  const one = await Promise.all(SETS.map((hashes) => consumerByIdentity(database.pool, hashes)));
  t.deepEqual(one, [undefined, 'ann', 'ann', 'bob', 'ann', undefined, undefined, 'bob', undefined, 'eve', 'eve', undefined]);
  let queries = 0;
  const counting = new Proxy(database.pool, {
    get(target, property, receiver) {
      if (property === 'query') return (...args: Parameters<pg.Pool['query']>) => (queries++, (target.query as (...a: unknown[]) => unknown)(...args));
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  t.deepEqual(await consumersByIdentity(counting, SETS), one);
  t.is(queries, 1);
});
