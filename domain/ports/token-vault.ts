/**
 * The token vault port: where a tenant's Square OAuth tokens live, encrypted, outside the event log.
 * `adapters/postgres/token-vault.ts` implements it with AES-256-GCM under ENCRYPTION_KEY; every row names the
 * key it was encrypted with, so ENCRYPTION_KEY_PREVIOUS still decrypts after a rotation.
 */

/** A tenant's tokens and the authorization they belong to. */
export interface VaultTokens {
  /** The authorization (connect) these tokens came from: a refresh only replaces tokens of the same one. */
  authorizationId: string;
  merchantId: string;
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, ISO 8601. Stored in clear beside the ciphertext (not a secret). */
  expiresAt: string;
}

/**
 * What reading a tenant's tokens gives. A token that cannot be decrypted is a state, not an exception:
 * `keyId` names the key it was encrypted under (a short hash, never the key), so an operator can tell
 * which key is missing.
 */
/** The authorization whose tokens the vault holds, if any (readable or not). */
export const vaultAuthorization = (read: VaultRead): string | null =>
  read.status === 'missing' ? null : read.status === 'ok' ? read.tokens.authorizationId : read.authorizationId;

export type VaultRead =
  | { status: 'missing' }
  | { status: 'ok'; tokens: VaultTokens; keyId: string; encryptedWithCurrentKey: boolean }
  | {
      status: 'undecryptable';
      keyId: string;
      /**
       * Whether this instance holds the key `keyId` names (it then failed to open the token: the row is damaged, or the
       * key was replaced under the same id). False: configuration skew, e.g. an instance not yet given the key another
       * instance wrote with during a rotation; what it cannot open, instances with that key may.
       */
      keyHeld: boolean;
      /**
       * Not held, and the row was written within the last hour: taken for a rotation under way (instances configured
       * apart for the minutes of a rolling deploy), so nothing is recorded on the stream every instance shares. A row
       * under a key no instance has held for longer is a lost key, recorded as undecryptable.
       */
      rotationSkew: boolean;
      merchantId: string;
      authorizationId: string;
      expiresAt: string;
    };

export interface TokenVault {
  /** Stores the tenant's tokens, replacing whatever it held (a new authorization). */
  put(tenantId: string, tokens: VaultTokens): Promise<void>;
  /**
   * Replaces the tokens only if the vault still holds tokens of `tokens.authorizationId` (a refresh must not
   * overwrite the tokens of a reconnect that happened meanwhile). Returns whether it replaced them.
   */
  replaceIfSameAuthorization(tenantId: string, tokens: VaultTokens): Promise<boolean>;
  read(tenantId: string): Promise<VaultRead>;
  /**
   * Deletes the tenant's tokens of that authorization (after a revocation they are worthless, and a liability);
   * tokens of a newer authorization stay. `null`: whatever authorization they belong to.
   */
  remove(tenantId: string, authorizationId: string | null): Promise<void>;
}
