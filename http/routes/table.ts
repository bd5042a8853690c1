/**
 * Routes are declared as data: method, path, access level, summary, handler. The router, the access checks,
 * the OpenAPI listing and the tenant-isolation test all read the same table.
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Access } from '../access.ts';
import { HttpError } from '../errors.ts';
import { UNSTORABLE_TEXT_MESSAGE, unstorableTextAt } from '../text.ts';
import type { Position } from '../../domain/ports/event-store.ts';

export type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';

export interface RouteSpec {
  method: Method;
  path: string;
  access: Access;
  summary: string;
  handler: (ctx: Context) => Promise<void> | void;
  /** The answer is a stream that does not end (server-sent events): a caller reads the headers, then what it wants. */
  streaming?: true;
}

export interface RouterDependencies {
  guard: (access: Access) => Middleware;
  /** Read-your-writes: resolves false if the projections did not reach `position` in time. */
  waitForPosition(position: Position, timeoutMs: number): Promise<boolean>;
  isPosition(value: string): boolean;
}

const READ_YOUR_WRITES_TIMEOUT_MS = 5000;

/** `X-Min-Position: <position>` on a read waits until the read models include that write. */
function minPosition(deps: RouterDependencies): Middleware {
  return async (ctx, next) => {
    const wanted = ctx.get('x-min-position');
    if (wanted) {
      if (!deps.isPosition(wanted)) throw new HttpError('VALIDATION_FAILED', 'X-Min-Position must be a position returned by a write');
      if (!(await deps.waitForPosition(wanted as Position, READ_YOUR_WRITES_TIMEOUT_MS))) {
        ctx.set('Retry-After', '1');
        throw new HttpError('UNAVAILABLE', 'The read models have not reached X-Min-Position yet; retry shortly');
      }
    }
    await next();
  };
}

export function buildRouter(routes: readonly RouteSpec[], deps: RouterDependencies): Router {
  const router = new Router();
  for (const route of routes) {
    const middleware: Middleware[] = [deps.guard(route.access)];
    if (route.method === 'get') middleware.push(minPosition(deps));
    router[route.method](route.path, ...middleware, async (ctx) => {
      const bad = unstorableTextAt(ctx.params, 'path');
      if (bad) throw new HttpError('VALIDATION_FAILED', `${bad} ${UNSTORABLE_TEXT_MESSAGE}`);
      await route.handler(ctx);
    });
  }
  return router;
}
