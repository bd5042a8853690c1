/**
 * Routes served straight from node:http, ahead of Koa: the routes of the table that declare `direct` (the signed
 * webhooks, the busiest route, which reads its raw body itself). Everything a caller sees is the app's: the
 * client address (TRUST_PROXY), the request id (X-Request-Id echoed or made), the request line in the log, the
 * request metrics by route template, the error answers (`errorAnswer`, the error middleware's). What is skipped is
 * Koa's per-request context, its middleware chain and the router: about 0.13 ms of CPU per webhook of the 0.6–0.8 ms
 * its acknowledgement took on the loaded benchmark machine (README, ingestion).
 * The method and path must match exactly; anything else (a query string, a trailing slash) goes through Koa.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { requestIdFor } from './app.ts';
import { clientAddressResolver, type TrustProxy } from './client-address.ts';
import { errorAnswer } from './errors.ts';
import type { RequestMetrics } from './request-metrics.ts';
import { successStatuses, type RouteSpec } from './routes/table.ts';

export interface DirectRoutesOptions {
  log: Logger;
  routes: readonly RouteSpec[];
  trustProxy?: TrustProxy;
  metrics?: RequestMetrics;
}

/** A route served directly, with its direct handler. */
interface DirectRoute {
  route: RouteSpec;
  direct: NonNullable<RouteSpec['direct']>;
}

/** Answers one request in one write: the status line, the headers and the JSON body together. */
function writeJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(payload) });
  response.end(payload);
}

/**
 * A request listener for the direct routes: it answers the request and returns true when one matches, and
 * returns false (having done nothing) otherwise, for the Koa app to serve.
 */
export function directRoutes(options: DirectRoutesOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const routes = new Map<string, DirectRoute>();
  for (const route of options.routes) {
    const direct = route.direct?.bind(route);
    if (!direct) continue;
    // No guard, no params and no query are parsed on this path: only a route needing none may take it.
    if (route.access !== 'public' || route.params || route.query || route.body || route.path.includes(':')) {
      throw new Error(`${route.method.toUpperCase()} ${route.path} cannot be served directly: only public routes without params, query or parsed body`);
    }
    routes.set(`${route.method.toUpperCase()} ${route.path}`, { route, direct });
  }
  const clientAddress = clientAddressResolver(options.trustProxy ?? { kind: 'none' });

  const serve = async ({ route, direct }: DirectRoute, request: IncomingMessage, response: ServerResponse) => {
    const started = process.hrtime.bigint();
    const given = request.headers['x-request-id'];
    const requestId = requestIdFor(typeof given === 'string' ? given : '');
    let logger: Logger | undefined;
    const log = () => (logger ??= options.log.child({ requestId }));
    let answer: { status: number; body: unknown; headers: Record<string, string> };
    try {
      const forwarded = request.headers['x-forwarded-for'];
      const ip = clientAddress(request.socket.remoteAddress ?? '', typeof forwarded === 'string' ? forwarded : '');
      const { status, body } = await direct(request, { ip, log });
      if (!successStatuses(route).includes(status)) throw new Error(`${route.method.toUpperCase()} ${route.path} answered ${status}, which it does not declare`);
      answer = { status, body, headers: {} };
    } catch (error) {
      answer = errorAnswer(error, requestId, log);
    }
    const status = answer.status;
    writeJson(response, status, answer.body, { ...answer.headers, 'X-Request-Id': requestId });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // The request line of createHttpApp: same fields, same order.
    const line = { method: request.method, path: route.path, status, ms: Math.round(seconds * 10_000) / 10 };
    if (logger) logger.info(line, 'request');
    else options.log.info({ requestId, ...line }, 'request');
    options.metrics?.httpRequest({ method: route.method.toUpperCase(), route: route.path, status, seconds });
  };

  return (request, response) => {
    const match = routes.get(`${request.method} ${request.url}`);
    if (!match) return false;
    serve(match, request, response).catch((error: unknown) => {
      options.log.error({ err: error }, 'a direct route failed to answer');
      response.destroy();
    });
    return true;
  };
}
