/**
 * Errors the core raises on purpose. Each has a fixed `code`; only http/ maps codes to statuses.
 * The message is written for the caller and says what to fix.
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    /** What went wrong underneath, for the log (http/errors.ts logs it); never part of the answer. */
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DomainError';
  }
}

export class NotFound extends DomainError {
  constructor(what: string) {
    super('NOT_FOUND', `${what} not found`);
  }
}

/**
 * A command met a concurrent write on its stream (from another process) at every one of its bounded,
 * backed-off attempts. Nothing was appended; the same request retried a moment later is expected to pass.
 */
export class StreamContended extends DomainError {
  constructor(attempts: number) {
    super('STREAM_CONTENDED', `This resource is being changed by many requests at once (${attempts} attempts met a concurrent change); retry in a moment`, {
      attempts,
    });
  }
}

/** One refused field of a request's body: `path` within the body (`locationIds.1`), as a schema failure's issue. */
export interface FieldIssue {
  path: string;
  message: string;
}

/**
 * Body fields the core refuses after the schema passed (ids Square does not hold, a date already past): a 400 in
 * the schema failures' shape. The message names each field as `body.<path>`, and http/errors.ts answers the issues
 * as `error.issues`, and in `details.issues` too, where they were alone until 2026-12-08.
 */
export class InvalidFields extends DomainError {
  constructor(readonly issues: FieldIssue[]) {
    super('VALIDATION_FAILED', `The request is invalid: ${issues.map((i) => `body.${i.path}: ${i.message}`).join('; ')}`, { issues });
    this.name = 'InvalidFields';
  }
}
