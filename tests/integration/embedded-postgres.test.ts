/**
 * The embedded PostgreSQL server runs in a session of its own (found in review, 2026-12-08): in the terminal's
 * process group, Ctrl-C reached it at the same moment as the service, and it shut down under the service's own
 * orderly shutdown. Its postmaster's process group and session must not be this process's.
 */
import test from 'ava';
import { chmod, readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../adapters/postgres/embedded.ts';

/** The process group and session of a process (fields 5 and 6 of /proc/<pid>/stat, after the command's parentheses). */
async function groupAndSession(pid: number): Promise<{ pgrp: number; session: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const [, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(pgrp), session: Number(session) };
}

test('the embedded server is in a process group and session of its own, not the service\'s', async (t) => {
  t.timeout(120_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-embedded-group-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Run as root, the server runs as `postgres`, which must enter the directory.
  await chmod(dir, 0o755);
  const dataDir = path.join(dir, 'postgres');
  const server = await startEmbeddedPostgres({ dataDir, throwaway: true });
  try {
    const postmaster = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const ours = await groupAndSession(process.pid);
    const its = await groupAndSession(postmaster);
    t.not(its.pgrp, ours.pgrp, 'a signal to this process group (Ctrl-C) does not reach the server');
    t.not(its.session, ours.session);
  } finally {
    await server.stop();
  }
});
