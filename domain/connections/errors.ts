/** Errors of the Square connection context. Codes are mapped to HTTP statuses in http/errors.ts only. */
import { DomainError } from '../shared/errors.ts';

/** SQUARE_APP_ID or SQUARE_APP_SECRET is not set: nothing can be asked of Square. */
export class ConfigurationMissing extends DomainError {
  constructor(readonly missing: readonly string[]) {
    super(
      'CONFIGURATION_MISSING',
      `Square is not configured on this server: set ${missing.join(' and ')} (from the Square Developer Dashboard, Credentials page) and restart the API`,
      { missing: [...missing] },
    );
    this.name = 'ConfigurationMissing';
  }
}

/**
 * The stored token was written under a key this instance does not hold: configuration skew between instances (one
 * given a new ENCRYPTION_KEY before another), not a broken connection. Retryable, and nothing is recorded on the
 * connection's stream, which every instance shares: instances holding the key go on using it.
 */
export class EncryptionKeyNotHeld extends DomainError {
  constructor(readonly keyId: string) {
    super(
      'ENCRYPTION_KEY_NOT_HELD',
      `The stored Square token was encrypted under key ${keyId}, which this instance holds neither as ENCRYPTION_KEY nor as ENCRYPTION_KEY_PREVIOUS: give every instance the same keys`,
      { keyId },
    );
    this.name = 'EncryptionKeyNotHeld';
  }
}

/** The tenant has no connection that can be used now; `status` says why. */
export class ConnectionUnavailable extends DomainError {
  constructor(
    readonly status: string,
    message: string,
  ) {
    super('CONNECTION_UNAVAILABLE', message, { status });
    this.name = 'ConnectionUnavailable';
  }

  /** The error for a connection in `status`, with what to do about it. */
  static because(status: string): ConnectionUnavailable {
    return new ConnectionUnavailable(status, UNAVAILABLE_BECAUSE[status] ?? `The Square connection is ${status}`);
  }
}

const UNAVAILABLE_BECAUSE: Record<string, string> = {
  not_connected: 'This workspace has no Square connection: connect one with GET /api/v1/client/pos/square/connect',
  revoked: 'The Square connection was revoked: connect Square again',
  needs_reconnect: 'Square no longer accepts this connection’s tokens: connect Square again',
  token_undecryptable:
    'The stored Square token cannot be decrypted with ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS: restore the key it was encrypted with, or connect Square again',
  token_missing: 'No Square token is stored for this connection: connect Square again',
};

/** That Square merchant is connected to another tenant. */
export class MerchantAlreadyConnected extends DomainError {
  constructor(readonly merchantId: string) {
    super(
      'MERCHANT_ALREADY_CONNECTED',
      `Square merchant ${merchantId} is connected to another workspace: disconnect it there first, or sign in to Square with another account`,
    );
    this.name = 'MerchantAlreadyConnected';
  }
}

/** Square refused or did not answer a call we cannot complete without (e.g. revoking on disconnect). */
export class SquareRequestFailed extends DomainError {
  constructor(message: string, readonly squareCode: string) {
    super('SQUARE_REQUEST_FAILED', message, { squareCode });
    this.name = 'SquareRequestFailed';
  }
}

/** Why the OAuth callback failed: the `error=` value the browser is redirected with. */
export type ConnectFailureReason =
  | 'access_denied'
  | 'invalid_state'
  | 'token_exchange_failed'
  | 'merchant_already_connected'
  | 'currency_mismatch'
  | 'configuration_missing';

/** The connect flow failed. `reason` goes to the browser; `detail` only to the log (it never names a token or code). */
export class ConnectFailed extends DomainError {
  constructor(
    readonly reason: ConnectFailureReason,
    readonly detail: string,
    /** The workspace whose attempt failed, once its state was verified (for the log: the callback has no caller). */
    readonly tenantId?: string,
  ) {
    super('SQUARE_CONNECT_FAILED', `Connecting Square failed: ${reason}`);
    this.name = 'ConnectFailed';
  }
}
