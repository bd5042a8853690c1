/**
 * Migrations against a server that accepts the connection and never answers (a wrong port behind a proxy, a hung
 * server): start-up and `npm run migrate` fail within the connect timeout, with an error, rather than hang.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { MIGRATION_CONNECT_TIMEOUT_MS, runMigrations } from '../../adapters/postgres/migrate.ts';
import { probeDatabaseUrl } from '../../adapters/postgres/local-database.ts';

/** A server that accepts connections and never answers; its sockets, to count them. */
async function silentServer(t: ExecutionContext) {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  return { url: `postgres://u:p@127.0.0.1:${(silent.address() as AddressInfo).port}/x`, sockets };
}

test('a database that accepts and never answers fails the migrations within the connect timeout', async (t) => {
  const { url, sockets } = await silentServer(t);
  const started = Date.now();
  const error = await t.throwsAsync(runMigrations(url));
  const tookMs = Date.now() - started;
  t.regex(String(error?.message), /timeout/i);
  t.true(tookMs >= MIGRATION_CONNECT_TIMEOUT_MS - 500 && tookMs < MIGRATION_CONNECT_TIMEOUT_MS + 5_000, `${tookMs} ms`);
  t.true(sockets.size >= 1, 'it did connect, and then waited for an answer');
});

test('a DATABASE_URL that cannot be used fails start-up naming the variable and where it points, never its password', async (t) => {
  const refused = await t.throwsAsync(probeDatabaseUrl('postgres://tally:s3cret-pass@127.0.0.1:1/tally'));
  t.regex(String(refused?.message), /^DATABASE_URL \(postgres:\/\/tally:\*\*\*@127\.0\.0\.1:1\/tally\) cannot be used: .*ECONNREFUSED/);
  t.false(String(refused?.message).includes('s3cret-pass'));
  // A real server, a database it does not have: PostgreSQL's own reason, after the variable's name.
  const server = new URL(process.env.TALLY_TEST_ADMIN_URL!);
  server.pathname = '/no_such_database_here';
  const unknown = await t.throwsAsync(probeDatabaseUrl(server.toString()));
  t.regex(String(unknown?.message), /^DATABASE_URL \(.*\/no_such_database_here\) cannot be used: database "no_such_database_here" does not exist/);
});

test('start-up says a silent database did not answer within the connect timeout; npm run rotate-keys fails too, not hangs', async (t) => {
  const { url, sockets } = await silentServer(t);
  // The compiled command (tests/run.ts compiles cli/ with the tests).
  const env = { PATH: process.env.PATH, NODE_ENV: 'test', DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'tally-rotate-')), DATABASE_URL: url, ENCRYPTION_KEY: randomBytes(32).toString('base64') };
  const child = spawn(process.execPath, [path.resolve('.build/cli/rotate-keys.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let err = '';
  child.stderr.on('data', (c) => (err += String(c)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const probe = await t.throwsAsync(probeDatabaseUrl(url));
  t.regex(String(probe?.message), /cannot be used: no answer within 10 s \(connection timeout/);
  const code = await exited;
  t.not(code, 0);
  t.regex(err, /timeout/i);
  t.true(sockets.size >= 2, 'both connected, and then waited for an answer');
});
