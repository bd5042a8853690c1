/**
 * `npm run rotate-keys`: re-encrypts every stored Square token under the current ENCRYPTION_KEY.
 *
 * Rotation: set ENCRYPTION_KEY to a new key and ENCRYPTION_KEY_PREVIOUS to the old one, deploy, run this, then
 * remove ENCRYPTION_KEY_PREVIOUS. Safe while the service runs. Exits 1 when some token could not be decrypted
 * with either key (those rows are left as they are; their connections show `token_undecryptable`); 2 when it could
 * not run (configuration, database, migrations pending): then nothing was re-encrypted.
 */
import pg from 'pg';
import { ConfigError, loadConfig } from '../adapters/config.ts';
import { keyring } from '../adapters/crypto/keys.ts';
import { rotateVaultKeys } from '../adapters/postgres/token-vault.ts';
import { currentDatabase } from '../adapters/postgres/local-database.ts';
import { MIGRATION_CONNECT_TIMEOUT_MS } from '../adapters/postgres/migrate.ts';
import { commandArguments } from './arguments.ts';

commandArguments(
  'Usage: npm run rotate-keys (re-encrypts every stored Square token under ENCRYPTION_KEY; ENCRYPTION_KEY_PREVIOUS opens those written under the previous key)',
  {},
);

async function main(): Promise<number> {
  const config = await loadConfig();
  const keys = keyring(config.ENCRYPTION_KEY, config.ENCRYPTION_KEY_PREVIOUS);
  const database = await currentDatabase(config);
  // A server that accepts the connection and never answers fails the command after 10 s, as the others.
  const pool = new pg.Pool({ connectionString: database.url, max: 2, connectionTimeoutMillis: MIGRATION_CONNECT_TIMEOUT_MS });
  try {
    const report = await rotateVaultKeys(pool, keys);
    process.stdout.write(
      `Current key ${keys.current.id}${keys.previous ? `, previous key ${keys.previous.id}` : ' (ENCRYPTION_KEY_PREVIOUS is not set)'}.\n` +
        `Re-encrypted: ${report.reencrypted}. Already under the current key: ${report.alreadyCurrent}. Undecryptable: ${report.undecryptable.length}.\n`,
    );
    if (report.undecryptable.length) {
      process.stderr.write(
        `These tenants' tokens open with neither key and were left as they are: ${report.undecryptable.join(', ')}.\n` +
          'Set ENCRYPTION_KEY_PREVIOUS to the key they were written with and run again, or have those merchants connect Square again.\n',
      );
      return 1;
    }
    return 0;
  } finally {
    await pool.end();
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`${error instanceof ConfigError ? error.message : `Key rotation failed: ${error instanceof Error ? error.message : String(error)}`}\n`);
    process.exit(2);
  },
);
