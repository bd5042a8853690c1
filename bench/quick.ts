/**
 * `node --import=tsx bench/quick.ts [--jobs=N] [name…]`: every `bench:*` script of package.json (or the named ones)
 * in `--quick` mode, two at a time (`--jobs`, 1–8), as CI runs them (`.ci/run`). A new benchmark is picked up by its
 * name. Two at a time, the nine took 67 s against 110 s one after the other on a 2-core machine (2026-12-07): one
 * alone left a third of the cores idle (its service waiting on PostgreSQL and the reverse, and its fixed-length
 * phases); a quick run checks correctness, never a rate, so sharing the cores costs it nothing.
 *
 * A benchmark fails when it exits non-zero (a crash, or a WRONG correctness line: see `reportCorrectness`),
 * when it prints no `correctness:` line, or when a correctness line says WRONG (or FAILED, or MISMATCH). Ratios and rates never fail
 * it: the machines are shared and noisy. Each benchmark's output is kept, and shown in full when it fails.
 * Results of quick runs go to `bench/results/quick/` (ignored by git), never over the measured ones.
 * Without DATABASE_URL, one embedded PostgreSQL server is started for all of them (each benchmark still makes
 * its own database on it), rather than one per benchmark: about 5 s saved per benchmark.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../adapters/postgres/embedded.ts';
import { BENCH_DIR } from './support.ts';

/** Scripts named `bench:*` that are not benchmarks. */
const NOT_BENCHMARKS = new Set(['bench:tables']);
const ROOT = path.dirname(BENCH_DIR);

interface Outcome {
  name: string;
  seconds: number;
  code: number | null;
  correctness: string[];
  problem: string | undefined;
  output: string;
}

async function benchmarkScripts(): Promise<string[]> {
  const manifest = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  return Object.keys(manifest.scripts ?? {})
    .filter((name) => name.startsWith('bench:') && !NOT_BENCHMARKS.has(name))
    .sort();
}

function run(name: string, env: NodeJS.ProcessEnv): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', name, '--', '--quick'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    // stdout and stderr interleaved as they came; stdout may carry a service's request log (bench:reads), kept bounded.
    const keep = (chunk: Buffer) => {
      chunks.push(chunk);
      while (chunks.length > 4000) chunks.shift();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code) => {
      const output = Buffer.concat(chunks).toString('utf8');
      const correctness = output.split('\n').filter((line) => /^correctness\b/i.test(line.trim()));
      const problem =
        code !== 0
          ? `exited with ${code}`
          : correctness.length === 0
            ? 'printed no correctness line'
            : correctness.some((line) => /\b(WRONG|FAILED|MISMATCH)\b/.test(line))
              ? 'its correctness line says WRONG'
              : undefined;
      resolve({ name, seconds: (performance.now() - started) / 1000, code, correctness, problem, output });
    });
  });
}

async function main(): Promise<number> {
  const all = await benchmarkScripts();
  const args = process.argv.slice(2);
  const jobsArg = args.find((a) => a.startsWith('--jobs='));
  const jobs = jobsArg ? Number(jobsArg.slice('--jobs='.length)) : 2;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 8) throw new Error(`--jobs takes a whole number from 1 to 8, not ${jobsArg}`);
  const wanted = args.filter((a) => a !== jobsArg);
  const unknown = wanted.filter((name) => !all.includes(name));
  if (unknown.length) throw new Error(`Not a benchmark script: ${unknown.join(', ')} (there are: ${all.join(', ')})`);
  const names = wanted.length ? wanted : all;
  const outcomes: Outcome[] = [];
  let env: NodeJS.ProcessEnv = process.env;
  let server: { stop(): Promise<void>; dir: string } | undefined;
  if (!process.env.DATABASE_URL) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-quick-'));
    // Run as root, the embedded server runs as `postgres` and must be able to enter the directory.
    await chmod(dir, 0o755);
    const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data') });
    server = { stop: () => embedded.stop(), dir };
    env = { ...process.env, DATABASE_URL: embedded.adminUrl };
    process.stdout.write(`(one embedded PostgreSQL server for all of them, port ${embedded.port})\n`);
  }
  const queue = [...names];
  const lane = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const outcome = await run(name, env);
      outcomes.push(outcome);
      // One block per benchmark, written whole when it ends (the lanes' outputs never interleave).
      const block = [`-- npm run ${name} -- --quick`, ...outcome.correctness.map((line) => `   ${line.trim()}`)];
      block.push(`   ${outcome.problem ? `FAILED: ${outcome.problem}` : 'ok'} (${outcome.seconds.toFixed(1)} s)`);
      if (outcome.problem) block.push(outcome.output.split('\n').slice(-80).join('\n'));
      process.stdout.write(`${block.join('\n')}\n`);
    }
  };
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, names.length) }, lane));
  } finally {
    await server?.stop();
    if (server) await rm(server.dir, { recursive: true, force: true });
  }
  const failed = outcomes.filter((o) => o.problem);
  const total = (performance.now() - started) / 1000;
  process.stdout.write(
    `${outcomes.length} benchmarks in --quick mode, ${total.toFixed(0)} s (${jobs} at a time): ${failed.length ? `FAILED: ${failed.map((o) => o.name).join(', ')}` : 'all correct'}\n`,
  );
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
