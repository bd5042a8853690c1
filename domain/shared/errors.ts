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
