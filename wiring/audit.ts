/** The audit trail (read from the `audit` projection) and the live event tail for administrators. */
import { LiveTail } from '../projections/live-tail.ts';
import { auditRoutes } from '../http/routes/audit.ts';
import { eventStreamRoutes } from '../http/routes/event-stream.ts';
import { deleteAuditRecordedBefore } from '../projections/read/audit.ts';
import type { Infrastructure } from './infrastructure.ts';
import { runPeriodically, type Cleanups, type Schedule } from './lifecycle.ts';

export function provideAudit({ pool, store, log, config, runtime }: Infrastructure, isPosition: (value: string) => boolean, cleanups: Cleanups, retention: Schedule) {
  const tail = new LiveTail(store, log.child({ component: 'event-tail' }));
  const retentionDays = config.AUDIT_RETENTION_DAYS;
  /** `AUDIT_RETENTION_DAYS`: soon after start, then hourly, in every instance (a row deleted twice is deleted once). */
  const pruneAudit = async (stopping?: AbortSignal) => {
    const deleted = await deleteAuditRecordedBefore(pool, new Date(runtime.now().getTime() - retentionDays * 86_400_000), undefined, stopping);
    if (deleted) log.info({ deleted, retentionDays }, 'audit rows past their retention deleted');
    return deleted;
  };
  if (retentionDays > 0) runPeriodically(pruneAudit, retention, cleanups, (error) => log.warn({ err: error }, 'audit retention failed; retried next hour'));
  return {
    /** Runs the audit retention now (tests; the service runs it soon after start, then hourly, when AUDIT_RETENTION_DAYS is set). */
    pruneAudit,
    /** Live tails never finish on their own: stopped before the server closes. */
    tail,
    routes: [...auditRoutes({ pool }), ...eventStreamRoutes({ tail, pool, isPosition, head: () => store.headPosition() })],
  };
}
