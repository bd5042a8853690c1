import test from 'ava';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, parseEnvironment, secretValues, VARIABLE_NAMES } from '../../adapters/config.ts';
import { shownDatabaseUrl } from '../../adapters/postgres/database-url.ts';

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'tally-config-'));

test('an empty environment is valid in development: defaults, and secrets generated once into the data directory', async (t) => {
  const dir = await tmp();
  const first = await loadConfig({ DATA_DIR: dir });
  t.is(first.PORT, 3000);
  t.is(first.API_BASE_URL, 'http://localhost:3000');
  t.deepEqual(first.generatedSecrets.sort(), ['AUTH_JWT_SECRET', 'CRON_SECRET', 'ENCRYPTION_KEY', 'IDENTITY_HASH_KEY']);
  t.is(Buffer.from(first.ENCRYPTION_KEY, 'base64').length, 32);
  const file = path.join(dir, 'dev-secrets.json');
  t.is((await stat(file)).mode & 0o777, 0o600, 'the secrets file is private');
  const second = await loadConfig({ DATA_DIR: dir });
  t.is(second.AUTH_JWT_SECRET, first.AUTH_JWT_SECRET, 'generated once, then reused');
  t.is(JSON.parse(await readFile(file, 'utf8')).CRON_SECRET, first.CRON_SECRET);
});

test('every malformed variable is reported at once, by name, with what to fix', (t) => {
  const error = t.throws(
    () =>
      parseEnvironment({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://nope',
        ENCRYPTION_KEY: 'c2hvcnQ=',
        SQUARE_ENVIRONMENT: 'staging',
        LOG_LEVEL: 'loud',
      }),
    { instanceOf: ConfigError },
  );
  const text = error!.message;
  for (const name of ['PORT', 'DATABASE_URL', 'ENCRYPTION_KEY', 'SQUARE_ENVIRONMENT', 'LOG_LEVEL']) t.regex(text, new RegExp(`${name}:`));
  t.regex(text, /32 random bytes in base64/);
  t.is(error!.problems.length, 5);
});

test('a value that is no URL at all is reported by name among the others, not thrown as a bare TypeError', (t) => {
  const error = t.throws(() => parseEnvironment({ DATABASE_URL: 'notaurl', EVENTSTORE_URL: 'kurrentdb//x', PORT: 'abc' }), { instanceOf: ConfigError });
  t.regex(error!.message, /DATABASE_URL: must be a URL/);
  t.regex(error!.message, /EVENTSTORE_URL: must be a URL/);
  t.regex(error!.message, /PORT:/);
  t.is(error!.problems.length, 3);
});

test('production requires every secret and refuses to generate them', (t) => {
  const error = t.throws(() => parseEnvironment({ NODE_ENV: 'production' }), { instanceOf: ConfigError });
  for (const name of ['AUTH_JWT_SECRET or AUTH_JWKS_URL', 'IDENTITY_HASH_KEY', 'ENCRYPTION_KEY', 'CRON_SECRET', 'DATABASE_URL', 'API_BASE_URL']) {
    t.true(error!.message.includes(name), name);
  }
});

test('production starts with everything given; a JWKS URL stands in for the shared secret', (t) => {
  const { raw, missingSecrets } = parseEnvironment({
    NODE_ENV: 'production',
    AUTH_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
    IDENTITY_HASH_KEY: 'x'.repeat(40),
    ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    CRON_SECRET: 'c'.repeat(20),
    DATABASE_URL: 'postgres://u@db/tally',
    API_BASE_URL: 'https://api.example.com',
    FRONTEND_URL: 'https://app.example.com',
    ADMIN_EMAILS: ' Ops@Example.com, root@example.com ,',
  });
  t.deepEqual(missingSecrets, []);
  t.deepEqual(raw.ADMIN_EMAILS, ['ops@example.com', 'root@example.com']);
});

test('security settings: TRUST_PROXY takes a count or CIDRs, ADMIN_EMAILS only plain ASCII, twilio needs its credentials', (t) => {
  t.deepEqual(parseEnvironment({ TRUST_PROXY: '2' }).raw.TRUST_PROXY, { kind: 'hops', hops: 2 });
  t.deepEqual(parseEnvironment({ TRUST_PROXY: 'true' }).raw.TRUST_PROXY, { kind: 'hops', hops: 1 });
  t.deepEqual(parseEnvironment({ TRUST_PROXY: '10.0.0.0/8, ::1' }).raw.TRUST_PROXY, { kind: 'cidrs', ranges: ['10.0.0.0/8', '::1'] });
  t.deepEqual(parseEnvironment({ ADMIN_EMAILS: ' Root@Example.com ' }).raw.ADMIN_EMAILS, ['root@example.com']);
  const error = t.throws(
    () => parseEnvironment({ TRUST_PROXY: '10.0.0.0/33', ADMIN_EMAILS: 'ops@exämple.com', AUTH_EMAIL_VERIFIED_CLAIMS: 'a..b' }),
    { instanceOf: ConfigError },
  );
  t.regex(error!.message, /TRUST_PROXY: .*10\.0\.0\.0\/33/);
  t.regex(error!.message, /ADMIN_EMAILS: .*ASCII/);
  t.regex(error!.message, /AUTH_EMAIL_VERIFIED_CLAIMS/);
  t.throws(() => parseEnvironment({ SMS_PROVIDER: 'twilio' }), { message: /TWILIO_ACCOUNT_SID/ });
  t.throws(() => parseEnvironment({ NODE_ENV: 'production', SMS_PROVIDER: 'console' }), { message: /console writes codes to the log/ });
});

test('event store group commit: appends in flight and group size are bounded whole numbers, 4 and 64 by default', (t) => {
  const defaults = parseEnvironment({}).raw;
  t.is(defaults.EVENT_APPENDS_IN_FLIGHT, 4);
  t.is(defaults.EVENT_APPEND_GROUP_SIZE, 64);
  const error = t.throws(() => parseEnvironment({ EVENT_APPENDS_IN_FLIGHT: '0', EVENT_APPEND_GROUP_SIZE: 'many' }), { instanceOf: ConfigError });
  t.regex(error!.message, /EVENT_APPENDS_IN_FLIGHT:/);
  t.regex(error!.message, /EVENT_APPEND_GROUP_SIZE:/);
  t.is(parseEnvironment({ EVENT_APPEND_GROUP_SIZE: '1' }).raw.EVENT_APPEND_GROUP_SIZE, 1);
});

test('an idle keep-alive connection outlives a load balancer\'s 60 s by default; bounded like the other HTTP timeouts', (t) => {
  t.is(parseEnvironment({}).raw.HTTP_KEEP_ALIVE_TIMEOUT_MS, 65_000);
  t.is(parseEnvironment({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '5000' }).raw.HTTP_KEEP_ALIVE_TIMEOUT_MS, 5_000);
  const error = t.throws(() => parseEnvironment({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '500' }), { instanceOf: ConfigError });
  t.regex(error!.message, /HTTP_KEEP_ALIVE_TIMEOUT_MS:/);
});

test('README.md\'s Configuration table and .env.example each name every variable the service reads', async (t) => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const example = await readFile(new URL('../../.env.example', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## API'));
  t.true(VARIABLE_NAMES.length > 40);
  for (const name of VARIABLE_NAMES) {
    t.true(table.includes(`\`${name}\``), `README's Configuration table lacks ${name}`);
    t.regex(example, new RegExp(`^#? ?${name}=`, 'm'), `.env.example lacks ${name}`);
  }
});

test('numbers are whole decimal numbers; blank is unset (the default), not 0; hex, exponents and fractions are refused', (t) => {
  t.is(parseEnvironment({ PORT: '' }).raw.PORT, 3000);
  t.is(parseEnvironment({ PORT: '  ' }).raw.PORT, 3000);
  t.is(parseEnvironment({ PORT: ' 8080 ' }).raw.PORT, 8080);
  t.is(parseEnvironment({ SHUTDOWN_TIMEOUT_MS: '' }).raw.SHUTDOWN_TIMEOUT_MS, 10_000);
  t.is(parseEnvironment({ WEBHOOK_LOOK_AHEAD_HOLD_MS: '' }).raw.WEBHOOK_LOOK_AHEAD_HOLD_MS, undefined);
  t.is(parseEnvironment({ WEBHOOK_LOOK_AHEAD_HOLD_MS: '250' }).raw.WEBHOOK_LOOK_AHEAD_HOLD_MS, 250);
  const error = t.throws(() => parseEnvironment({ PORT: '0x10', DATABASE_POOL_SIZE: '1e3', WEBHOOK_BATCH_SIZE: '12.5', SHUTDOWN_TIMEOUT_MS: '-1' }), { instanceOf: ConfigError });
  for (const name of ['PORT', 'DATABASE_POOL_SIZE', 'WEBHOOK_BATCH_SIZE']) t.regex(error!.message, new RegExp(`${name}: must be a whole number in decimal digits`));
  t.regex(error!.message, /SHUTDOWN_TIMEOUT_MS:/);
  t.is(error!.problems.length, 4);
});

test('an empty or damaged dev-secrets.json is a configuration error naming the file, never silently replaced', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tally-config-damaged-'));
  const file = path.join(dataDir, 'dev-secrets.json');
  for (const content of ['', '{"AUTH_JWT_SECRET":', '[1,2]']) {
    await writeFile(file, content);
    const error = await t.throwsAsync(loadConfig({ DATA_DIR: dataDir }), { instanceOf: ConfigError });
    t.regex(error!.message, /dev-secrets\.json is empty or damaged/);
    t.is(await readFile(file, 'utf8'), content, 'left as it was');
  }
});

test('a blank value counts as unset for every variable: the enumerations, flags, HOST and DATA_DIR take their defaults', (t) => {
  const blank = ['NODE_ENV', 'LOG_LEVEL', 'LOG_FORMAT', 'SQUARE_ENVIRONMENT', 'SQUARE_SIMULATOR', 'AUTH_PROVIDER_CONFIRMS_CONTACTS', 'WEBHOOK_WORKER_THREAD', 'HOST', 'DATA_DIR', 'TRUST_PROXY'];
  const { raw } = parseEnvironment(Object.fromEntries(blank.map((name, i) => [name, i % 2 ? ' ' : ''])));
  t.like(raw, {
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
    LOG_FORMAT: undefined,
    SQUARE_ENVIRONMENT: 'sandbox',
    SQUARE_SIMULATOR: 'auto',
    AUTH_PROVIDER_CONFIRMS_CONTACTS: false,
    WEBHOOK_WORKER_THREAD: false,
    HOST: '0.0.0.0',
    DATA_DIR: '.data',
  });
});

test('DATABASE_URL must name a host (or a socket directory); base URLs take no query or fragment; a number far out of range says the range, once', (t) => {
  for (const url of ['postgres://', 'postgres:x', 'postgresql:///tally']) {
    t.throws(() => parseEnvironment({ DATABASE_URL: url }), { message: /DATABASE_URL: must name a host/ }, url);
  }
  t.is(parseEnvironment({ DATABASE_URL: 'postgresql:///tally?host=/run/postgresql' }).raw.DATABASE_URL, 'postgresql:///tally?host=/run/postgresql');
  const error = t.throws(() => parseEnvironment({ API_BASE_URL: 'https://api.test/?x=1', FRONTEND_URL: 'https://app.test/#home', SQUARE_BASE_URL: 'https://sq.test?' }), { instanceOf: ConfigError });
  for (const name of ['API_BASE_URL', 'FRONTEND_URL', 'SQUARE_BASE_URL']) t.regex(error!.message, new RegExp(`${name}: must be a base URL without a query \\(\\?\\) or fragment \\(#\\)`));
  const port = t.throws(() => parseEnvironment({ PORT: '99999999999999999999' }), { instanceOf: ConfigError });
  t.deepEqual(port!.problems, ['PORT: must be from 0 to 65535']);
});

test("DATABASE_URL's passwords, in its user info or its query, are masked in the logs and wherever it is shown", async (t) => {
  const config = await loadConfig({ DATA_DIR: await tmp(), DATABASE_URL: 'postgres://tally:user%40info-pass@db:5432/tally?password=query-pass-1&sslpassword=key-pass-22&sslmode=require' });
  const secrets = secretValues(config);
  for (const password of ['user%40info-pass', 'user@info-pass', 'query-pass-1', 'key-pass-22']) t.true(secrets.includes(password), password);
  t.is(shownDatabaseUrl(config.DATABASE_URL!), 'postgres://tally:***@db:5432/tally?password=***&sslpassword=***&sslmode=require');
});
