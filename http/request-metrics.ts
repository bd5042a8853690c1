/**
 * Counts and times every request by its route template (`/api/v1/admin/users/:userId/approve`, never the raw
 * path with its ids), so the number of series stays bounded whatever clients send; unknown paths share one.
 */
import type { Context } from 'koa';

/** What the request shell reports (`createHttpApp`); `adapters/metrics.ts` implements it. */
export interface RequestMetrics {
  httpRequest(request: { method: string; route: string; status: number; seconds: number }): void;
  /** An answer cut short after its status and headers were sent (a streamed body): by the client leaving, or a failure. */
  httpAnswerCut?(answer: { method: string; route: string; cause: 'client_left' | 'dropped' | 'failed' }): void;
}

/** Records one answered request: its method, route template, the status the client got, and how long it took. */
export function recordRequest(metrics: RequestMetrics, ctx: Context, seconds: number): void {
  metrics.httpRequest({ method: ctx.method, route: routeOf(ctx), status: ctx.status, seconds });
}

/** The route template the request matched (@koa/router records it on the context), else `unmatched`. */
export function routeOf(ctx: Context): string {
  const template = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  return typeof template === 'string' ? template : 'unmatched';
}
