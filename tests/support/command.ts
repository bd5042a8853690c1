/**
 * Runs an operations command as a child process, compiled (tests/run.ts compiles cli/ with the tests: no TypeScript
 * loader to start each time), with only the environment given (and PATH, NODE_ENV=test, a fresh DATA_DIR).
 */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface CommandResult {
  code: number | null;
  out: string;
  err: string;
  ms: number;
}

export async function runCommand(command: string, args: string[], env: Record<string, string | undefined>): Promise<CommandResult> {
  const fullEnv = { PATH: process.env.PATH, NODE_ENV: 'test', DATA_DIR: await mkdtemp(path.join(os.tmpdir(), `tally-${command}-`)), ...env };
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve(`.build/cli/${command}.js`), ...args], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += String(c)));
    child.stderr.on('data', (c) => (err += String(c)));
    child.on('exit', (code) => resolve({ code, out, err, ms: Date.now() - started }));
  });
}
