/**
 * The one error middleware. Domain errors map to statuses through one table; request validation errors are
 * 400 with the fields to fix; anything else is a 500 whose body carries only the request id, never internals.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { ZodError, type z } from 'zod';
import { DomainError, InvalidFields, type FieldIssue } from '../domain/shared/errors.ts';
import { ConcurrencyConflict, EventStoreUnavailable } from '../domain/ports/event-store.ts';
import { isTransientPgError } from '../adapters/postgres/errors.ts';

const STATUS_BY_CODE: Record<string, number> = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  USER_PENDING_APPROVAL: 403,
  USER_NOT_REGISTERED: 403,
  USER_SUSPENDED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  CONCURRENCY_CONFLICT: 409,
  CONNECTION_UNAVAILABLE: 409,
  MERCHANT_ALREADY_CONNECTED: 409,
  INSUFFICIENT_POINTS: 409,
  REWARD_RETIRED: 409,
  REWARD_NOT_ISSUED: 409,
  REWARD_EXPIRED: 409,
  RULE_RETIRED: 409,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  ADJUSTMENT_ABOVE_LIMIT: 422,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  // A command's bounded retries all met a concurrent write from another process: retrying shortly succeeds.
  STREAM_CONTENDED: 503,
  // An expiry computed from a read kept meeting a wallet that moved: the next run computes it again.
  STALE_DECISION: 503,
  WEBHOOKS_NOT_CONFIGURED: 503,
  CONFIGURATION_MISSING: 503,
  ENCRYPTION_KEY_NOT_HELD: 503,
  SQUARE_REQUEST_FAILED: 502,
  NOT_IMPLEMENTED: 501,
};

/** An error raised by the HTTP layer itself (authentication, body parsing, routing). */
export class HttpError extends DomainError {}

/**
 * The request (body, path, query) failed its schema: a 400 naming the fields. A bare ZodError is something
 * else: stored data (a read-model row, an event) that failed to parse, which is our fault: a logged 500.
 */
export class RequestInvalid extends Error {
  constructor(
    readonly issues: ZodError['issues'],
    /** The part of the request that failed, which its messages name first (`query.limit: …`). */
    readonly part: RequestPart,
  ) {
    super('The request is invalid');
    this.name = 'RequestInvalid';
  }
}

/** The parts of a request a route parses: its path's params, its query string, its body, its headers. */
export type RequestPart = 'path' | 'query' | 'body' | 'headers';

const KEY_NOUN: Record<RequestPart, string> = { path: 'parameter', query: 'parameter', body: 'field', headers: 'header' };

/** Parses one part of a request's input; a failure is the caller's to fix (400), named by the part it is in. */
export function parseRequest<T extends z.ZodType>(schema: T, input: unknown, part: RequestPart): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new RequestInvalid(parsed.error.issues, part);
  return parsed.data;
}

/** One issue as the message says it: where (`query.limit`), then what; keys not accepted are named. */
function issueText(issue: ZodError['issues'][number], part: RequestPart): string {
  const where = [part, ...issue.path.map(String)].join('.');
  if (issue.code !== 'unrecognized_keys') return `${where}: ${issue.message}`;
  const noun = issue.keys.length > 1 ? `${KEY_NOUN[part]}s` : KEY_NOUN[part];
  return `${where}: unknown ${noun} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
}

/**
 * The issues a schema failure answers, each `path` within its part. A key not accepted is its own issue, its path
 * naming it (`walletid`, not the empty path of the object it was sent to, as until 2026-12-08).
 */
function answeredIssues(issues: ZodError['issues'], part: RequestPart): FieldIssue[] {
  return issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: [...issue.path.map(String), key].join('.'), message: `unknown ${KEY_NOUN[part]} ${JSON.stringify(key)}` }))
      : [{ path: issue.path.map(String).join('.'), message: issue.message }],
  );
}

export function statusFor(code: string): number {
  return STATUS_BY_CODE[code] ?? 500;
}

/** What an error answers: status, the JSON body, and headers (Retry-After). */
export interface ErrorAnswer {
  status: number;
  body: { error: Record<string, unknown> };
  headers: Record<string, string>;
}

/**
 * The answer to an error, for the error middleware and for routes served without Koa (http/direct-route.ts).
 * `log` gives the request's logger (made only when something is logged); `retryAfter` is a Retry-After the
 * handler already set, kept on a 503 it raised on purpose.
 */
export function errorAnswer(error: unknown, requestId: string | undefined, log: () => Logger, retryAfter?: string): ErrorAnswer {
  const internal = { error: { code: 'INTERNAL', message: 'Internal error; quote the request id when reporting it.', requestId } };
  if (error instanceof RequestInvalid) {
    return {
      status: 400,
      headers: {},
      body: {
        error: {
          code: 'VALIDATION_FAILED',
          message: 'The request is invalid: ' + error.issues.map((i) => issueText(i, error.part)).join('; '),
          issues: answeredIssues(error.issues, error.part),
        },
      },
    };
  }
  if (error instanceof DomainError && statusFor(error.code) !== 500) {
    // Raised on purpose, with a message written for the caller (a 503 says what is unavailable).
    const status = statusFor(error.code);
    // The cause (a provider's answer, say) is for the operator; the caller has the message written for them.
    if (error.cause !== undefined) log().warn({ err: error.cause, code: error.code }, error.message);
    const headers: Record<string, string> = {};
    if (status === 503) headers['Retry-After'] = retryAfter ?? '5';
    const seconds = error.details?.retryAfterSeconds;
    if (status === 429 && typeof seconds === 'number') headers['Retry-After'] = String(seconds);
    // Fields refused after the schema answer their issues where a schema failure does (`details.issues` kept).
    const issues = error instanceof InvalidFields ? { issues: error.issues } : {};
    return { status, headers, body: { error: { code: error.code, message: error.message, ...issues, ...(error.details ? { details: error.details } : {}) } } };
  }
  if (error instanceof ConcurrencyConflict) {
    return { status: 409, headers: {}, body: { error: { code: 'CONCURRENCY_CONFLICT', message: 'The resource changed concurrently; retry the request.' } } };
  }
  if (error instanceof EventStoreUnavailable || isTransientPgError(error)) {
    log().warn({ err: error }, 'dependency unavailable');
    return { status: 503, headers: { 'Retry-After': '5' }, body: { error: { code: 'UNAVAILABLE', message: 'A backing service is unavailable; retry shortly.', requestId } } };
  }
  if (error instanceof ZodError) {
    // Stored data that does not parse: the reason goes to the log (it names internal columns), never out.
    log().error({ err: error, issues: error.issues }, 'stored data failed to parse');
    return { status: 500, headers: {}, body: internal };
  }
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Errors thrown by Koa and its middleware (e.g. body too large) carry a safe, client-facing message.
    return { status, headers: {}, body: { error: { code: codeForStatus(status), message: (error as Error).message } } };
  }
  log().error({ err: error }, 'unhandled error');
  return { status: 500, headers: {}, body: internal };
}

/**
 * The router's own answers, which carry no body (Koa would write its plain-text status message): a path no route
 * takes (404), a method the path's routes do not take (405, with the router's Allow), a method no route takes (501).
 */
function routingAnswer(ctx: Context): void {
  const allowed = ctx.response.get('Allow');
  const use = allowed ? `: use ${allowed}` : '';
  if (ctx.status === 404) {
    ctx.status = 404;
    ctx.body = { error: { code: 'NOT_FOUND', message: `No route for ${ctx.method} ${ctx.path}` } };
  } else if (ctx.status === 405) {
    ctx.body = { error: { code: 'METHOD_NOT_ALLOWED', message: `${ctx.method} is not allowed on ${ctx.path}${use}` } };
  } else if (ctx.status === 501) {
    ctx.body = { error: { code: 'NOT_IMPLEMENTED', message: `${ctx.method} is not a method this service answers${use}` } };
  }
}

export function errorHandler() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.body === undefined) routingAnswer(ctx);
    } catch (error) {
      const answer = errorAnswer(error, ctx.state.requestId as string | undefined, () => ctx.log, ctx.response.get('Retry-After') || undefined);
      ctx.status = answer.status;
      for (const [name, value] of Object.entries(answer.headers)) ctx.set(name, value);
      ctx.body = answer.body;
    }
  };
}

function codeForStatus(status: number): string {
  const entry = Object.entries(STATUS_BY_CODE).find(([, s]) => s === status);
  return entry?.[0] ?? 'BAD_REQUEST';
}
