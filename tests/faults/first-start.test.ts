/**
 * `npm start` on a fresh machine: no DATABASE_URL, no secrets, nothing set up. The service initialises and starts
 * its own embedded PostgreSQL under DATA_DIR, generates development secrets, migrates, and serves; SIGTERM stops
 * it cleanly (the embedded server too); a second start reuses the data (no initdb) and finds what was written.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { v4 as uuid } from 'uuid';
import { freePort } from '../../adapters/postgres/embedded.ts';
import { api, tokenFor } from '../support/http.ts';
import { waitUntilReady } from './support.ts';

let tmp: string;
let child: ChildProcess | undefined;

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tally-first-start-'));
  await chmod(tmp, 0o755); // run as root, the embedded server runs as `postgres` and must reach its data
});
test.after.always(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(tmp, { recursive: true, force: true });
});

/** Exactly what a user's shell would have: none of the test tiers' or CI's database settings. */
function freshEnv(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), DATA_DIR: path.join(tmp, '.data'), LOG_LEVEL: 'info' };
  return env;
}

async function start(port: number): Promise<{ child: ChildProcess; logs: () => string; readyMs: number }> {
  const started = Date.now();
  const spawned = spawn(process.execPath, ['--import=tsx', 'main.ts'], { env: freshEnv(port), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  spawned.stdout?.on('data', (chunk) => (output += String(chunk)));
  spawned.stderr?.on('data', (chunk) => (output += String(chunk)));
  try {
    await waitUntilReady(`http://127.0.0.1:${port}`, spawned, () => output, 120_000);
  } catch (error) {
    spawned.kill('SIGKILL');
    throw error;
  }
  return { child: spawned, logs: () => output, readyMs: Date.now() - started };
}

function stop(running: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    running.once('exit', (code) => resolve(code));
    running.kill('SIGTERM');
  });
}

test('npm start with nothing set up: embedded PostgreSQL, generated secrets, a clean stop, and the data kept for the next start', async (t) => {
  t.timeout(240_000);
  const port = await freePort();
  const first = await start(port);
  child = first.child;
  t.log(`first start (initdb, migrations): ready in ${first.readyMs} ms`);
  const dataDir = path.join(tmp, '.data');
  t.true(existsSync(path.join(dataDir, 'dev-secrets.json')), 'development secrets were generated under DATA_DIR');
  t.regex(first.logs(), /development secrets were not configured/, 'and the log says so');
  t.regex(first.logs(), /Tally is listening/);

  // A user registers with a token signed by the generated secret, as a local front end would.
  const secrets = JSON.parse(await readFile(path.join(dataDir, 'dev-secrets.json'), 'utf8')) as { AUTH_JWT_SECRET: string };
  const userId = uuid();
  const token = await tokenFor(userId, 'first@start.test', { secret: secrets.AUTH_JWT_SECRET });
  const call = api(`http://127.0.0.1:${port}`);
  t.is((await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } })).status, 201);

  t.is(await stop(first.child), 0, 'SIGTERM stops it cleanly');
  t.true(existsSync(path.join(dataDir, 'postgres', 'PG_VERSION')), 'the embedded server keeps its data under DATA_DIR/postgres');
  t.false(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'and stopped with the service');
  for (const secret of Object.values(secrets)) t.false(first.logs().includes(secret), 'no generated secret in the logs');

  const second = await start(port);
  child = second.child;
  t.log(`second start (existing data): ready in ${second.readyMs} ms`);
  const me = await call('GET', '/api/v1/me', { token });
  t.is(me.status, 200, 'the same secret still signs, and the registration was kept');
  t.like(me.body, { id: userId, role: 'consumer' });

  // A second service on the same DATA_DIR while this one runs: refused, naming the server in use and what to do.
  const other = spawn(process.execPath, ['--import=tsx', 'main.ts'], { env: freshEnv(await freePort()), stdio: ['ignore', 'pipe', 'pipe'] });
  let otherOutput = '';
  other.stdout?.on('data', (chunk) => (otherOutput += String(chunk)));
  other.stderr?.on('data', (chunk) => (otherOutput += String(chunk)));
  const otherExit = await new Promise<number | null>((resolve) => other.once('exit', (code) => resolve(code)));
  t.is(otherExit, 1);
  t.regex(otherOutput, /embedded PostgreSQL server of .* is already running \(pid \d+, port \d+\), started by process \d+/);
  t.is((await call('GET', '/api/v1/me', { token })).status, 200, 'the running service is untouched');

  // The service killed outright leaves its PostgreSQL server running; the next start stops that one and starts again.
  const orphaned = await new Promise<void>((resolve) => {
    second.child.once('exit', () => resolve());
    second.child.kill('SIGKILL');
  });
  void orphaned;
  t.true(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'its PostgreSQL server outlived it');
  const third = await start(port);
  child = third.child;
  t.regex(third.logs(), /left running by a process that died: stopping it/);
  t.is((await call('GET', '/api/v1/me', { token })).status, 200, 'and the data is all there');
  // Ctrl-C on `npm start` in a terminal: the terminal signals the process group and npm forwards its own, so the
  // service gets SIGINT twice within milliseconds. One Ctrl-C, one orderly stop (it exited at once with 130 before).
  const stopped = new Promise<number | null>((resolve) => third.child.once('exit', (code) => resolve(code)));
  third.child.kill('SIGINT');
  third.child.kill('SIGINT');
  t.is(await stopped, 0, third.logs());
  t.notRegex(third.logs(), /second signal|connection lost/);
  t.regex(third.logs(), /"msg":"stopped"/);
  t.false(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')));
});

test('a signal during start-up (embedded server starting, migrations running) stops the service once started: no crash, the data usable', async (t) => {
  t.timeout(240_000);
  const port = await freePort();
  const dataDir = path.join(tmp, '.data-interrupted');
  const env = { ...freshEnv(port), DATA_DIR: dataDir };
  const spawned = spawn(process.execPath, ['--import=tsx', 'main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let signalled = false;
  const exited = new Promise<number | null>((resolve) => spawned.once('exit', (code) => resolve(code)));
  const onOutput = (chunk: Buffer) => {
    output += String(chunk);
    // As soon as the embedded server is being started: initdb, the server's start and the migrations are still ahead.
    if (!signalled && output.includes('starting the embedded PostgreSQL server')) {
      signalled = true;
      spawned.kill('SIGTERM');
    }
  };
  spawned.stdout?.on('data', onOutput);
  spawned.stderr?.on('data', onOutput);
  const code = await exited;
  t.true(signalled);
  t.is(code, 0, output.slice(-2000));
  t.regex(output, /SIGTERM during start-up: stopping once started/);
  t.notRegex(output, /Unhandled 'error' event|Tally failed to start/);
  t.notRegex(output, /^\s+at /m, 'no stack trace printed');
  t.false(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'the embedded server stopped with it');
  const again = spawn(process.execPath, ['--import=tsx', 'main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child = again;
  let againOutput = '';
  again.stdout?.on('data', (chunk) => (againOutput += String(chunk)));
  again.stderr?.on('data', (chunk) => (againOutput += String(chunk)));
  await waitUntilReady(`http://127.0.0.1:${port}`, again, () => againOutput, 120_000);
  t.is(await stop(again), 0, 'the next start is ready and stops cleanly');
});
