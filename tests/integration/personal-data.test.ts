/**
 * The contacts store: a phone change writes the phone alone, so an erasure that ran between the change's read and its
 * write is not undone (it used to save the email it had read back with the new phone).
 */
import test, { type ExecutionContext } from 'ava';
import { FORMER_EMAILS_KEPT, FORMER_PHONES_KEPT, postgresPersonalData } from '../../adapters/postgres/personal-data.ts';
import { createTestDatabase } from '../support/database.ts';

/** The contacts store on a database of its own, dropped after the test. */
async function freshStore(t: ExecutionContext) {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  return postgresPersonalData(db.pool);
}

test('a phone change keeps the email as stored now: kept when there is one, not brought back after an erasure', async (t) => {
  const store = await freshStore(t);
  await store.save({ userId: 'u1', email: 'kept@example.com', phone: '+12125550100' });
  await store.savePhone('u1', '+12125550101');
  t.deepEqual(await store.get('u1'), { userId: 'u1', email: 'kept@example.com', phone: '+12125550101' });

  await store.save({ userId: 'u2', email: 'erased@example.com', phone: '+12125550102' });
  await store.erase('u2'); // the erasure lands between a phone change's read and its write
  await store.savePhone('u2', '+12125550103');
  t.deepEqual(await store.get('u2'), { userId: 'u2', email: null, phone: '+12125550103' });
});

test('the phones a person changed away from are kept for erasure to search, each once, and go with the row', async (t) => {
  const store = await freshStore(t);
  await store.save({ userId: 'u3', email: 'moved@example.com', phone: '+12125550110' });
  await store.savePhone('u3', '+12125550111');
  await store.savePhone('u3', '+12125550110');
  await store.savePhone('u3', null);
  t.deepEqual(await store.get('u3'), { userId: 'u3', email: 'moved@example.com', phone: null });
  t.deepEqual(await store.contactsEver('u3'), { emails: ['moved@example.com'], phones: ['+12125550110', '+12125550111'] });
  await store.erase('u3');
  t.is(await store.contactsEver('u3'), undefined);
});

test('only the latest FORMER_PHONES_KEPT former phones are kept: a client changing its phone without end cannot grow them', async (t) => {
  const store = await freshStore(t);
  const phone = (i: number) => `+1212555${String(1000 + i)}`;
  await store.save({ userId: 'u4', email: 'restless@example.com', phone: phone(0) });
  for (let i = 1; i <= FORMER_PHONES_KEPT + 15; i++) await store.savePhone('u4', phone(i));
  const ever = await store.contactsEver('u4');
  const latest = Array.from({ length: FORMER_PHONES_KEPT }, (_, k) => phone(15 + k));
  t.deepEqual(ever?.phones.slice().sort(), [phone(FORMER_PHONES_KEPT + 15), ...latest].sort(), 'the current phone and the latest former ones');
});

test('the emails a person changed away from are kept for erasure to search, each once, the latest FORMER_EMAILS_KEPT, and go with the row', async (t) => {
  const store = await freshStore(t);
  await store.save({ userId: 'u5', email: 'first@example.com', phone: '+12125550120' });
  await store.saveEmail('u5', 'second@example.com');
  await store.saveEmail('u5', 'first@example.com');
  await store.saveEmail('u5', 'first@example.com');
  t.deepEqual(await store.get('u5'), { userId: 'u5', email: 'first@example.com', phone: '+12125550120' }, 'the phone stays');
  t.deepEqual(await store.contactsEver('u5'), { emails: ['first@example.com', 'second@example.com'], phones: ['+12125550120'] });
  for (let i = 1; i <= FORMER_EMAILS_KEPT + 5; i++) await store.saveEmail('u5', `moved-${i}@example.com`);
  const ever = await store.contactsEver('u5');
  t.is(ever?.emails.length, FORMER_EMAILS_KEPT + 1, 'the current email and the latest former ones');
  t.true(ever?.emails.includes(`moved-${FORMER_EMAILS_KEPT + 5}@example.com`) && !ever.emails.includes('second@example.com'));
  await store.erase('u5');
  t.is(await store.contactsEver('u5'), undefined);
});
