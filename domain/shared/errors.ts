/**
 * Errors the core raises on purpose. Each has a fixed `code`; only http/ maps codes to statuses.
 * The message is written for the caller and says what to fix.
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export class NotFound extends DomainError {
  constructor(what: string) {
    super('NOT_FOUND', `${what} not found`);
  }
}
