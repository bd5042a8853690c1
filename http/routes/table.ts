/**
 * Routes are declared as data: method, path, access level, summary, the zod schemas of what comes in (params,
 * query, body) and of what goes out (response), and a handler that returns its answer. The router parses the
 * input before the handler runs (a failure is a 400 naming the fields); the access checks, the OpenAPI document
 * (http/routes/openapi.ts), the tenant-isolation test and the response-contract test all read the same table.
 *
 *     route({
 *       method: 'get', path: '/api/v1/client/wallets/:walletId', access: 'tenant', summary: 'One wallet.',
 *       params: z.object({ walletId }), response: walletView,
 *       async handler({ params, ctx }) {
 *         return { status: 200, body: await findTenantWallet(pool, tenantOf(ctx), params.walletId) };
 *       },
 *     })
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { z } from 'zod';
import type { Access } from '../access.ts';
import type pg from 'pg';
import { HttpError, parseRequest, RequestInvalid } from '../errors.ts';
import { workspaceProvisioned } from '../../projections/read/accounts.ts';
import { UNSTORABLE_TEXT_MESSAGE, unstorableTextAt } from '../text.ts';
import type { Position } from '../../domain/ports/event-store.ts';
import type { RequestContext } from '../request.ts';

export type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';

/** A JSON answer. */
export type JsonAnswer<Body> = { status: number; body: Body; headers?: Record<string, string> };

/** What a handler answers: a JSON body, a redirect, or a stream (server-sent events, a CSV file). */
export type Answer<Body> =
  | JsonAnswer<Body>
  | { status: 302; redirect: string; headers?: Record<string, string> }
  | { status: 200; stream: Readable; headers?: Record<string, string> };

/** A handler's input: the parsed params, query and body (undefined where the route declares no schema). */
export interface RouteInput<Params, Query, Body, Ctx = Context> {
  params: Params;
  query: Query;
  body: Body;
  /** For what the schemas do not cover: the caller (http/request.ts), cookies, the request's logger. */
  ctx: Ctx;
}

type Schema = z.ZodType;

interface RouteDeclaration<P extends Schema, Q extends Schema, B extends Schema, R extends Schema> {
  method: Method;
  path: string;
  access: Access;
  summary: string;
  params?: P;
  query?: Q;
  body?: B;
  /**
   * Headers the handler reads and checks itself (a webhook's signature): declared for the OpenAPI document only, as
   * an object of their lower-case names.
   */
  headers?: z.ZodObject;
  /** The body of a successful answer; for an event stream, the data of one event. */
  response: R;
  /** The statuses answered with `response` (200 unless given); anything else is an error answer. */
  statuses?: readonly number[];
  /**
   * `json` unless given; `redirect` answers 302 with a Location; `event-stream` never ends (server-sent events);
   * `csv` streams a text/csv file (`response` is then the schema of its text).
   */
  answers?: 'json' | 'redirect' | 'event-stream' | 'csv';
}

/** A route served through Koa (and, with a `direct` function, ahead of it on its raw request). */
interface KoaRoute<P extends Schema, Q extends Schema, B extends Schema, R extends Schema> extends RouteDeclaration<P, Q, B, R> {
  /**
   * Runs once the params are parsed, before the query and body: a resource the caller cannot see is missing
   * (404) whatever the rest of the request says.
   */
  exists?(input: { params: z.output<P>; ctx: Context }): Promise<void> | void;
  handler(input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>): Promise<Answer<z.input<R>>> | Answer<z.input<R>>;
  /**
   * The same handler on the bare request, served ahead of Koa by http/direct-route.ts when the method and the
   * path match exactly (a public route with no params or query, whose handler reads the raw body itself: the
   * signed webhooks). The request shell is the app's: client address, request id, request line, metrics and
   * error answers; `handler` still serves the route through Koa otherwise (a trailing slash, a query string).
   */
  direct?(request: IncomingMessage, caller: DirectCaller): Promise<{ status: number; body: z.input<R> }>;
}

/**
 * A GET answering JSON whose own handler is also served ahead of Koa (http/direct-route.ts), with the same access
 * checks, input parsing and answers: its handler and `exists` see the request's state and logger only.
 */
interface DirectRoute<P extends Schema, Q extends Schema, B extends Schema, R extends Schema> extends RouteDeclaration<P, Q, B, R> {
  direct: true;
  exists?(input: { params: z.output<P>; ctx: RequestContext }): Promise<void> | void;
  handler(input: RouteInput<z.output<P>, z.output<Q>, z.output<B>, RequestContext>): Promise<JsonAnswer<z.input<R>>> | JsonAnswer<z.input<R>>;
}

export type Route<P extends Schema = z.ZodUndefined, Q extends Schema = z.ZodUndefined, B extends Schema = z.ZodUndefined, R extends Schema = Schema> =
  | KoaRoute<P, Q, B, R>
  | DirectRoute<P, Q, B, R>;

/** What a direct handler knows of its caller besides the request. */
export interface DirectCaller {
  /** The client's address, as `ctx.ip` resolves it (TRUST_PROXY). */
  ip: string;
  /** The request's logger (its lines carry the request id), made on first use. */
  log(): Logger;
}

/** A declared route, whatever its schemas (what the router, the OpenAPI document and the tests walk). */
export type RouteSpec = Route<any, any, any, any>;

/** Declares a route; the handler's input and answer are typed from the schemas. */
export const route = <P extends Schema = z.ZodUndefined, Q extends Schema = z.ZodUndefined, B extends Schema = z.ZodUndefined, R extends Schema = Schema>(
  spec: Route<P, Q, B, R>,
): RouteSpec => spec;

/** A GET of a list or a report: 200 with what `read` gives for the parsed query (no params, no body). */
export function listRoute<Q extends Schema, R extends Schema>({
  read,
  ...declaration
}: Omit<RouteDeclaration<z.ZodUndefined, Q, z.ZodUndefined, R>, 'method' | 'params' | 'body'> & { query: Q; read(query: z.output<Q>): Promise<z.input<R>> }): RouteSpec {
  return route<z.ZodUndefined, Q, z.ZodUndefined, R>({ ...declaration, method: 'get', handler: async ({ query }) => ({ status: 200, body: await read(query) }) });
}

/**
 * An administrator's `tenantId` filter naming no workspace is a 404 saying so, as the tenant routes answer: a
 * mistyped tenant would otherwise read as an empty list.
 */
export async function requireWorkspace(pool: pg.Pool, tenantId: string | undefined): Promise<void> {
  if (tenantId !== undefined && !(await workspaceProvisioned(pool, tenantId))) throw new HttpError('NOT_FOUND', `No workspace has tenantId ${tenantId}`);
}

/** A read of one thing: 200 with it, or 404 with `missing` (what the caller asked for that is not there). */
export function found<Body>(value: Body | undefined | null, missing: string): Answer<Body> {
  if (value === undefined || value === null) throw new HttpError('NOT_FOUND', missing);
  return { status: 200, body: value };
}

export const successStatuses = (route: Pick<RouteSpec, 'statuses' | 'answers'>): readonly number[] => route.statuses ?? (route.answers === 'redirect' ? [302] : [200]);

export interface RouterDependencies {
  guard: (access: Access) => Middleware;
  /** Read-your-writes: resolves false if the projections did not reach `position` in time. */
  waitForPosition(position: Position, timeoutMs: number): Promise<boolean>;
  isPosition(value: string): boolean;
}

const READ_YOUR_WRITES_TIMEOUT_MS = 5000;
/**
 * Most reads waiting for their `X-Min-Position` at once in this process; one more is answered 503 at once. Each
 * waiter looks again every 250 ms: a position no write returned (far ahead) is waited for the whole 5 s.
 */
export const MAX_POSITION_WAITERS = 100;
let waiting = 0;

/** `X-Min-Position: <position>` on a read waits until the read models include that write. */
function minPosition(deps: RouterDependencies): Middleware {
  const reached = async (ctx: Context, wanted: string) => {
    if (!deps.isPosition(wanted)) throw new HttpError('VALIDATION_FAILED', 'X-Min-Position must be a position returned by a write');
    if (waiting >= MAX_POSITION_WAITERS) {
      ctx.set('Retry-After', '1');
      throw new HttpError('UNAVAILABLE', `More than ${MAX_POSITION_WAITERS} reads are waiting for their X-Min-Position; retry shortly`);
    }
    waiting++;
    try {
      if (await deps.waitForPosition(wanted as Position, READ_YOUR_WRITES_TIMEOUT_MS)) return;
    } finally {
      waiting--;
    }
    ctx.set('Retry-After', '1');
    throw new HttpError('UNAVAILABLE', 'The read models have not reached X-Min-Position yet; retry shortly');
  };
  // Not an async function: a read without the header (nearly all) goes straight on, with no promise of its own.
  return (ctx, next) => {
    const wanted = ctx.get('x-min-position');
    return wanted ? reached(ctx, wanted).then(next) : next();
  };
}

/** What a route is called with, as it came: the path's params, the parsed query string, the parsed body. */
export interface RawInput {
  params: Record<string, string>;
  query: unknown;
  body: unknown;
}

/** The parts of a route `answer` runs, whichever context its handler takes. */
interface Answering<Ctx, A> {
  method: Method;
  path: string;
  params?: Schema | undefined;
  query?: Schema | undefined;
  body?: Schema | undefined;
  statuses?: readonly number[] | undefined;
  answers?: RouteSpec['answers'];
  exists?(input: { params: any; ctx: Ctx }): Promise<void> | void;
  handler(input: RouteInput<any, any, any, Ctx>): Promise<A> | A;
}

/** A route that declares no body takes none: what was sent (a `reason` to approve, say) would be dropped unread. */
function refuseBody(body: unknown): undefined {
  const empty = body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty) throw new HttpError('VALIDATION_FAILED', 'The request is invalid: body: this route takes no body; send none (or {})');
  return undefined;
}

/**
 * Parses the input in the order params, (exists), query, body, then runs the handler and checks its status: the
 * first thing wrong is the one reported. The router's and the direct path's (http/direct-route.ts) one code.
 */
export async function answer<Ctx, A extends { status: number }>(route: Answering<Ctx, A>, input: RawInput, ctx: Ctx): Promise<A> {
  const bad = unstorableTextAt(input.params, 'path');
  if (bad) throw new HttpError('VALIDATION_FAILED', `${bad} ${UNSTORABLE_TEXT_MESSAGE}`);
  const params = route.params ? parseRequest(route.params, input.params, 'path') : undefined;
  await route.exists?.({ params, ctx });
  const query = route.query ? parseRequest(route.query, input.query, 'query') : undefined;
  const body = route.body ? parseRequest(route.body, input.body ?? {}, 'body') : refuseBody(input.body);
  const answered = await route.handler({ params, query, body, ctx });
  if (!successStatuses(route).includes(answered.status)) {
    throw new Error(`${route.method.toUpperCase()} ${route.path} answered ${answered.status}, which it does not declare`);
  }
  return answered;
}

/** A body schema's `idempotencyKey` field: an object's, or every option's of a (discriminated) union (the first's then). */
function idempotencyKeyField(schema: unknown): z.ZodType | undefined {
  const parts = schema as { shape?: Record<string, z.ZodType>; options?: unknown } | undefined;
  if (parts?.shape) return parts.shape.idempotencyKey;
  if (!Array.isArray(parts?.options) || parts.options.length === 0) return undefined;
  const fields = parts.options.map(idempotencyKeyField);
  return fields.every((field) => field !== undefined) ? fields[0] : undefined;
}

/** Whether a body schema has an `idempotencyKey` field: an object's shape, or every option of a (discriminated) union. */
export function takesIdempotencyKey(schema: unknown): boolean {
  return idempotencyKeyField(schema) !== undefined;
}

/** A create's answer: 201, or on a replay of its idempotency key what it first answered, as 200 marked replayed. */
export function created<Body>(body: Body, replayed: boolean): JsonAnswer<Body> {
  return replayed ? { status: 200, body, headers: { 'Idempotent-Replayed': 'true' } } : { status: 201, body };
}

/**
 * `Idempotency-Key: <key>`, the header's common name, on a route whose body takes `idempotencyKey`: the same key (it
 * was ignored, so a client sending only the header had every retry applied again). Both, and different: a 400. An
 * empty header is no key, as a missing one is (clients and wrappers that always send it, empty when they have no
 * key; found in review, 2026-12-08: it had become a 400). A header the field's rules refuse (too long) is named as
 * the header (`headers.idempotency-key`), not as the body's field it stands for.
 */
function withIdempotencyHeader(route: RouteSpec, body: unknown, header: string | undefined): unknown {
  const field = header ? idempotencyKeyField(route.body) : undefined;
  if (!header || !field) return body;
  if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) return body; // the body's parse says what is wrong
  const fields = (body ?? {}) as Record<string, unknown>;
  if (fields.idempotencyKey !== undefined && fields.idempotencyKey !== header) {
    throw new HttpError('VALIDATION_FAILED', 'The request is invalid: body.idempotencyKey and the Idempotency-Key header differ: send one of them, or the same key');
  }
  const checked = field.safeParse(header);
  if (!checked.success) {
    const issues = checked.error.issues.map((issue) => ({ ...issue, path: ['idempotency-key'], message: issue.message.replace(/^idempotencyKey\b/, 'Idempotency-Key') }));
    throw new RequestInvalid(issues, 'headers');
  }
  return { ...fields, idempotencyKey: header };
}

async function run(route: RouteSpec, ctx: Context): Promise<void> {
  const body = withIdempotencyHeader(route, ctx.request.body, ctx.request.headers['idempotency-key'] as string | undefined);
  const answered = await answer<Context, Answer<unknown>>(route, { params: ctx.params, query: ctx.query, body }, ctx);
  for (const [name, value] of Object.entries(answered.headers ?? {})) ctx.set(name, value);
  if ('redirect' in answered) return ctx.redirect(answered.redirect);
  ctx.status = answered.status;
  ctx.body = 'stream' in answered ? answered.stream : answered.body;
}

export function buildRouter(routes: readonly RouteSpec[], deps: RouterDependencies): Router {
  const router = new Router();
  for (const route of routes) {
    const middleware: Middleware[] = [deps.guard(route.access)];
    // A public read (health, the OpenAPI document, the OAuth pages) reads no read model: nothing to wait for, and
    // anyone could make it wait.
    if (route.method === 'get' && route.access !== 'public') middleware.push(minPosition(deps));
    router[route.method](route.path, ...middleware, (ctx) => run(route, ctx));
  }
  return router;
}
