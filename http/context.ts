import type { Logger } from 'pino';

declare module 'koa' {
  interface DefaultContext {
    /** The request's logger: every line carries the request id. */
    log: Logger;
  }
  interface DefaultState {
    requestId: string;
  }
}

export {};
