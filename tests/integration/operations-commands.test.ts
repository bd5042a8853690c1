/**
 * The operations commands against DATABASE_URL: only `npm run migrate` applies migrations (the others refuse a
 * database with one pending, exit 2, and change nothing), a database that cannot be used is named as DATABASE_URL by
 * every command, and a misspelt projection name is refused before anything is opened.
 */
import test from 'ava';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { v4 as uuid } from 'uuid';
import { MIGRATIONS_DIR, migrationNames, runMigrations } from '../../adapters/postgres/migrate.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import { handleCommand } from '../../domain/shared/command-handler.ts';
import { userDecider } from '../../domain/users/decider.ts';
import { userStream } from '../../domain/users/events.ts';
import { testCommandPath } from '../support/command-path.ts';
import { runCommand } from '../support/command.ts';
import { createTestDatabase, databaseUrl } from '../support/database.ts';

/** The newest migration, taken out of a database by its own `-- Down Migration` part (each file has one). */
const NEWEST = (await migrationNames()).at(-1)!;
async function undoNewest(pool: pg.Pool): Promise<void> {
  const sql = await readFile(path.join(MIGRATIONS_DIR, `${NEWEST}.sql`), 'utf8');
  const down = sql.split(/^-- Down Migration$/m)[1];
  if (!down?.trim()) throw new Error(`${NEWEST}.sql has no -- Down Migration part`);
  await pool.query(down);
  await pool.query('DELETE FROM schema_migrations WHERE name = $1', [NEWEST]);
}
const PENDING = /migrations? pending: run `npm run migrate` \(or deploy the release\) first/;

async function applied(pool: pg.Pool): Promise<boolean> {
  return (await pool.query('SELECT 1 FROM schema_migrations WHERE name = $1', [NEWEST])).rowCount === 1;
}

test('reconcile, rebuild, rotate-keys and reinstate refuse a database with a migration pending and apply none; migrate applies it', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  // The database as the release before the newest migration left it.
  await undoNewest(database.pool);
  const env = { DATABASE_URL: database.url };

  for (const [command, args] of [['reconcile', []], ['rebuild', ['wallets']], ['rotate-keys', []], ['reinstate', [uuid()]]] as const) {
    const run = await runCommand(command, [...args], env);
    t.is(run.code, 2, `${command}: ${run.err}`);
    t.regex(run.err, /1 migration pending: run `npm run migrate` \(or deploy the release\) first/, command);
    t.false(await applied(database.pool), `${command} applied no migration`);
  }

  const migrate = await runCommand('migrate', [], env);
  t.is(migrate.code, 0, migrate.err);
  t.is(migrate.out, `Applied: ${NEWEST}\n`);
  t.is((await runCommand('reconcile', [], env)).code, 0);
});

test('on a fresh checkout (no DATABASE_URL) reconcile migrates the embedded server it started for itself, which serves nobody else', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tally-fresh-'));
  // Run as root, the server runs as the `postgres` user, which must reach the directory.
  await chmod(dataDir, 0o755);
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const run = await runCommand('reconcile', [], { DATA_DIR: dataDir });
  t.is(run.code, 0, run.err);
  t.regex(run.out, /^Wallets checked: 0\n/);
});

test('rotate-keys on a database never migrated says to migrate, and exits 2 (it could not run), not 1', async (t) => {
  const admin = new pg.Client({ connectionString: process.env.TALLY_TEST_ADMIN_URL });
  await admin.connect();
  const name = `tally_empty_${uuid().replaceAll('-', '').slice(0, 12)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  t.teardown(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });
  const run = await runCommand('rotate-keys', [], { DATABASE_URL: databaseUrl(process.env.TALLY_TEST_ADMIN_URL!, name) });
  t.is(run.code, 2, run.err);
  t.regex(run.err, PENDING);
  t.true(run.err.includes(`${(await migrationNames()).length} migrations pending`), run.err);
});

test('every command names DATABASE_URL, never its password, when it cannot be used', async (t) => {
  const env = { DATABASE_URL: 'postgres://tally:s3cret-pass@127.0.0.1:1/tally' };
  // migrate's failures exit 1, as they always have; the others' "could not run" is 2.
  for (const [command, args, code] of [['migrate', [], 1], ['rotate-keys', [], 2], ['reconcile', [], 2], ['rebuild', ['wallets'], 2], ['reinstate', [uuid()], 2]] as const) {
    const run = await runCommand(command, [...args], env);
    t.is(run.code, code, `${command}: ${run.err}`);
    t.regex(run.err, /DATABASE_URL \(postgres:\/\/tally:\*\*\*@127\.0\.0\.1:1\/tally\) cannot be used: .*ECONNREFUSED/, command);
    t.false(run.err.includes('s3cret-pass'), command);
  }
});

test('reinstate brings a suspended admin back as the operator (the way back when no admin is left); again it changes nothing', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const store = new PostgresEventStore(database.pool, { connectionString: database.url });
  t.teardown(() => store.close());
  const context = { newId: () => uuid(), metadata: {}, path: testCommandPath() };
  const now = () => new Date().toISOString();
  const [adminId, otherId] = [uuid(), uuid()];
  const registration = { type: 'RegisterUser', requestedRole: 'consumer', isAdmin: true, emailVerifiedVia: 'token', phoneVerifiedVia: null, suspendedAsUser: null, phoneHash: null, businessName: null, now: now() } as const;
  await handleCommand(store, userStream(adminId), userDecider, { ...registration, userId: adminId, emailHash: `email:${adminId}` }, context);
  await handleCommand(store, userStream(adminId), userDecider, { type: 'SuspendUser', userId: adminId, by: otherId, reason: null, now: now() }, context);
  const env = { DATABASE_URL: database.url };

  const run = await runCommand('reinstate', [adminId], env);
  t.is(run.code, 0, run.err);
  t.is(run.out, `Reinstated user ${adminId} (admin): approved again.\n`);
  const last = (await store.readStream(userStream(adminId))).at(-1)!;
  t.is(last.type, 'UserReinstated');
  t.like(last.data, { reinstatedBy: 'system:operator', status: 'approved' });
  t.is(last.metadata.actor, 'system:operator', 'the audit trail names the operator');

  const again = await runCommand('reinstate', [adminId], env);
  t.is(again.code, 0, again.err);
  t.is(again.out, `User ${adminId} (admin) is not suspended (approved): nothing to do.\n`);
  t.is((await store.readStream(userStream(adminId))).at(-1)!.id, last.id, 'nothing appended');

  const nobody = await runCommand('reinstate', [otherId], env);
  t.is(nobody.code, 1);
  t.regex(nobody.err, new RegExp(`^No user ${otherId}: nothing reinstated`));
  const usage = await runCommand('reinstate', [], env);
  t.is(usage.code, 2);
  t.regex(usage.err, /Usage: npm run reinstate -- <user id>/);
});

test('a misspelt projection name is refused before anything is opened', async (t) => {
  const run = await runCommand('rebuild', ['walets'], { DATABASE_URL: 'postgres://tally:pw@127.0.0.1:1/tally' });
  t.is(run.code, 2);
  t.regex(run.err, /^Unknown or not rebuildable: walets\nUsage: npm run rebuild/);
  t.regex(run.err, /Projections: users, workspaces, reward_rules, wallets/);
  t.false(run.err.includes('DATABASE_URL'), 'no connection was tried');
});

// Serial: ava runs it before the others, so that no other test's socket is open in this process meanwhile.
test.serial("the migrations' connection is closed before runMigrations returns (a command then stops its embedded server)", async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  const before = sockets();
  t.deepEqual(await runMigrations(database.url), []);
  // node-pg-migrate's own client was ended without waiting: its socket was still open here, and its server stopping
  // then was an `error` event on a client with no listener (the command crashed after printing its success).
  t.is(sockets(), before);
});
