/**
 * The contacts store: a phone change writes the phone alone, so an erasure that ran between the change's read and its
 * write is not undone (it used to save the email it had read back with the new phone).
 */
import test from 'ava';
import { postgresPersonalData } from '../../adapters/postgres/personal-data.ts';
import { createTestDatabase } from '../support/database.ts';

test('a phone change keeps the email as stored now: kept when there is one, not brought back after an erasure', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const store = postgresPersonalData(db.pool);
  await store.save({ userId: 'u1', email: 'kept@example.com', phone: '+12125550100' });
  await store.savePhone('u1', '+12125550101');
  t.deepEqual(await store.get('u1'), { userId: 'u1', email: 'kept@example.com', phone: '+12125550101' });

  await store.save({ userId: 'u2', email: 'erased@example.com', phone: '+12125550102' });
  await store.erase('u2'); // the erasure lands between a phone change's read and its write
  await store.savePhone('u2', '+12125550103');
  t.deepEqual(await store.get('u2'), { userId: 'u2', email: null, phone: '+12125550103' });
});
