/**
 * Projections and reactors: the list (the same for the service and the operations commands), the runner that feeds
 * them, their metrics, and zero-downtime rebuilds (a projection whose version was raised is rebuilt at start).
 */
import { createMetrics, LAG_COUNT_CAP, type Metrics } from '../adapters/metrics.ts';
import { oldestAppendInFlight } from '../adapters/eventstore/postgres-horizon.ts';
import { postgresCheckpointProbe } from '../adapters/eventstore/postgres-checkpoint.ts';
import { allProjections } from '../projections/index.ts';
import { ProjectionRunner } from '../projections/runner.ts';
import { ProjectionRebuilds, type RebuildOptions } from '../projections/rebuild.ts';
import { projectionRoutes } from '../http/routes/projections.ts';
import type { Infrastructure } from './infrastructure.ts';
import type { Cleanups } from './lifecycle.ts';
import { walletIdFor } from './ids.ts';

export const projectionsOf = ({ store, runtime, commands }: Infrastructure) => allProjections({ store, newId: runtime.newId, walletIdFor, commands });

export function provideRebuilds(infrastructure: Infrastructure, projections = projectionsOf(infrastructure), options: RebuildOptions = {}): ProjectionRebuilds {
  const { pool, databaseUrl, store, log, runtime } = infrastructure;
  return new ProjectionRebuilds(pool, { connectionString: databaseUrl }, store, projections, log, runtime.newId, options);
}

export function provideMetrics(log: Infrastructure['log']): Metrics {
  return createMetrics({ onCollectError: (error) => log.warn({ err: error }, 'metrics: projection readings unavailable for this scrape') });
}

export function provideProjections(infrastructure: Infrastructure, metrics: Metrics, cleanups: Cleanups) {
  const { config, pool, databaseUrl, store, log, runtime } = infrastructure;
  // One list for the runner and the rebuilds, as they hand projections over to each other.
  const projections = projectionsOf(infrastructure);
  const runner = new ProjectionRunner(pool, { connectionString: databaseUrl }, store, projections, log);
  runner.start();
  metrics.observeProjections({
    // A filtered projection is as current as its `upTo`: its checkpoint stays at its own last event.
    status: () => runner.status().map((s) => ({ ...s, position: s.upTo })),
    headPosition: () => store.headPosition(),
    isAfter: (a, b) => store.isAfter(a, b),
    ...(config.EVENTSTORE_URL ? {} : { checkpoint: postgresCheckpointProbe(pool, LAG_COUNT_CAP) }),
  });
  if (!config.EVENTSTORE_URL) metrics.observeFeedHorizon(() => oldestAppendInFlight(pool));
  cleanups.add(() => runner.stop());
  // A job's progress series goes when it ends (a rebuild that failed at 40 % read 0.4 for the life of the process);
  // a progress report still in flight then is dropped.
  const ended = new Set<string>();
  const rebuilds = provideRebuilds(infrastructure, projections, {
    onProgress: (job) => {
      if (!ended.has(job.jobId)) metrics.rebuildProgress(job.projection, job.eventsTotal ? Math.min(1, job.eventsApplied / Math.max(job.eventsTotal, 1)) : null);
    },
    // A cancelled job resumed runs under its id again: its progress counts again.
    onStarted: (job) => ended.delete(job.jobId),
    onEnded: (job) => {
      ended.add(job.jobId);
      metrics.rebuildProgress(job.projection, null);
    },
  });
  cleanups.add(() => rebuilds.stop());
  void rebuilds.rebuildOutdated().catch((error) => log.error({ err: error }, 'could not start the rebuild of a projection whose version was raised'));
  return { runner, rebuilds, routes: projectionRoutes({ runner, rebuilds, store, now: runtime.now }) };
}
