/**
 * The Koa application: request id and logging, the one error middleware, body parsing with limits, routes.
 */
import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from 'pino';
import { v4 as uuid } from 'uuid';
import './context.ts';
import { errorHandler, HttpError } from './errors.ts';
import { readJsonBody } from './json-body.ts';
import { clientAddressResolver, type TrustProxy } from './client-address.ts';
import { UNSTORABLE_TEXT_MESSAGE, unstorableTextAt } from './text.ts';
import { recordRequest, routeOf, type RequestMetrics } from './request-metrics.ts';

export interface HttpAppOptions {
  log: Logger;
  routers: Router[];
  /** Largest JSON body accepted (bytes). */
  jsonLimit?: string;
  /** Paths whose handlers read the raw body themselves (signed webhooks): the JSON parser leaves them alone. */
  rawBodyPaths?: readonly string[];
  /** Which proxies in front are trusted to report the client address (rate limits are per address). */
  trustProxy?: TrustProxy;
  /** Counts and times requests by route template and status (see http/request-metrics.ts). */
  metrics?: RequestMetrics;
  /**
   * Writes the request lines of requests that made no logger of their own (`log` unless given): `log` without the
   * redaction of credential paths (`withoutRedaction`, adapters/logger.ts), as the line's fields hold none.
   */
  requestLog?: Logger;
  /**
   * Sends `Strict-Transport-Security` (a year): the service's public origin is https, so a browser that has been
   * there never reaches it over plain http again (the consoles keep a bearer token in the tab).
   */
  strictTransportSecurity?: boolean;
}

// Writes and deletes alike: a DELETE body is refused by the same rules as any other, not silently dropped.
const PARSED_METHODS: readonly string[] = ['POST', 'PUT', 'PATCH', 'DELETE'];

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: the client's X-Request-Id when it is a plain token (echoed as sent), else a new one. */
export const requestIdFor = (given: string): string => (REQUEST_ID.test(given) ? given : uuid());

const LOGGER = Symbol('request logger');
const BINDINGS = Symbol('request log bindings');
interface RequestLog {
  [LOGGER]?: Logger;
  [BINDINGS]: Record<string, unknown>;
}

/**
 * `ctx.log` and `ctx.logWith` (http/context.ts). The child logger is made on first use only: a pino child
 * per request (and one more per authenticated caller) cost more than the request line itself. The request
 * line is written by the app's logger with the same fields in the same order as the child would write them.
 */
function requestLogging(app: Koa, log: Logger): void {
  Object.defineProperty(app.context, 'log', {
    configurable: true,
    get(this: RequestLog): Logger {
      return (this[LOGGER] ??= log.child(this[BINDINGS] ?? {}));
    },
    set(this: RequestLog, logger: Logger) {
      this[LOGGER] = logger;
    },
  });
  app.context.logWith = function (this: RequestLog, bindings: Record<string, unknown>) {
    this[BINDINGS] = { ...this[BINDINGS], ...bindings };
    const logger = this[LOGGER];
    if (logger) this[LOGGER] = logger.child(bindings);
  };
}

/** One rule for all text coming in (http/text.ts), checked once for bodies and query strings, here and on the direct path. */
export function requireStorableInput(body: unknown, query: unknown): void {
  const bad = unstorableTextAt(body, 'body') ?? unstorableTextAt(query, 'query');
  if (bad) throw new HttpError('VALIDATION_FAILED', `${bad} ${UNSTORABLE_TEXT_MESSAGE}`);
}

/** The most parameters a query string may hold: no route reads more than a few dozen. */
export const MAX_QUERY_PARAMETERS = 100;

/**
 * How many parameters a query string holds at the most (its `&`-separated parts), counted before anything parses
 * it: Koa's parser (`ctx.query`) calls `getAll` per key, so its cost grows with the square of their number, and
 * one request of 7,900 repeated keys (15.8 KB, under Node's header limit) held the thread 1.9 s, on any path and
 * before sign-in (found in review, 2026-12-08).
 */
export function tooManyQueryParameters(search: string): number | undefined {
  let parts = 1;
  for (let at = search.indexOf('&'); at >= 0; at = search.indexOf('&', at + 1)) {
    if (++parts > MAX_QUERY_PARAMETERS) return search.split('&').length;
  }
  return undefined;
}

/**
 * Whether a request path is one of `paths` (literal paths) as the router takes it (@koa/router's defaults: any
 * case, one trailing slash or none). An exact comparison let the JSON parser read a webhook's body first when it was
 * posted to `/square/` or `/SQUARE`, and the route that reads it raw then failed every delivery.
 */
function routerMatch(paths: readonly string[]): (path: string) => boolean {
  const lowered = new Set(paths.map((path) => path.toLowerCase()));
  return (path) => {
    const given = path.toLowerCase();
    return lowered.has(given) || (given.endsWith('/') && lowered.has(given.slice(0, -1)));
  };
}

/**
 * An answer that fails after its status and headers went out (a streamed body: the ledger CSV, the event tail)
 * can only be cut short: Koa hands the error to the app's `error` listeners, of which there were none, so the
 * download ended mid-file with nothing logged and a 200 counted (found in review, 2026-12-08). Now it is logged
 * with its reason and counted; a client that left is logged as such, not as a failure.
 */
const PEER_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE']);

function answersCutShort(app: Koa, metrics: RequestMetrics | undefined): void {
  // Koa reports one cut twice (from the body's pipeline and from the response's end): once is said and counted.
  const reported = new WeakSet<Koa.Context>();
  app.on('error', (error: Error & { code?: string }, ctx?: Koa.Context) => {
    if (!ctx || reported.has(ctx)) return;
    reported.add(ctx);
    // By where the error came from, not its code: a body stream that failed (a page's query, whose lost database
    // connection is an ECONNRESET too) is a failure; the server ending a long answer itself (an event tail it drops)
    // says so in `ctx.state.droppedBy`; otherwise the client's side of the socket went away.
    const body = ctx.body as { errored?: unknown } | null | undefined;
    const bodyFailed = typeof body === 'object' && body !== null && 'errored' in body && body.errored != null;
    const droppedBy = (ctx.state as { droppedBy?: string }).droppedBy;
    const cause = bodyFailed ? 'failed' : droppedBy ? 'dropped' : ctx.req.destroyed || ctx.res.destroyed || PEER_GONE.has(error.code ?? '') ? 'client_left' : 'failed';
    const where = { method: ctx.method, path: ctx.path, status: ctx.status };
    if (cause === 'failed') ctx.log.error({ err: error, ...where }, 'the answer failed after its status was sent: the client got it cut short');
    else if (cause === 'dropped') ctx.log.info({ ...where, droppedBy }, 'the answer was ended by the server');
    else ctx.log.info(where, 'the client left before the answer was complete');
    metrics?.httpAnswerCut?.({ method: ctx.method, route: routeOf(ctx), cause });
  });
}

export function createHttpApp(options: HttpAppOptions): Koa {
  // Koa's own proxy mode takes the leftmost X-Forwarded-For entry, which the client writes: resolved here instead.
  const app = new Koa({ proxy: false });
  app.silent = true;
  requestLogging(app, options.log);
  answersCutShort(app, options.metrics);
  const clientAddress = clientAddressResolver(options.trustProxy ?? { kind: 'none' });
  const requestLog = options.requestLog ?? options.log;
  const metrics = options.metrics;
  const handleErrors = errorHandler();
  // The request's shell, in one middleware (each middleware is a promise and a few closures per request: three of
  // them were 1-2 % of a read request's CPU): the client address, the request id, then around everything else the
  // request line and the metrics, both of which see the status the client gets (the error handler runs inside).
  app.use(async (ctx, next) => {
    ctx.request.ip = clientAddress(ctx.req.socket.remoteAddress ?? '', ctx.get('x-forwarded-for'));
    const requestId = requestIdFor(ctx.get('x-request-id'));
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    // Answers are the caller's own data: never stored by a cache, never sniffed as another type. What may be cached
    // (the console's files) says so itself, setting Cache-Control after this.
    ctx.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    if (options.strictTransportSecurity) ctx.set('Strict-Transport-Security', 'max-age=31536000');
    (ctx as unknown as RequestLog)[BINDINGS] = { requestId };
    const started = process.hrtime.bigint();
    try {
      await handleErrors(ctx, next);
    } finally {
      const ns = Number(process.hrtime.bigint() - started);
      if (metrics) recordRequest(metrics, ctx, ns / 1e9);
      const line = { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ns / 1e5) / 10 };
      const logger = (ctx as unknown as RequestLog)[LOGGER];
      if (logger) logger.info(line, 'request');
      else if (options.log.isLevelEnabled('info')) requestLog.info({ ...(ctx as unknown as RequestLog)[BINDINGS], ...line }, 'request');
    }
  });
  const takesRawBody = routerMatch(options.rawBodyPaths ?? []);
  const jsonLimit = options.jsonLimit ?? '1mb';
  const parseJson = async (ctx: Koa.Context, next: Koa.Next) => {
    ctx.request.body = ctx.request.is('application/json', '+json') ? await readJsonBody(ctx.req, jsonLimit) : {};
    return next();
  };
  app.use((ctx, next) => {
    const parameters = tooManyQueryParameters(ctx.querystring);
    if (parameters !== undefined) {
      throw new HttpError('VALIDATION_FAILED', `The query string has ${parameters.toLocaleString('en-US')} parameters: at most ${MAX_QUERY_PARAMETERS} are read`);
    }
    if (takesRawBody(ctx.path)) return next();
    // A body in another format would be dropped silently and the request judged as if it had none: say so.
    const hasBody = (ctx.request.length ?? 0) > 0 || ctx.get('transfer-encoding') !== '';
    if (hasBody && !ctx.request.is('application/json', '+json')) {
      throw new HttpError('UNSUPPORTED_MEDIA_TYPE', `Send the body as JSON with Content-Type: application/json (got ${ctx.request.type || 'no Content-Type'})`);
    }
    // JSON is UTF-8 (RFC 8259): a body declared in another charset would be read as UTF-8 all the same.
    const charset = ctx.request.charset.toLowerCase();
    if (hasBody && charset !== '' && charset !== 'utf-8' && charset !== 'utf8') {
      throw new HttpError('UNSUPPORTED_MEDIA_TYPE', `Send the body as UTF-8 JSON: charset=${charset} is not accepted (Content-Type: application/json; charset=utf-8, or no charset)`);
    }
    const checked = () => {
      requireStorableInput(ctx.request.body, ctx.query);
      return next();
    };
    // The parser reads bodies of these methods only; the others (GET, HEAD, OPTIONS) go past it.
    return PARSED_METHODS.includes(ctx.method) ? parseJson(ctx, checked) : checked();
  });
  for (const router of options.routers) app.use(router.routes()).use(router.allowedMethods());
  return app;
}
