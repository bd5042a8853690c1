/**
 * The embedded PostgreSQL server starts for a user who is not root (a developer's own account, the usual case of
 * `npm start`). Found in review (2026-12-08): the library was asked to create a `postgres` user whoever ran it, ran
 * `groupadd` and failed ("Failed to create and initialize a new user on this system"); every run here was as root.
 * Run as root (CI), the server is started by a child process running as an ordinary user made for the test.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../adapters/postgres/embedded.ts';

/** The module as this file was built beside it (tests/run.ts compiles both; the child runs plain node). */
const EMBEDDED = new URL(`../../adapters/postgres/embedded.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);
const USER = 'tally-dev-test';

/** The uid and gid of an ordinary user, created when missing (root only). */
function ordinaryUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--create-home', '--shell', '/usr/sbin/nologin', USER]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

test('the embedded server initialises, starts and stops for a user who is not root', async (t) => {
  t.timeout(180_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-non-root-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dataDir = path.join(dir, 'data', 'postgres');
  if (process.getuid?.() !== 0) {
    const server = await startEmbeddedPostgres({ dataDir, throwaway: true });
    try {
      const client = new pg.Client({ connectionString: server.adminUrl });
      await client.connect();
      const { rows } = await client.query<{ user: string }>('SELECT current_user AS user');
      await client.end();
      t.is(rows[0]?.user, 'postgres', 'the server answers');
    } finally {
      await server.stop();
    }
    return;
  }
  const { uid, gid } = ordinaryUser();
  const script = path.join(dir, 'start.mjs');
  await writeFile(
    script,
    `import { startEmbeddedPostgres } from ${JSON.stringify(EMBEDDED.href)};
const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, throwaway: true });
console.log('started on ' + server.port);
await server.stop();
console.log('stopped');
`,
  );
  await chown(dir, uid, gid);
  const loader = EMBEDDED.pathname.endsWith('.ts') ? ['--import=tsx'] : [];
  const child = spawn(process.execPath, [...loader, script], { cwd: fileURLToPath(new URL('.', EMBEDDED)), uid, gid, env: { ...process.env, HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0, out);
  t.regex(out, /started on \d+\nstopped/);
});
