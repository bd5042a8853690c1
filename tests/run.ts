/**
 * Test entry point (`npm test`): type-checks and compiles the tree to .build/ (tsconfig.test.json, incremental),
 * provides a PostgreSQL server, prepares a migrated template database, then runs ava on the compiled tests
 * (`@ava/typescript` maps `tests/…/x.test.ts` to `.build/tests/…/x.test.js`). With DATABASE_URL set it uses that
 * server (databases are created and dropped on it); otherwise it starts an embedded PostgreSQL server in a
 * temporary directory and removes it afterwards. Arguments are passed to ava (e.g. a subset of files, by their
 * `.ts` paths).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, chmod, mkdir, symlink, lstat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../adapters/postgres/embedded.ts';
import { runMigrations } from '../adapters/postgres/migrate.ts';
import { databaseUrl } from './support/database.ts';

function run(command: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit' });
    child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  });
}

/**
 * What the compiled tree reads beside its modules and tsc does not emit: linked to the sources' copies, so that
 * `.build/` keeps the sources' layout (as `npm run build` copies migrations/ and http/admin/ into dist/).
 */
const ASSETS = ['migrations', 'http/admin', 'tests/fixtures', 'bench/results', 'README.md', '.env.example', 'docker-compose.yml', 'package.json', 'package-lock.json'];

async function compile(): Promise<boolean> {
  process.stdout.write('Type-checking and compiling to .build/ (tsconfig.test.json)...\n');
  // `-b`: a tree unchanged since the last run (CI runs this four times: the tests, the integration tier, the faults,
  // the console) is seen up to date from the build info in about half a second, where `-p` checked it all again
  // (10–20 s each time); a change, or an error left from before, is checked and reported as with `-p`.
  if ((await run(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-b', 'tsconfig.test.json'])) !== 0) return false;
  for (const asset of ASSETS) {
    const link = path.join('.build', asset);
    if (await lstat(link).then(() => true, () => false)) continue;
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(path.relative(path.dirname(link), asset), link);
  }
  return true;
}

async function main(): Promise<number> {
  if (!(await compile())) return 1;
  let embedded: EmbeddedPostgresServer | undefined;
  let tmp: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tally-test-pg-'));
    await chmod(tmp, 0o755);
    process.stdout.write('Starting an embedded PostgreSQL server for the tests...\n');
    // A throwaway server: durability buys nothing here (the second CI run covers a durable server).
    embedded = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'data'), throwaway: true, settings: ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] });
    adminUrl = embedded.adminUrl;
  }
  const server = new URL(adminUrl);
  process.stdout.write(`Tests use PostgreSQL at ${server.hostname}:${server.port || 5432}\n`);
  const template = `tally_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  process.stdout.write(`PostgreSQL server version ${version}\n`);
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  try {
    await runMigrations(databaseUrl(adminUrl, template));
    process.env.TALLY_TEST_ADMIN_URL = adminUrl;
    process.env.TALLY_TEST_TEMPLATE = template;
    return await run(process.execPath, [path.resolve('node_modules/ava/entrypoints/cli.mjs'), ...process.argv.slice(2)]);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    await embedded?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
