/**
 * Counts and times every request by its route template (`/api/v1/admin/users/:userId/approve`, never the raw
 * path with its ids), so the number of series stays bounded whatever clients send; unknown paths share one.
 */
import type { Middleware } from 'koa';

/** What the middleware reports; `adapters/metrics.ts` implements it. */
export interface RequestMetrics {
  httpRequest(request: { method: string; route: string; status: number; seconds: number }): void;
}

/** The middleware; mounted by `createHttpApp` when given its `metrics` option. */
export function requestMetrics(metrics: RequestMetrics): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      // @koa/router records the matched route's template here.
      const template = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      metrics.httpRequest({
        method: ctx.method,
        route: typeof template === 'string' ? template : 'unmatched',
        status: ctx.status,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      });
    }
  };
}
