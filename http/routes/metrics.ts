/**
 * `GET /metrics`: the Prometheus exposition. Public, as scrapers expect, and free of secrets and personal data
 * (labels are route templates, statuses, outcomes, projection names); operators should still allow it only
 * from their monitoring network at the edge (load balancer or ingress), as it shows traffic and internals.
 */
import Router from '@koa/router';

export const METRICS_PATH = '/metrics';

/** What the route serves; `adapters/metrics.ts` implements it. */
export interface MetricsExposition {
  readonly contentType: string;
  exposition(): Promise<string>;
}

/** Serves the exposition at METRICS_PATH, outside the route table (no authentication, see above). */
export function metricsRouter(metrics: MetricsExposition): Router {
  const router = new Router();
  router.get(METRICS_PATH, async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.contentType;
    ctx.body = await metrics.exposition();
  });
  return router;
}
