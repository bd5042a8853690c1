/**
 * Routes served straight from node:http, ahead of Koa: the routes of the table that declare `direct`. Two kinds:
 * - `direct: true`: a GET answering JSON (the wallet reads, the busiest reads), its own handler served with the
 *   router's own steps, shared, in the router's order: the query string parsed as Koa parses it, the text rule on it
 *   (`requireStorableInput`), the access checks (`AccessCheck`, http/access.ts: the token, the caller view, 401/403,
 *   the failure limit, the tenant), then params, `exists`, query and the handler (`answer`, routes/table.ts).
 * - a `direct` function: a public route's handler on the raw request (the signed webhooks, which read their raw body
 *   themselves), taken at its exact method and path only.
 * Everything a caller sees is the app's: the client address (TRUST_PROXY), the request id (X-Request-Id echoed or
 * made), the headers and JSON of Koa's answers, the request line in the log (with the caller's user id), the request
 * metrics by route template, the error answers (`errorAnswer`, the error middleware's). What is skipped is Koa's
 * per-request context, its middleware chain and the router's linear match.
 * Whatever this path cannot answer as Koa would goes through Koa: another method (HEAD), a trailing slash or any
 * other spelling of the path, a param that is not a plain token, a URL parseurl would not split on its first `?`,
 * an `X-Min-Position` header (read-your-writes), a request with a body (Koa's 415).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AccessCheck, GuardedRequest } from './access.ts';
import { requestIdFor, requireStorableInput, tooManyQueryParameters } from './app.ts';
import { clientAddressResolver, type TrustProxy } from './client-address.ts';
import { errorAnswer } from './errors.ts';
import type { RequestContext } from './request.ts';
import type { RequestMetrics } from './request-metrics.ts';
import { answer, successStatuses, type DirectCaller, type RouteSpec } from './routes/table.ts';

export interface DirectRoutesOptions {
  log: Logger;
  /** Writes the request lines of requests that made no logger of their own, as `createHttpApp`'s (`log` unless given). */
  requestLog?: Logger;
  /** Every route, in the router's order (an earlier route that could take a direct route's requests is refused). */
  routes: readonly RouteSpec[];
  /** The router's access checks: required when a route declares `direct: true`. */
  authorize?: AccessCheck;
  trustProxy?: TrustProxy;
  metrics?: RequestMetrics;
}

type Answered = { status: number; body: unknown; headers?: Record<string, string> | undefined };

/** A route served directly: how it answers a request once the shell has made its context. */
interface Served {
  route: RouteSpec;
  run(request: IncomingMessage, context: DirectRequest, params: Record<string, string>): Promise<Answered>;
}

/** A route with `:params` in its path: its segments, the params' names where they stand. */
interface Templated {
  segments: readonly string[];
  served: Served;
}

/** The request's state, logger and what the access checks read: the direct path's Koa context. */
class DirectRequest implements GuardedRequest, RequestContext {
  state: RequestContext['state'];
  /** Whether the router would have matched the route by now (the request metrics' route template). */
  matched: boolean;
  private bindings: Record<string, unknown>;
  private logger: Logger | undefined;

  constructor(
    private readonly request: IncomingMessage,
    private readonly appLog: Logger,
    readonly ip: string,
    readonly query: Record<string, unknown>,
    requestId: string,
    matched: boolean,
  ) {
    this.state = { requestId };
    this.matched = matched;
    this.bindings = { requestId };
  }

  /** As `ctx.log` (http/app.ts): made on first use, with the bindings so far. */
  get log(): Logger {
    return (this.logger ??= this.appLog.child(this.bindings));
  }

  logWith(bindings: Record<string, unknown>): void {
    this.bindings = { ...this.bindings, ...bindings };
    if (this.logger) this.logger = this.logger.child(bindings);
  }

  /** As `ctx.get`: the header's value, or '' without one. */
  get(field: string): string {
    const value = this.request.headers[field.toLowerCase()];
    return typeof value === 'string' ? value : '';
  }

  /** The request line of createHttpApp: same fields, same order, same logger. */
  line(line: Record<string, unknown>, requestLog: Logger): void {
    if (this.logger) this.logger.info(line, 'request');
    else if (this.appLog.isLevelEnabled('info')) requestLog.info({ ...this.bindings, ...line }, 'request');
  }
}

/**
 * `ctx.query` as Koa 3 makes it (koa/lib/search-params.js): URLSearchParams' decoding, one string per key, an array
 * for a repeated key, every key an own property (`__proto__` included). In one pass over the entries (Koa's calls
 * `getAll` per key: quadratic in repeated keys).
 */
export function parseQuery(search: string): Record<string, unknown> {
  if (search === '') return {};
  const values = new Map<string, string[]>();
  for (const [key, value] of new URLSearchParams(search)) {
    const list = values.get(key);
    if (list) list.push(value);
    else values.set(key, [value]);
  }
  const query: Record<string, unknown> = {};
  for (const [key, list] of values) {
    Object.defineProperty(query, key, { value: list.length === 1 ? list[0] : list, writable: true, enumerable: true, configurable: true });
  }
  return query;
}

/** Answers one request in one write: the status line, the headers and the JSON body together, as Koa orders them. */
function writeJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const payload = JSON.stringify(body);
  // As the Koa path's API answers (http/app.ts): never cached, never sniffed.
  response.writeHead(status, {
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
  });
  response.end(payload);
}

/** Characters after which parseurl (Koa's `ctx.path`, `ctx.querystring`) stops splitting the URL on its first `?`. */
const UNSPLIT_URL = /[\t\n\f\r #\u00a0\ufeff]/;
/** A param value taken directly: decoding leaves it as it is, and the router's `:param` takes it whole. */
const PLAIN_PARAM = /^[A-Za-z0-9_-]+$/;
/** Path syntax beyond `:name` segments (path-to-regexp's groups, wildcards): such a route may overlap anything. */
const PATH_SYNTAX = /[*{}()?+]/;

/** The params of a path the template takes exactly (its literal segments as written, each param a plain token), or undefined. */
function paramsOf(template: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (template.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const [expected, given] = [template[i]!, segments[i]!];
    if (!expected.startsWith(':')) {
      if (expected !== given) return undefined;
    } else if (PLAIN_PARAM.test(given)) params[expected.slice(1)] = given;
    else return undefined;
  }
  return params;
}

/** Whether two route paths could match one request path as the router matches them (case-insensitive). */
function overlaps(a: string, b: string): boolean {
  if (PATH_SYNTAX.test(a) || PATH_SYNTAX.test(b)) return true;
  const [x, y] = [a.split('/'), b.split('/')];
  return x.length === y.length && x.every((s, i) => s.startsWith(':') || y[i]!.startsWith(':') || s.toLowerCase() === y[i]!.toLowerCase());
}

/** Why a route cannot be served directly, or undefined. */
function refusal(route: RouteSpec, before: readonly RouteSpec[], authorize: AccessCheck | undefined): string | undefined {
  if (route.direct === true) {
    if (route.method !== 'get' || (route.answers ?? 'json') !== 'json' || route.body) return 'only a GET answering JSON, without a body schema';
    if (!(route.response instanceof z.ZodObject || route.response instanceof z.ZodArray)) return 'its response must be a JSON object or array (Koa answers other bodies otherwise)';
    if (PATH_SYNTAX.test(route.path)) return 'only plain segments and :params';
    if (!authorize) return 'the access checks were not given';
  } else if (route.access !== 'public' || route.params || route.query || route.body || route.path.includes(':')) {
    // No guard, no params and no query are parsed on this path: only a route needing none may take it.
    return 'a raw direct handler only serves a public route without params, query or parsed body';
  }
  const earlier = before.find((r) => r.method === route.method && overlaps(r.path, route.path));
  return earlier && `${earlier.method.toUpperCase()} ${earlier.path}, declared before it, could take its requests`;
}

/**
 * A request listener for the direct routes: it answers the request and returns true when one matches, and
 * returns false (having done nothing) otherwise, for the Koa app to serve.
 */
// Over 80 lines because it is the direct path's shell and its two kinds of routes, which share it.
export function directRoutes(options: DirectRoutesOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const raw = new Map<string, Served>();
  const plain = new Map<string, Served>();
  const templated: Templated[] = [];
  const authorize = options.authorize;
  options.routes.forEach((route, index) => {
    if (!route.direct) return;
    const refused = refusal(route, options.routes.slice(0, index), authorize);
    if (refused) throw new Error(`${route.method.toUpperCase()} ${route.path} cannot be served directly: ${refused}`);
    if (route.direct === true) {
      const run: Served['run'] = async (_request, context, params) => {
        requireStorableInput(undefined, context.query);
        // Koa's app checks the query before the router matches: a refusal there is counted as no route's.
        context.matched = true;
        await authorize!(route.access, context);
        return answer(route, { params, query: context.query, body: undefined }, context);
      };
      if (route.path.includes(':')) templated.push({ segments: route.path.split('/'), served: { route, run } });
      else plain.set(route.path, { route, run });
      return;
    }
    const direct = route.direct.bind(route);
    const run: Served['run'] = async (request, context) => {
      const caller: DirectCaller = { ip: context.ip, log: () => context.log };
      const answered = await direct(request, caller);
      if (!successStatuses(route).includes(answered.status)) throw new Error(`${route.method.toUpperCase()} ${route.path} answered ${answered.status}, which it does not declare`);
      return answered;
    };
    raw.set(`${route.method.toUpperCase()} ${route.path}`, { route, run });
  });
  const clientAddress = clientAddressResolver(options.trustProxy ?? { kind: 'none' });
  const requestLog = options.requestLog ?? options.log;

  const serve = async ({ route, run }: Served, request: IncomingMessage, response: ServerResponse, path: string, search: string, params: Record<string, string>) => {
    const started = process.hrtime.bigint();
    const given = request.headers['x-request-id'];
    const requestId = requestIdFor(typeof given === 'string' ? given : '');
    const forwarded = request.headers['x-forwarded-for'];
    const ip = clientAddress(request.socket.remoteAddress ?? '', typeof forwarded === 'string' ? forwarded : '');
    const context = new DirectRequest(request, options.log, ip, route.direct === true ? parseQuery(search) : {}, requestId, route.direct !== true);
    let answered: Answered;
    try {
      answered = await run(request, context, params);
    } catch (error) {
      answered = errorAnswer(error, requestId, () => context.log);
    }
    const status = answered.status;
    writeJson(response, status, answered.body, { 'X-Request-Id': requestId, ...answered.headers });
    const ns = Number(process.hrtime.bigint() - started);
    context.line({ method: request.method, path, status, ms: Math.round(ns / 1e5) / 10 }, requestLog);
    options.metrics?.httpRequest({ method: route.method.toUpperCase(), route: context.matched ? route.path : 'unmatched', status, seconds: ns / 1e9 });
  };

  /** The `direct: true` route a GET is for, with its params; undefined when Koa must answer it. */
  const guarded = (request: IncomingMessage, url: string): [Served, string, string, Record<string, string>] | undefined => {
    const headers = request.headers;
    if (url.charCodeAt(0) !== 0x2f || UNSPLIT_URL.test(url)) return undefined;
    if (headers['x-min-position'] !== undefined || headers['transfer-encoding'] !== undefined) return undefined;
    if (headers['content-length'] !== undefined && headers['content-length'] !== '0') return undefined;
    const mark = url.indexOf('?');
    const path = mark < 0 ? url : url.slice(0, mark);
    const search = mark < 0 ? '' : url.slice(mark + 1);
    // Koa refuses a query string of too many parameters, saying so.
    if (tooManyQueryParameters(search) !== undefined) return undefined;
    const found = plain.get(path);
    if (found) return [found, path, search, {}];
    if (templated.length === 0) return undefined;
    const segments = path.split('/');
    for (const { segments: template, served } of templated) {
      const params = paramsOf(template, segments);
      if (params) return [served, path, search, params];
    }
    return undefined;
  };

  const started = (serving: Promise<void>, response: ServerResponse) => {
    serving.catch((error: unknown) => {
      options.log.error({ err: error }, 'a direct route failed to answer');
      response.destroy();
    });
    return true;
  };

  return (request, response) => {
    const url = request.url ?? '';
    const rawRoute = raw.get(`${request.method} ${url}`);
    if (rawRoute) return started(serve(rawRoute, request, response, rawRoute.route.path, '', {}), response);
    const found = request.method === 'GET' ? guarded(request, url) : undefined;
    if (!found) return false;
    const [served, path, search, params] = found;
    return started(serve(served, request, response, path, search, params), response);
  };
}
