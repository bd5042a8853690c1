/**
 * The one error middleware. Domain errors map to statuses through one table; request validation errors are
 * 400 with the fields to fix; anything else is a 500 whose body carries only the request id, never internals.
 */
import type { Context, Next } from 'koa';
import { ZodError, type z } from 'zod';
import { DomainError } from '../domain/shared/errors.ts';
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
  RULE_RETIRED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  // A command's bounded retries all met a concurrent write from another process: retrying shortly succeeds.
  STREAM_CONTENDED: 503,
  WEBHOOKS_NOT_CONFIGURED: 503,
  CONFIGURATION_MISSING: 503,
  SQUARE_REQUEST_FAILED: 502,
};

/** An error raised by the HTTP layer itself (authentication, body parsing, routing). */
export class HttpError extends DomainError {}

/**
 * The request (body, path, query) failed its schema: a 400 naming the fields. A bare ZodError is something
 * else: stored data (a read-model row, an event) that failed to parse, which is our fault: a logged 500.
 */
export class RequestInvalid extends Error {
  constructor(readonly issues: ZodError['issues']) {
    super('The request is invalid');
    this.name = 'RequestInvalid';
  }
}

/** Parses request input; a failure is the caller's to fix (400). */
export function parseRequest<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new RequestInvalid(parsed.error.issues);
  return parsed.data;
}

export function statusFor(code: string): number {
  return STATUS_BY_CODE[code] ?? 500;
}

export function errorHandler() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: { code: 'NOT_FOUND', message: `No route for ${ctx.method} ${ctx.path}` } };
      }
    } catch (error) {
      const requestId = ctx.state.requestId as string | undefined;
      if (error instanceof RequestInvalid) {
        ctx.status = 400;
        ctx.body = {
          error: {
            code: 'VALIDATION_FAILED',
            message: 'The request is invalid: ' + error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
            issues: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
          },
        };
        return;
      }
      if (error instanceof DomainError && statusFor(error.code) !== 500) {
        // Raised on purpose, with a message written for the caller (a 503 says what is unavailable).
        ctx.status = statusFor(error.code);
        if (ctx.status === 503 && !ctx.response.get('Retry-After')) ctx.set('Retry-After', '5');
        const retryAfter = error.details?.retryAfterSeconds;
        if (ctx.status === 429 && typeof retryAfter === 'number') ctx.set('Retry-After', String(retryAfter));
        ctx.body = { error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } };
        return;
      }
      if (error instanceof ConcurrencyConflict) {
        ctx.status = 409;
        ctx.body = { error: { code: 'CONCURRENCY_CONFLICT', message: 'The resource changed concurrently; retry the request.' } };
        return;
      }
      if (error instanceof EventStoreUnavailable || isTransientPgError(error)) {
        ctx.log?.warn({ err: error }, 'dependency unavailable');
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = { error: { code: 'UNAVAILABLE', message: 'A backing service is unavailable; retry shortly.', requestId } };
        return;
      }
      if (error instanceof ZodError) {
        // Stored data that does not parse: the reason goes to the log (it names internal columns), never out.
        ctx.log?.error({ err: error, issues: error.issues }, 'stored data failed to parse');
        ctx.status = 500;
        ctx.body = { error: { code: 'INTERNAL', message: 'Internal error; quote the request id when reporting it.', requestId } };
        return;
      }
      const status = (error as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        // Errors thrown by Koa and its middleware (e.g. body too large) carry a safe, client-facing message.
        ctx.status = status;
        ctx.body = { error: { code: codeForStatus(status), message: (error as Error).message } };
        return;
      }
      ctx.log?.error({ err: error }, 'unhandled error');
      ctx.status = 500;
      ctx.body = { error: { code: 'INTERNAL', message: 'Internal error; quote the request id when reporting it.', requestId } };
    }
  };
}

function codeForStatus(status: number): string {
  const entry = Object.entries(STATUS_BY_CODE).find(([, s]) => s === status);
  return entry?.[0] ?? 'BAD_REQUEST';
}
