/** The audit trail (read from the `audit` projection) and the live event tail for administrators. */
import { LiveTail } from '../projections/live-tail.ts';
import { auditRoutes } from '../http/routes/audit.ts';
import { eventStreamRoutes } from '../http/routes/event-stream.ts';
import { deleteAuditRecordedBefore } from '../projections/read/audit.ts';
import type { Infrastructure } from './infrastructure.ts';
import type { Cleanups } from './lifecycle.ts';

export function provideAudit({ pool, store, log, config, runtime }: Infrastructure, isPosition: (value: string) => boolean, cleanups: Cleanups) {
  const tail = new LiveTail(store, log.child({ component: 'event-tail' }));
  const retentionDays = config.AUDIT_RETENTION_DAYS;
  /** `AUDIT_RETENTION_DAYS`: hourly, in every instance (a row deleted twice is deleted once). */
  const pruneAudit = async () => {
    const deleted = await deleteAuditRecordedBefore(pool, new Date(runtime.now().getTime() - retentionDays * 86_400_000));
    if (deleted) log.info({ deleted, retentionDays }, 'audit rows past their retention deleted');
    return deleted;
  };
  if (retentionDays > 0) {
    const pruning = setInterval(() => pruneAudit().catch((error) => log.warn({ err: error }, 'audit retention failed; retried next hour')), 3_600_000);
    pruning.unref();
    cleanups.add(async () => clearInterval(pruning));
  }
  return {
    /** Runs the audit retention now (tests; the service runs it hourly when AUDIT_RETENTION_DAYS is set). */
    pruneAudit,
    /** Live tails never finish on their own: stopped before the server closes. */
    tail,
    routes: [...auditRoutes({ pool }), ...eventStreamRoutes({ tail, isPosition, head: () => store.headPosition() })],
  };
}
