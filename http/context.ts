import type { Logger } from 'pino';

declare module 'koa' {
  interface DefaultContext {
    /**
     * The request's logger: every line carries the request id, and the caller's user id once authenticated
     * (see `logWith`). Created on first use: most requests log nothing but their request line.
     */
    log: Logger;
    /** Adds fields to every line this request logs from now on, its request line included. */
    logWith(bindings: Record<string, unknown>): void;
  }
  interface DefaultState {
    requestId: string;
  }
  interface Request {
    /** The parsed JSON body of a POST, PUT, PATCH or DELETE (http/json-body.ts); `{}` without one. */
    body?: unknown;
  }
}

export {};
