/**
 * README.md's quick start, run as written: the code block after the `quick-start` marker is run by bash, in order,
 * against a fresh `npm start` (a new DATA_DIR: embedded PostgreSQL, generated secrets, the built-in Square simulator).
 * Only the port changes (`localhost:3000` → a free one). Every curl fails the run on an HTTP error, and every command
 * on a non-zero exit, so the README cannot drift from what the service does.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { freePort } from '../../adapters/postgres/embedded.ts';
import { until } from '../support/eventually.ts';
import { waitUntilReady } from './support.ts';

let tmp: string;
let service: ChildProcess | undefined;

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tally-readme-'));
  await chmod(tmp, 0o755); // run as root, the embedded server runs as `postgres` and must reach its data
});
test.after.always(async () => {
  if (service?.pid && service.exitCode === null && service.signalCode === null) {
    const exited = new Promise((resolve) => service!.once('exit', resolve));
    process.kill(-service.pid, 'SIGTERM'); // npm and the node it started: the group this test made
    await exited;
  } else if (service?.pid) {
    // npm is gone; whatever it left in its group (a service that outlived it) goes too.
    try {
      process.kill(-service.pid, 'SIGTERM');
    } catch {
      // Nothing left.
    }
  }
  // npm may exit before the service has stopped its embedded PostgreSQL: wait for the server's pid file to go.
  await until(async () => existsSync(path.join(tmp, '.data', 'postgres', 'postmaster.pid')), (running) => !running, { timeoutMs: 30_000 });
  await rm(tmp, { recursive: true, force: true });
});

/** The code block after the `<!-- quick-start` marker. */
async function quickStartBlock(): Promise<string> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const marker = readme.indexOf('<!-- quick-start');
  if (marker < 0) throw new Error('README.md has no <!-- quick-start --> marker');
  const block = /```sh\n([\s\S]*?)\n```/.exec(readme.slice(marker));
  if (!block) throw new Error('no ```sh block after the quick-start marker');
  return block[1]!;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, options: { detached?: boolean } = {}) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += String(chunk)));
  child.stderr?.on('data', (chunk) => (output += String(chunk)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

test('the README quick start runs, command by command, against a fresh npm start', async (t) => {
  t.timeout(300_000);
  const block = await quickStartBlock();
  t.regex(block, /trigger payment/, 'the block is the whole loop');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), DATA_DIR: path.join(tmp, '.data') };

  // "ADMIN_EMAILS=admin@example.com npm start", as the README says, in a shell with nothing else set.
  const started = Date.now();
  const npmStart = run('npm', ['start'], { ...env, ADMIN_EMAILS: 'admin@example.com' }, { detached: true });
  service = npmStart.child;
  await waitUntilReady(`http://127.0.0.1:${port}`, npmStart.child, npmStart.output, 180_000);
  t.log(`npm start on a fresh DATA_DIR: ready in ${Date.now() - started} ms`);
  t.regex(npmStart.output(), /SQUARE IS SIMULATED/, 'the start-up says Square is simulated');

  const script = [
    'set -eo pipefail',
    // Any HTTP error fails the run (the README's curl -s would print it and go on).
    'curl() { command curl --fail-with-body "$@"; }',
    block.replaceAll('localhost:3000', `localhost:${port}`),
  ].join('\n');
  const quickStart = run('bash', ['-c', script], env);
  const code = await quickStart.exited;
  const output = quickStart.output();
  t.is(code, 0, `the block failed:\n${output.slice(-4000)}`);

  t.regex(output, new RegExp(`http://localhost:${port}/pos\\?connected=square`), 'the consent page’s Allow lands on /pos, connected');
  t.regex(output, /webhook payment\.updated event_id [0-9a-f-]{36}: Tally answered 200; processed: credited/);
  t.regex(output, /"consumerId":"jane-1","balance":10,/, 'Jane’s wallet holds 10 points');
  t.regex(output, /"balance":5,/, 'the redemption leaves 5');
  t.regex(output, /webhook refund\.updated event_id [0-9a-f-]{36}: Tally answered 200; processed: refund_applied/);
  t.regex(output, /"entryType":"debit","kind":"reversal","points":-5,"balanceAfter":0,/, 'the ledger shows the reversal');
  const audit = output.split('\n').filter((line) => line.startsWith('{"items":[')).at(-1) ?? '';
  for (const type of ['PointsCredited', 'PointsRedeemed', 'PointsReversed']) t.true(audit.includes(`"${type}"`), `the audit trail of the wallet has ${type}`);

  // A process manager signals the process it started, npm: the service stops with it (the script execs node, so no
  // shell sits between them that would die and leave the service running), and so does its embedded PostgreSQL.
  process.kill(npmStart.child.pid!, 'SIGTERM');
  await npmStart.exited;
  await until(async () => existsSync(path.join(tmp, '.data', 'postgres', 'postmaster.pid')), (running) => !running, { timeoutMs: 30_000 });
  t.regex(npmStart.output(), /stopped/, 'the service logged its stop');
});
