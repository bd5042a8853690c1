/**
 * Readiness's migrations check: a database without the migrations table has every migration pending; a database
 * that cannot be reached is a failed check, not "every migration pending" (review of 2026-12-07, seventh round:
 * during an outage `/readyz` listed all 35 migrations as pending).
 */
import test from 'ava';
import { pendingMigrations } from '../../adapters/postgres/migrate.ts';

const files = ['0001_event-store.sql', '0010_read-models.sql'];
const failing = (error: Error & { code?: string }) => () => Promise.reject(error);

test('a database without the migrations table has every migration pending', async (t) => {
  t.deepEqual(await pendingMigrations(failing(Object.assign(new Error('relation "schema_migrations" does not exist'), { code: '42P01' })), files), files);
});

test('an unreachable database fails the check instead', async (t) => {
  await t.throwsAsync(pendingMigrations(failing(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })), files), { message: /ECONNREFUSED/ });
});

test('applied migrations are not pending', async (t) => {
  t.deepEqual(await pendingMigrations(async () => ({ rows: [{ name: '0001_event-store.sql' }] }), files), ['0010_read-models.sql']);
});
