/** The audit trail (read from the `audit` projection) and the live event tail for administrators. */
import { LiveTail } from '../projections/live-tail.ts';
import { auditRoutes } from '../http/routes/audit.ts';
import { eventStreamRoutes } from '../http/routes/event-stream.ts';
import type { Infrastructure } from './infrastructure.ts';

export function provideAudit({ pool, store, log }: Infrastructure, isPosition: (value: string) => boolean) {
  const tail = new LiveTail(store, log.child({ component: 'event-tail' }));
  return {
    /** Live tails never finish on their own: stopped before the server closes. */
    tail,
    routes: [...auditRoutes({ pool }), ...eventStreamRoutes({ tail, isPosition, head: () => store.headPosition() })],
  };
}
