/**
 * What a handler knows about the request it answers, beyond its parsed input: who calls (set by the access
 * middleware, http/access.ts), the tenant it acts on, and the event metadata its writes carry.
 */
import type { Logger } from 'pino';
import type { EventMetadata } from '../domain/ports/event-store.ts';
import type { Caller } from './access.ts';

/**
 * What a handler may read of its request besides its parsed input: the request's state and its logger. A Koa
 * context is one; a route served ahead of Koa (`direct: true`, http/direct-route.ts) gets exactly this.
 */
export interface RequestContext {
  state: { caller?: Caller | undefined; tenantId?: string | undefined; requestId: string };
  /** The request's logger (http/context.ts). */
  readonly log: Logger;
}

type WithState = Pick<RequestContext, 'state'>;

/** The authenticated caller; only routes whose access level authenticates reach a handler that asks. */
export function caller(ctx: WithState): Caller {
  const c = ctx.state.caller;
  if (!c) throw new Error('route without authentication reached a handler that needs a caller');
  return c;
}

/** The tenant a `tenant` route acts on (the caller's own, or an admin's `?tenantId=`). */
export function tenantOf(ctx: WithState): string {
  const tenantId = ctx.state.tenantId;
  if (!tenantId) throw new Error('tenant route without a resolved tenant');
  return tenantId;
}

/**
 * A request's correlation id: `request:<X-Request-Id>`. Namespaced, because the client chooses its request id:
 * `X-Request-Id: webhook:ev-1` must not join that webhook's trail (`webhook:…`, `poll:…` are ours).
 */
export const requestCorrelation = (ctx: WithState) => `request:${ctx.state.requestId}`;

/** Event metadata for a request: who, and the request as correlation. */
export function metadataFor(ctx: WithState): EventMetadata {
  const c = ctx.state.caller;
  const actor = c ? `${c.user?.role === 'admin' ? 'admin' : 'user'}:${c.userId}` : 'anonymous';
  return { correlationId: requestCorrelation(ctx), causationId: requestCorrelation(ctx), actor };
}
