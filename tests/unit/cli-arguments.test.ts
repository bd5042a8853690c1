/**
 * The operations commands read their arguments strictly: `--help` prints the usage and does nothing else (here the
 * database they would open does not exist, so doing anything would fail), an unknown option is named with exit 2.
 */
import test from 'ava';
import { spawn } from 'node:child_process';

function run(command: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    // The compiled command (tests/run.ts compiles cli/ with the tests): no TypeScript loader to start each time.
    const child = spawn(process.execPath, [`.build/cli/${command}.js`, ...args], {
      // Nothing listens there: a command that went on to its work would fail (exit 1), not answer 0.
      env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += String(c)));
    child.stderr.on('data', (c) => (err += String(c)));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

for (const command of ['migrate', 'rotate-keys', 'catalogue', 'rebuild', 'reconcile']) {
  test(`npm run ${command} -- --help prints its usage and does nothing`, async (t) => {
    const help = await run(command, ['--help']);
    t.is(help.code, 0, help.err);
    t.regex(help.out, new RegExp(`^Usage: npm run ${command}`));
    t.false(help.out.includes('| `'), 'no catalogue printed');
  });
}

// One parser for all (cli/arguments.ts): an unknown option checked on the command that would change the database.
test('an unknown option exits 2 naming it, with the usage, before the command does anything', async (t) => {
  const bogus = await run('migrate', ['--bogus']);
  t.is(bogus.code, 2);
  t.regex(bogus.err, /Unknown option '--bogus'[\s\S]*Usage: npm run migrate/);
});
