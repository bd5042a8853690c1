/**
 * `npm run reconcile [-- --tenant <id>]`: replays wallet streams from the event store and compares them with
 * the wallet read models. Prints the report; exits 1 on any mismatch. Never repairs.
 */
import { openOperations } from '../main.ts';
import { reconciler, settleWallets } from '../projections/ops/reconcile.ts';
import { ProjectionRunner } from '../projections/runner.ts';
import { commandArguments, exitWith } from './arguments.ts';

async function main(): Promise<number> {
  const { values } = commandArguments('Usage: npm run reconcile [-- --tenant <tenant id>] [--json] (exit 1: a mismatch; 2: it could not run)', {
    tenant: { type: 'string' },
    json: { type: 'boolean' },
  });
  const ops = await openOperations();
  try {
    // Compared against what the running service has projected: wait (bounded) until the wallets projection has applied
    // the head or has nothing of its types up to it, as the service's route waits. This runner is never started: it
    // feeds nothing, and reads the checkpoints the service's runner writes.
    const watcher = new ProjectionRunner(ops.pool, { connectionString: ops.databaseUrl }, ops.store, ops.projections, ops.log);
    const settle = settleWallets(watcher);
    const report = await reconciler({ pool: ops.pool, store: ops.store, settle }).all(values.tenant ? { tenantId: values.tenant } : {});
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      process.stdout.write(
        `Wallets checked: ${report.walletsChecked}\nEvents replayed: ${report.eventsReplayed} (${report.eventsPerSecond} events/s)\nMismatches: ${report.mismatches.length}\n`,
      );
      for (const m of report.mismatches) {
        process.stdout.write(
          `  wallet ${m.walletId} (tenant ${m.tenantId}): projected ${JSON.stringify(m.projected)} replayed ${JSON.stringify(m.replayed)}` +
            (m.firstDifferingEvent ? ` first differing event ${m.firstDifferingEvent.type} #${m.firstDifferingEvent.revision} (${m.firstDifferingEvent.id})` : '') +
            '\n',
        );
      }
    }
    return report.mismatches.length ? 1 : 0;
  } finally {
    await ops.close();
  }
}

exitWith(main, 'Reconciliation failed');
