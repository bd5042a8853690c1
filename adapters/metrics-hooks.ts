/**
 * Decorators that report what application services did to the metrics, without the services knowing:
 * poll runs, and token refreshes that failed (whether asked by a merchant or by the daily cron).
 */
import type { pollService } from '../domain/payments/poll.ts';
import type { RefreshReport, SquareConnectionsService } from '../domain/connections/service.ts';
import type { Metrics } from './metrics.ts';

type PollService = ReturnType<typeof pollService>;

/** The poll, counting every run's per-connection results. */
export function withPollMetrics(poll: PollService, metrics: Pick<Metrics, 'pollRun'>): PollService {
  return {
    async pollAll() {
      const result = await poll.pollAll();
      metrics.pollRun(result.connections);
      return result;
    },
  };
}

const FAILED_REFRESHES: ReadonlySet<RefreshReport['outcome']> = new Set(['failed', 'needs_reconnect', 'token_undecryptable']);

/** The connections service, counting refresh reports that are failures. */
export function withRefreshMetrics(connections: SquareConnectionsService, metrics: Pick<Metrics, 'tokenRefreshFailure'>): SquareConnectionsService {
  const count = (report: RefreshReport) => {
    if (FAILED_REFRESHES.has(report.outcome)) metrics.tokenRefreshFailure(report.outcome);
    return report;
  };
  return {
    ...connections,
    refresh: async (tenantId, metadata) => count(await connections.refresh(tenantId, metadata)),
    refreshDue: async (metadata, onError) => (await connections.refreshDue(metadata, onError)).map(count),
  };
}
