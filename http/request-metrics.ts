/**
 * Counts and times every request by its route template (`/api/v1/admin/users/:userId/approve`, never the raw
 * path with its ids), so the number of series stays bounded whatever clients send; unknown paths share one.
 */
import type { Context } from 'koa';

/** What the request shell reports (`createHttpApp`); `adapters/metrics.ts` implements it. */
export interface RequestMetrics {
  httpRequest(request: { method: string; route: string; status: number; seconds: number }): void;
}

/** Records one answered request: its method, route template, the status the client got, and how long it took. */
export function recordRequest(metrics: RequestMetrics, ctx: Context, seconds: number): void {
  // @koa/router records the matched route's template here.
  const template = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  metrics.httpRequest({ method: ctx.method, route: typeof template === 'string' ? template : 'unmatched', status: ctx.status, seconds });
}
