/**
 * The token vault against a real PostgreSQL database: tokens are sealed (AES-256-GCM, tenant as AAD), a wrong
 * key is a state rather than a crash, the previous key still opens rows, and rotation re-encrypts every row —
 * through the function and through `npm run rotate-keys`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { keyring } from '../../adapters/crypto/keys.ts';
import { postgresTokenVault, rotateVaultKeys } from '../../adapters/postgres/token-vault.ts';
import type { VaultTokens } from '../../domain/ports/token-vault.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const run = promisify(execFile);
const newKey = () => randomBytes(32).toString('base64');
const KEY_A = newKey();
const KEY_B = newKey();
const KEY_C = newKey();

let database: TestDatabase;
test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

let counter = 0;
function tokensFor(label: string, authorizationId = 'auth-1'): VaultTokens {
  counter++;
  return {
    authorizationId,
    merchantId: `M-${label}`,
    accessToken: `EAAA-access-${label}-${counter}-${randomBytes(8).toString('hex')}`,
    refreshToken: `EQAA-refresh-${label}-${counter}-${randomBytes(8).toString('hex')}`,
    expiresAt: '2026-04-01T10:00:00.000Z',
  };
}
const tenant = (label: string) => `tenant-${label}-${randomBytes(4).toString('hex')}`;
const rawRow = async (tenantId: string) => (await database.pool.query('SELECT * FROM square_token_vault WHERE tenant_id = $1', [tenantId])).rows[0];

test('tokens are stored sealed and read back; the row holds neither token in clear', async (t) => {
  const vault = postgresTokenVault(database.pool, keyring(KEY_A));
  const tenantId = tenant('roundtrip');
  const tokens = tokensFor('roundtrip');
  await vault.put(tenantId, tokens);

  const read = await vault.read(tenantId);
  t.deepEqual(read, { status: 'ok', tokens, keyId: keyring(KEY_A).current.id, encryptedWithCurrentKey: true });
  const row = await rawRow(tenantId);
  const everything = JSON.stringify(row) + Buffer.concat([row.iv, row.ciphertext, row.auth_tag]).toString('latin1');
  t.false(everything.includes(tokens.accessToken));
  t.false(everything.includes(tokens.refreshToken));
  t.is(row.iv.length, 12);
  t.is(row.key_id, keyring(KEY_A).current.id);
  t.false(row.key_id.includes(KEY_A.slice(0, 8)), 'the key id is a hash, not a piece of the key');
  t.deepEqual(await vault.read(tenant('nobody')), { status: 'missing' });
});

test('a token sealed under a key that is not configured is reported undecryptable, naming that key', async (t) => {
  const tenantId = tenant('wrong-key');
  await postgresTokenVault(database.pool, keyring(KEY_C)).put(tenantId, tokensFor('wrong-key'));
  const read = await postgresTokenVault(database.pool, keyring(KEY_A, KEY_B)).read(tenantId);
  t.like(read, { status: 'undecryptable', keyId: keyring(KEY_C).current.id, merchantId: 'M-wrong-key', authorizationId: 'auth-1' });
});

test('a row altered, or moved to another tenant, does not decrypt (GCM authentication, tenant as AAD)', async (t) => {
  const vault = postgresTokenVault(database.pool, keyring(KEY_A));
  const [victim, thief, tampered] = [tenant('victim'), tenant('thief'), tenant('tampered')];
  await vault.put(victim, tokensFor('victim'));
  await vault.put(tampered, tokensFor('tampered'));
  await database.pool.query(
    `INSERT INTO square_token_vault (tenant_id, merchant_id, authorization_id, key_id, iv, ciphertext, auth_tag, expires_at)
     SELECT $2, merchant_id, authorization_id, key_id, iv, ciphertext, auth_tag, expires_at FROM square_token_vault WHERE tenant_id = $1`,
    [victim, thief],
  );
  await database.pool.query(`UPDATE square_token_vault SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE tenant_id = $1`, [tampered]);
  t.is((await vault.read(thief)).status, 'undecryptable');
  t.is((await vault.read(tampered)).status, 'undecryptable');
  t.is((await vault.read(victim)).status, 'ok');
});

test('after a rotation the previous key still decrypts; new writes use the current key', async (t) => {
  const tenantId = tenant('previous');
  const tokens = tokensFor('previous');
  await postgresTokenVault(database.pool, keyring(KEY_A)).put(tenantId, tokens);
  const rotated = postgresTokenVault(database.pool, keyring(KEY_B, KEY_A));
  t.deepEqual(await rotated.read(tenantId), { status: 'ok', tokens, keyId: keyring(KEY_A).current.id, encryptedWithCurrentKey: false });

  const refreshed = { ...tokens, accessToken: 'EAAA-refreshed-token-value' };
  t.true(await rotated.replaceIfSameAuthorization(tenantId, refreshed));
  t.like(await rotated.read(tenantId), { status: 'ok', tokens: refreshed, encryptedWithCurrentKey: true });
  t.like(await postgresTokenVault(database.pool, keyring(KEY_B)).read(tenantId), { status: 'ok' }, 'no longer needs the previous key');
});

test('tokens of another authorization are neither replaced by a late refresh nor removed by a late revocation', async (t) => {
  const vault = postgresTokenVault(database.pool, keyring(KEY_A));
  const tenantId = tenant('race');
  const reconnected = tokensFor('race', 'auth-2');
  await vault.put(tenantId, tokensFor('race', 'auth-1'));
  await vault.put(tenantId, reconnected);
  t.false(await vault.replaceIfSameAuthorization(tenantId, tokensFor('race', 'auth-1')));
  await vault.remove(tenantId, 'auth-1');
  t.like(await vault.read(tenantId), { status: 'ok', tokens: reconnected });
  await vault.remove(tenantId, 'auth-2');
  t.deepEqual(await vault.read(tenantId), { status: 'missing' });
});

test('rotation re-encrypts every row under the current key and leaves the ones no key opens', async (t) => {
  // A database of its own: rotation looks at every row.
  const own = await createTestDatabase();
  t.teardown(() => own.drop());
  const before = postgresTokenVault(own.pool, keyring(KEY_A));
  const tenants = Array.from({ length: 5 }, (_, i) => tenant(`rotate-${i}`));
  const stored = new Map<string, VaultTokens>();
  for (const tenantId of tenants) {
    const tokens = tokensFor(tenantId);
    stored.set(tenantId, tokens);
    await before.put(tenantId, tokens);
  }
  const lost = tenant('lost-key');
  await postgresTokenVault(own.pool, keyring(KEY_C)).put(lost, tokensFor('lost'));

  const keys = keyring(KEY_B, KEY_A);
  t.deepEqual(await rotateVaultKeys(own.pool, keys), { reencrypted: 5, alreadyCurrent: 0, undecryptable: [lost] });
  const { rows } = await own.pool.query('SELECT tenant_id, key_id FROM square_token_vault ORDER BY tenant_id');
  for (const row of rows) t.is(row.key_id, row.tenant_id === lost ? keyring(KEY_C).current.id : keys.current.id, row.tenant_id);

  const onlyNewKey = postgresTokenVault(own.pool, keyring(KEY_B));
  for (const tenantId of tenants) t.deepEqual(await onlyNewKey.read(tenantId), { status: 'ok', tokens: stored.get(tenantId)!, keyId: keys.current.id, encryptedWithCurrentKey: true });
  t.deepEqual(await rotateVaultKeys(own.pool, keys), { reencrypted: 0, alreadyCurrent: 5, undecryptable: [lost] }, 'running it again changes nothing');
});

test('npm run rotate-keys re-encrypts the database it is pointed at, and exits 1 naming tenants no key opens', async (t) => {
  const own = await createTestDatabase();
  t.teardown(() => own.drop());
  const tenantId = tenant('cli');
  const tokens = tokensFor('cli');
  await postgresTokenVault(own.pool, keyring(KEY_A)).put(tenantId, tokens);
  const env = {
    PATH: process.env.PATH,
    NODE_ENV: 'test',
    DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'tally-rotate-')),
    DATABASE_URL: own.url,
    ENCRYPTION_KEY: KEY_B,
    ENCRYPTION_KEY_PREVIOUS: KEY_A,
  };
  // The compiled command (tests/run.ts compiles cli/ with the tests): no TypeScript loader to start each time.
  const script = path.resolve('.build/cli/rotate-keys.js');
  const ok = await run(process.execPath, [script], { env });
  t.regex(ok.stdout, /Re-encrypted: 1\. Already under the current key: 0\. Undecryptable: 0\./);
  t.false(ok.stdout.includes(KEY_A) || ok.stdout.includes(KEY_B), 'keys are never printed');
  t.deepEqual(await postgresTokenVault(own.pool, keyring(KEY_B)).read(tenantId), { status: 'ok', tokens, keyId: keyring(KEY_B).current.id, encryptedWithCurrentKey: true });

  const lost = tenant('cli-lost');
  await postgresTokenVault(own.pool, keyring(KEY_C)).put(lost, tokensFor('cli-lost'));
  const failed = await t.throwsAsync(run(process.execPath, [script], { env }));
  t.is((failed as unknown as { code: number }).code, 1);
  t.regex((failed as unknown as { stderr: string }).stderr, new RegExp(`left as they are: ${lost}`));
});
