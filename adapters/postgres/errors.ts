/**
 * Classifies PostgreSQL and socket errors: transient ones (server down, restarting, connection lost, too many
 * connections) are worth a retry and surface as 503; anything else is a bug or a constraint and is not retried.
 */
const TRANSIENT_SQLSTATE_CLASSES = ['08', '53', '57P'];
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

export function isTransientPgError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (TRANSIENT_NODE_CODES.has(code)) return true;
    if (TRANSIENT_SQLSTATE_CLASSES.some((prefix) => code.startsWith(prefix))) return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    error.message,
  );
}

/**
 * Lost to another transaction rather than wrong: a lock not granted within `lock_timeout` (55P03), a deadlock (40P01),
 * a serialization failure (40001). Rolled back, the same transaction may succeed when tried again.
 */
export function isLockContentionPgError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === '55P03' || code === '40P01' || code === '40001';
}
