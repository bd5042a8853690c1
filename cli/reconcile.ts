/**
 * `npm run reconcile [-- --tenant <id>]`: replays wallet streams from the event store and compares them with
 * the wallet read models. Prints the report; exits 1 on any mismatch. Never repairs.
 */
import { parseArgs } from 'node:util';
import { openOperations } from '../main.ts';
import { reconciler } from '../projections/ops/reconcile.ts';
import { readCheckpoint } from '../projections/feed.ts';
import type { Position } from '../domain/ports/event-store.ts';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { tenant: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  const ops = await openOperations();
  try {
    // Compared against what the running service has projected: wait (bounded) until the wallets projection is at the head.
    const settle = async (position: Position) => {
      for (let i = 0; i < 300; i++) {
        const row = await readCheckpoint(ops.pool, 'wallets');
        if (row?.position && !ops.store.isAfter(position, row.position as Position)) return true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return false;
    };
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

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`Reconciliation failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
