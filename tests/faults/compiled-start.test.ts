/**
 * The production build: `npm run build` compiles to dist/, and `node dist/main.js` (no tsx, no TypeScript) starts,
 * finds its migrations and the admin console's files, and reaches /readyz in production mode. Also measures, in the
 * same run and the same environment, the time to /readyz and the resident memory once ready of both ways to start:
 * `node --import=tsx main.ts` (what `npm start` runs) and `node dist/main.js` (what the Docker image runs).
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../adapters/postgres/embedded.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { waitUntilReady } from './support.ts';

let database: TestDatabase;
let tmp: string;
const running = new Set<ChildProcess>();

test.before(async () => {
  database = await createTestDatabase();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tally-compiled-'));
});
test.after.always(async () => {
  for (const child of running) child.kill('SIGKILL');
  await database?.drop();
  await rm(tmp, { recursive: true, force: true });
});

function exec(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += String(c)));
    child.stderr.on('data', (c) => (output += String(c)));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

/** Production settings: every secret given, nothing generated, no simulator. */
function productionEnv(port: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DATA_DIR: tmp,
    DATABASE_URL: database.url,
    API_BASE_URL: `http://127.0.0.1:${port}`,
    FRONTEND_URL: 'https://app.tally.test',
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    IDENTITY_HASH_KEY: randomBytes(32).toString('base64url'),
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    CRON_SECRET: randomBytes(24).toString('base64url'),
  };
}

async function startAndMeasure(args: string[]): Promise<{ readyMs: number; rssMiB: number; child: ChildProcess; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const child = spawn(process.execPath, args, { env: productionEnv(port), stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout?.on('data', (c) => (output += String(c)));
  child.stderr?.on('data', (c) => (output += String(c)));
  await waitUntilReady(url, child, () => output, 120_000);
  const readyMs = Date.now() - started;
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return { readyMs, rssMiB: Math.round(rssKiB / 1024), child, url };
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

test('npm run build, then node dist/main.js reaches /readyz in production mode; start-up time and memory of both starts', async (t) => {
  t.timeout(300_000);
  const build = await exec('npm', ['run', '-s', 'build']);
  t.is(build.code, 0, build.output);
  const compiledMain = await readFile('dist/main.js', 'utf8');
  t.notRegex(compiledMain, /from ["'][^"']+\.ts["']|import\(["'][^"']+\.ts["']\)/, 'no .ts specifier is left in the output');

  // The database is a copy of the migrated template (tests/support/database.ts): neither measured start applies migrations.
  const compiled = await startAndMeasure(['--enable-source-maps', 'dist/main.js']);
  const admin = await fetch(`${compiled.url}/admin/app.css`);
  t.is(admin.status, 200, 'the admin console’s files are found from dist/');
  t.is(await stop(compiled.child), 0, 'SIGTERM stops the compiled service cleanly');
  const again = await startAndMeasure(['--import=tsx', 'main.ts']);
  t.is(await stop(again.child), 0);

  t.log(`start to /readyz: tsx ${again.readyMs} ms, compiled ${compiled.readyMs} ms; RSS when ready: tsx ${again.rssMiB} MiB, compiled ${compiled.rssMiB} MiB`);
  const cli = await exec(process.execPath, ['dist/cli/square.js', 'help']);
  t.is(cli.code, 0, 'the compiled CLI runs too');
});
