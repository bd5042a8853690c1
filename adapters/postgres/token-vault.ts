/**
 * The token vault (domain/ports/token-vault.ts) in PostgreSQL: one row per tenant in `square_token_vault`,
 * the tokens sealed with AES-256-GCM under the current ENCRYPTION_KEY, the tenant id as additional
 * authenticated data (a row copied to another tenant does not decrypt), and the key's id beside them so a
 * previous key can still open rows until `npm run rotate-keys` re-encrypts them.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { TokenVault, VaultRead, VaultTokens } from '../../domain/ports/token-vault.ts';
import { open, seal } from '../crypto/aes-gcm.ts';
import type { EncryptionKey, Keyring } from '../crypto/keys.ts';

const bytes = z.custom<Buffer>((value) => Buffer.isBuffer(value), 'must be bytes');
const vaultRow = z.object({
  tenant_id: z.string(),
  merchant_id: z.string(),
  authorization_id: z.string(),
  key_id: z.string(),
  iv: bytes,
  ciphertext: bytes,
  auth_tag: bytes,
  expires_at: z.date(),
});
type VaultRow = z.infer<typeof vaultRow>;

/** What is encrypted: the two secrets, nothing else. */
const secrets = z.object({ accessToken: z.string().min(1), refreshToken: z.string().min(1) });

const COLUMNS = 'tenant_id, merchant_id, authorization_id, key_id, iv, ciphertext, auth_tag, expires_at';

/**
 * A token under a key this instance does not hold, written this recently, is taken for a rotation's rolling deploy
 * (another instance already has the new key): not recorded as undecryptable. Written longer ago, the key is lost.
 */
export const ROTATION_SKEW_SECONDS = 3600;
const aad = (tenantId: string) => Buffer.from(`tenant:${tenantId}`, 'utf8');

function sealTokens(key: EncryptionKey, tenantId: string, tokens: Pick<VaultTokens, 'accessToken' | 'refreshToken'>) {
  const plaintext = Buffer.from(JSON.stringify({ accessToken: tokens.accessToken, refreshToken: tokens.refreshToken }), 'utf8');
  return seal(key.key, plaintext, aad(tenantId));
}

/** The row's secrets, or undefined when no configured key opens it. */
function openRow(keys: Keyring, row: VaultRow): z.infer<typeof secrets> | undefined {
  const key = [keys.current, keys.previous].find((k) => k?.id === row.key_id);
  if (!key) return undefined;
  const plaintext = open(key.key, { iv: row.iv, ciphertext: row.ciphertext, authTag: row.auth_tag }, aad(row.tenant_id));
  if (!plaintext) return undefined;
  try {
    return secrets.parse(JSON.parse(plaintext.toString('utf8')));
  } catch {
    return undefined;
  }
}

export function postgresTokenVault(pool: pg.Pool, keys: Keyring): TokenVault {
  return {
    async put(tenantId, tokens) {
      const sealed = sealTokens(keys.current, tenantId, tokens);
      await pool.query(
        `INSERT INTO square_token_vault (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id) DO UPDATE SET merchant_id = EXCLUDED.merchant_id, authorization_id = EXCLUDED.authorization_id,
           key_id = EXCLUDED.key_id, iv = EXCLUDED.iv, ciphertext = EXCLUDED.ciphertext, auth_tag = EXCLUDED.auth_tag,
           expires_at = EXCLUDED.expires_at, updated_at = now()`,
        [tenantId, tokens.merchantId, tokens.authorizationId, keys.current.id, sealed.iv, sealed.ciphertext, sealed.authTag, tokens.expiresAt],
      );
    },

    async replaceIfSameAuthorization(tenantId, tokens) {
      const sealed = sealTokens(keys.current, tenantId, tokens);
      const result = await pool.query(
        `UPDATE square_token_vault SET key_id = $3, iv = $4, ciphertext = $5, auth_tag = $6, expires_at = $7, updated_at = now()
          WHERE tenant_id = $1 AND authorization_id = $2`,
        [tenantId, tokens.authorizationId, keys.current.id, sealed.iv, sealed.ciphertext, sealed.authTag, tokens.expiresAt],
      );
      return result.rowCount === 1;
    },

    async read(tenantId): Promise<VaultRead> {
      const { rows } = await pool.query(
        {
          name: 'tally_vault_read',
          text: `SELECT ${COLUMNS}, updated_at > now() - make_interval(secs => ${ROTATION_SKEW_SECONDS}) AS recent FROM square_token_vault WHERE tenant_id = $1`,
        },
        [tenantId],
      );
      if (!rows[0]) return { status: 'missing' };
      const row = vaultRow.parse(rows[0]);
      const opened = openRow(keys, row);
      const expiresAt = row.expires_at.toISOString();
      const keyHeld = [keys.current, keys.previous].some((k) => k?.id === row.key_id);
      const rotationSkew = !keyHeld && z.boolean().parse(rows[0].recent);
      if (!opened) return { status: 'undecryptable', keyId: row.key_id, keyHeld, rotationSkew, merchantId: row.merchant_id, authorizationId: row.authorization_id, expiresAt };
      return {
        status: 'ok',
        keyId: row.key_id,
        encryptedWithCurrentKey: row.key_id === keys.current.id,
        tokens: { authorizationId: row.authorization_id, merchantId: row.merchant_id, expiresAt, ...opened },
      };
    },

    async remove(tenantId, authorizationId) {
      await pool.query('DELETE FROM square_token_vault WHERE tenant_id = $1 AND ($2::text IS NULL OR authorization_id = $2)', [tenantId, authorizationId]);
    },
  };
}

export interface RotationReport {
  /** Rows now encrypted under the current key that were not before. */
  reencrypted: number;
  /** Rows that already were. */
  alreadyCurrent: number;
  /** Tenants whose row no configured key opens: left as they are. */
  undecryptable: string[];
}

const BATCH = 200;

/**
 * Re-encrypts every row not under the current key (`npm run rotate-keys`). Safe while the service runs: each
 * row is replaced only if it is unchanged since it was read (a refresh meanwhile already used the current key).
 */
export async function rotateVaultKeys(pool: pg.Pool, keys: Keyring): Promise<RotationReport> {
  const report: RotationReport = { reencrypted: 0, alreadyCurrent: 0, undecryptable: [] };
  let after = '';
  for (;;) {
    const { rows } = await pool.query(
      `SELECT ${COLUMNS} FROM square_token_vault WHERE key_id <> $1 AND tenant_id > $2 ORDER BY tenant_id LIMIT ${BATCH}`,
      [keys.current.id, after],
    );
    if (rows.length === 0) break;
    for (const raw of rows) {
      const row = vaultRow.parse(raw);
      after = row.tenant_id;
      const opened = openRow(keys, row);
      if (!opened) {
        report.undecryptable.push(row.tenant_id);
        continue;
      }
      const sealed = sealTokens(keys.current, row.tenant_id, opened);
      const updated = await pool.query(
        `UPDATE square_token_vault SET key_id = $2, iv = $3, ciphertext = $4, auth_tag = $5, updated_at = now()
          WHERE tenant_id = $1 AND key_id = $6 AND iv = $7`,
        [row.tenant_id, keys.current.id, sealed.iv, sealed.ciphertext, sealed.authTag, row.key_id, row.iv],
      );
      if (updated.rowCount === 1) report.reencrypted++;
    }
  }
  const { rows } = await pool.query<{ count: string }>('SELECT count(*) AS count FROM square_token_vault WHERE key_id = $1', [keys.current.id]);
  report.alreadyCurrent = Number(rows[0]?.count ?? 0) - report.reencrypted;
  return report;
}
