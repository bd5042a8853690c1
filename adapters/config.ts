/**
 * Configuration: read once from the environment, validated with zod. Every problem is reported at once.
 * In production every secret must be set; elsewhere missing development secrets are generated once into
 * `<DATA_DIR>/dev-secrets.json` (and a warning names them), so `npm start` works with no setup.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { databaseUrlSecrets } from './postgres/database-url.ts';
import { parseTrustProxy } from './trust-proxy.ts';

const emptyToUndefined = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
/** A string with a default: blank is unset, as for every variable. */
const text = (fallback: string) => z.preprocess(emptyToUndefined, z.string().default(fallback));
/** One of `values`; blank is unset, so `fallback` applies (or it stays unset). */
function choice<const V extends readonly [string, ...string[]]>(values: V): z.ZodType<V[number] | undefined, unknown>;
function choice<const V extends readonly [string, ...string[]]>(values: V, fallback: V[number]): z.ZodType<V[number], unknown>;
function choice<const V extends readonly [string, ...string[]]>(values: V, fallback?: V[number]): z.ZodType<V[number] | undefined, unknown> {
  const value = z.enum(values, { error: `must be one of ${values.join(', ')}` });
  return z.preprocess(emptyToUndefined, fallback === undefined ? value.optional() : value.default(fallback as never));
}
/** `true` or `false`; blank is unset (false). */
const flag = () => choice(['true', 'false'], 'false').transform((v) => v === 'true');
/** A URL with one of `protocols`; a `check` adds a rule of its own (given only URLs that parse). */
const optionalUrl = (protocols: string[], check?: { ok: (url: URL) => boolean; message: string }) =>
  z.preprocess(
    emptyToUndefined,
    z
      .string()
      .url('must be a URL')
      // zod runs a refinement after a failed check too: a value that is no URL has its message already.
      .refine((v) => !URL.canParse(v) || protocols.includes(new URL(v).protocol), `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`)
      .refine((v) => !check || !URL.canParse(v) || !protocols.includes(new URL(v).protocol) || check.ok(new URL(v)), check?.message ?? '')
      .optional(),
  );
/** A URL paths are appended to (`<API_BASE_URL>/api/v1/…`): a query or a fragment would end up in the middle of each. */
const baseUrl = () =>
  optionalUrl(['https:', 'http:'], { ok: (url) => url.search === '' && url.hash === '' && !/[?#]/.test(url.href), message: 'must be a base URL without a query (?) or fragment (#)' });
const base64Key = z.preprocess(
  emptyToUndefined,
  z
    .string()
    .refine((v) => /^[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === 32, 'must be 32 random bytes in base64 (openssl rand -base64 32)')
    .optional(),
);
/** Comma-separated dotted claim paths (`user_metadata.email_verified`), tried in order. */
const claimPaths = (fallback: string) =>
  z.preprocess(
    emptyToUndefined,
    z
      .string()
      .default(fallback)
      .transform((v) => v.split(',').map((p) => p.trim()).filter(Boolean))
      .refine((paths) => paths.length > 0 && paths.every((p) => /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/.test(p)), 'must be dotted claim paths, comma-separated'),
  );
/**
 * A whole number written in decimal digits, within [min, max]; blank is unset, so `fallback` applies (or it stays
 * unset). `0x10`, `1e3`, `12.5` or `80 ` with a letter are refused: a plain `Number()` would take the first two,
 * and an empty `PORT=` used to become port 0.
 */
function whole(min: number, max: number): z.ZodType<number | undefined, unknown>;
function whole(min: number, max: number, fallback: number): z.ZodType<number, unknown>;
function whole(min: number, max: number, fallback?: number): z.ZodType<number | undefined, unknown> {
  const digits = (value: unknown) => {
    if (typeof value !== 'string') return value;
    const text = value.trim();
    if (text === '') return undefined;
    return /^-?\d+$/.test(text) ? Number(text) : text;
  };
  // One message for any number out of range, however far (a number past 2^53 failed `int()` and `max()` both).
  const number = z.number({ error: 'must be a whole number in decimal digits' }).refine((n) => Number.isSafeInteger(n) && n >= min && n <= max, `must be from ${min} to ${max}`);
  return z.preprocess(digits, fallback === undefined ? number.optional() : number.default(fallback));
}
const secret = (min: number) => z.preprocess(emptyToUndefined, z.string().min(min, `must be at least ${min} characters`).optional());

/** The variables, their validation and defaults. README.md and .env.example document the same list. */
const schema = z.object({
  NODE_ENV: choice(['development', 'test', 'production'], 'development'),
  PORT: whole(0, 65535, 3000),
  HOST: text('0.0.0.0'),
  LOG_LEVEL: choice(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
  DATA_DIR: text('.data'),
  DATABASE_URL: optionalUrl(['postgres:', 'postgresql:'], {
    // A Unix socket is named by `?host=/run/postgresql`, as pg (and libpq) take it.
    ok: (url) => url.hostname !== '' || url.searchParams.has('host'),
    message: 'must name a host: postgres://user@host:5432/database (or ?host=/socket/directory for a Unix socket)',
  }),
  DATABASE_POOL_SIZE: whole(2, 500, 20),
  EVENTSTORE_URL: optionalUrl(['kurrentdb:', 'esdb:', 'kurrentdb+discover:', 'esdb+discover:']),
  /** PostgreSQL event store: statements of one-event appends under way at once; appends arriving meanwhile are grouped (group commit). */
  EVENT_APPENDS_IN_FLIGHT: whole(1, 500, 4),
  /** Most one-event appends one group-commit statement writes (1 turns group commit off). */
  EVENT_APPEND_GROUP_SIZE: whole(1, 1_000, 64),
  SHUTDOWN_TIMEOUT_MS: whole(0, 600_000, 10_000),
  AUTH_FAILURE_LIMIT_PER_MINUTE: whole(1, 10_000_000, 30),
  TRUST_PROXY: text('false').transform((v, ctx) => {
      const parsed = parseTrustProxy(v);
      if (typeof parsed === 'string') {
        ctx.addIssue({ code: 'custom', message: `must be true, false, a number of trusted proxies or their CIDRs: ${parsed}` });
        return z.NEVER;
      }
      return parsed;
    }),

  AUTH_JWT_SECRET: secret(32),
  AUTH_JWKS_URL: optionalUrl(['https:', 'http:']),
  AUTH_JWT_ISSUER: optionalString,
  AUTH_JWT_AUDIENCE: optionalString,
  ADMIN_EMAILS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .optional()
      .transform((v) => (v ? v.split(',').map((e) => e.normalize('NFKC').trim().toLowerCase()).filter(Boolean) : []))
      .refine((emails) => emails.every((e) => /^[\x21-\x7e]+@[\x21-\x7e]+$/.test(e)), 'admin emails must be plain ASCII addresses (look-alike characters are refused)'),
  ),
  AUTH_EMAIL_VERIFIED_CLAIMS: claimPaths('email_verified'),
  AUTH_PHONE_CLAIMS: claimPaths('phone_number,phone'),
  AUTH_PHONE_VERIFIED_CLAIMS: claimPaths('phone_number_verified'),
  AUTH_PROVIDER_CONFIRMS_CONTACTS: flag(),
  SMS_PROVIDER: choice(['console', 'twilio', 'none']),
  TWILIO_ACCOUNT_SID: z.preprocess(emptyToUndefined, z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio account SID (AC followed by 32 hex digits)').optional()),
  TWILIO_AUTH_TOKEN: optionalString,
  TWILIO_FROM: z.preprocess(emptyToUndefined, z.string().regex(/^(\+[1-9]\d{6,14}|MG[0-9a-fA-F]{32})$/, 'must be an E.164 number or a Messaging Service SID').optional()),
  TWILIO_BASE_URL: baseUrl(),
  IDENTITY_HASH_KEY: secret(32),
  ENCRYPTION_KEY: base64Key,
  ENCRYPTION_KEY_PREVIOUS: base64Key,
  CRON_SECRET: secret(16),

  API_BASE_URL: baseUrl(),
  FRONTEND_URL: baseUrl(),
  SQUARE_APP_ID: optionalString,
  SQUARE_APP_SECRET: optionalString,
  SQUARE_ENVIRONMENT: choice(['sandbox', 'production'], 'sandbox'),
  SQUARE_BASE_URL: baseUrl(),
  SQUARE_WEBHOOK_SIGNATURE_KEY: optionalString,
  SQUARE_WEBHOOK_URL: optionalUrl(['https:', 'http:']),
  SQUARE_TIMEOUT_SECONDS: whole(1, 300, 30),
  HTTP_HEADERS_TIMEOUT_MS: whole(1000, 600_000, 10_000),
  HTTP_REQUEST_TIMEOUT_MS: whole(1000, 600_000, 30_000),
  /**
   * How long an idle keep-alive connection stays open. Longer than the idle timeout of the load balancers Tally runs
   * behind (AWS ALB 60 s, nginx's upstream keepalive 60 s), so that they never send a request on a connection the
   * service is closing (a 502 for that request); Node's own default is 5 s.
   */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: whole(1000, 600_000, 65_000),
  WEBHOOK_BODY_RETENTION_DAYS: whole(1, 3650, 30),
  WEBHOOK_ROW_RETENTION_DAYS: whole(0, 36500, 400),
  /** The audit trail's rows are deleted this many days after they were recorded, hourly (0: kept for good). */
  AUDIT_RETENTION_DAYS: whole(0, 36500, 0),
  /** auto: the built-in simulator when NODE_ENV=development and SQUARE_APP_ID is unset; on: always (never in production); off: never. */
  SQUARE_SIMULATOR: choice(['auto', 'on', 'off'], 'auto'),
  /** json: one JSON object a line (machines); pretty: readable lines (people). Default: pretty on a terminal outside production. */
  LOG_FORMAT: choice(['json', 'pretty']),
  CUSTOMER_CACHE_TTL_SECONDS: whole(0, 86_400, 600),
  CUSTOMER_CACHE_MAX_ENTRIES: whole(1, 10_000_000, 100_000),
  /** Square orders read for item, category, before-tax and exclusion rules (issue 19): kept this long (0: not cached). */
  ORDER_CACHE_TTL_SECONDS: whole(0, 86_400, 600),
  ORDER_CACHE_MAX_ENTRIES: whole(1, 10_000_000, 20_000),
  WEBHOOK_BATCH_SIZE: whole(1, 1_000, 128),
  WEBHOOK_BATCHES_IN_FLIGHT: whole(1, 64, 4),
  WEBHOOK_POOL_SIZE: whole(1, 200, 4),
  WEBHOOK_ACK_BATCH_SIZE: whole(1, 1_000, 64),
  /** Whether the webhook worker decides batches on a thread of its own (wiring/webhook-thread.ts). */
  WEBHOOK_WORKER_THREAD: flag(),
  /** Longest the inbox worker defers its next batch while acknowledgements queue (0: never defers). */
  WEBHOOK_ACK_PRIORITY_MS: whole(0, 60_000, 10_000),
  /** How many webhooks being acknowledged at once count as acknowledgements queueing (adapters/workers/acknowledgements.ts). */
  WEBHOOK_ACK_PRIORITY_PENDING: whole(1, 10_000, 16),
  /**
   * Longest the customers of webhooks stored while acknowledgements queue are held before they are looked up at
   * Square, together (wiring/ingestion.ts, `handedOverTogether`; 0: at once). Default: WEBHOOK_ACK_PRIORITY_MS.
   */
  WEBHOOK_LOOK_AHEAD_HOLD_MS: whole(0, 60_000),
});

/** Every variable's name, in the schema's order (README's table and .env.example list each: a test checks). */
export const VARIABLE_NAMES: readonly string[] = Object.keys(schema.shape);

type Raw = z.infer<typeof schema>;

/** Secrets that development may generate; production must be given them. */
const GENERATED_SECRETS = {
  AUTH_JWT_SECRET: () => randomBytes(32).toString('base64url'),
  IDENTITY_HASH_KEY: () => randomBytes(32).toString('base64url'),
  ENCRYPTION_KEY: () => randomBytes(32).toString('base64'),
  CRON_SECRET: () => randomBytes(24).toString('base64url'),
} as const;
type GeneratedSecret = keyof typeof GENERATED_SECRETS;

export interface Config extends Omit<Raw, GeneratedSecret | 'API_BASE_URL' | 'FRONTEND_URL'> {
  AUTH_JWT_SECRET: string | undefined;
  IDENTITY_HASH_KEY: string;
  ENCRYPTION_KEY: string;
  CRON_SECRET: string;
  API_BASE_URL: string;
  FRONTEND_URL: string;
  /** Names of secrets generated for development in this run's data directory. */
  generatedSecrets: string[];
  /** Whether Square is the built-in simulator (SQUARE_SIMULATOR, NODE_ENV and SQUARE_APP_ID decide). */
  squareSimulated: boolean;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Validates the environment. Pure: no files are read or written. */
export function parseEnvironment(env: NodeJS.ProcessEnv): { raw: Raw; missingSecrets: GeneratedSecret[] } {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`));
  }
  const raw = parsed.data;
  const problems: string[] = [];
  const missingSecrets = (Object.keys(GENERATED_SECRETS) as GeneratedSecret[]).filter(
    (name) => raw[name] === undefined && !(name === 'AUTH_JWT_SECRET' && raw.AUTH_JWKS_URL),
  );
  if (raw.NODE_ENV === 'production') {
    for (const name of missingSecrets) {
      problems.push(
        name === 'AUTH_JWT_SECRET' ? 'AUTH_JWT_SECRET or AUTH_JWKS_URL: one is required in production' : `${name}: required in production`,
      );
    }
    if (!raw.DATABASE_URL) problems.push('DATABASE_URL: required in production (the embedded server is for development)');
    if (!raw.API_BASE_URL) problems.push('API_BASE_URL: required in production');
    if (!raw.FRONTEND_URL) problems.push('FRONTEND_URL: required in production');
  }
  if (raw.SMS_PROVIDER === 'twilio' && !(raw.TWILIO_ACCOUNT_SID && raw.TWILIO_AUTH_TOKEN && raw.TWILIO_FROM)) {
    problems.push('SMS_PROVIDER: twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM');
  }
  if (raw.NODE_ENV === 'production' && raw.SMS_PROVIDER === 'console') {
    problems.push('SMS_PROVIDER: console writes codes to the log; use twilio (or none) in production');
  }
  if (raw.SQUARE_SIMULATOR === 'on' && raw.NODE_ENV === 'production') {
    problems.push('SQUARE_SIMULATOR: the Square simulator is for development; set it to off (or auto) in production');
  }
  if (raw.SQUARE_SIMULATOR === 'on' && raw.SQUARE_APP_ID) {
    problems.push('SQUARE_SIMULATOR: on, but SQUARE_APP_ID is set: use one or the other');
  }
  if (raw.ENCRYPTION_KEY_PREVIOUS && raw.ENCRYPTION_KEY_PREVIOUS === raw.ENCRYPTION_KEY) {
    problems.push('ENCRYPTION_KEY_PREVIOUS: must differ from ENCRYPTION_KEY');
  }
  if (problems.length) throw new ConfigError(problems);
  return { raw, missingSecrets: raw.NODE_ENV === 'production' ? [] : missingSecrets };
}

/** The generated development secrets; a damaged file is a configuration error naming it (never silently replaced). */
async function readSecretsFile(file: string): Promise<Partial<Record<GeneratedSecret, string>>> {
  try {
    return z.record(z.string(), z.string()).parse(JSON.parse(await readFile(file, 'utf8'))) as Partial<Record<GeneratedSecret, string>>;
  } catch {
    throw new ConfigError([
      `${file} is empty or damaged (not a JSON object of secrets): restore it, or delete it to have new development secrets generated ` +
        '(what the old ones encrypted or signed, the Square tokens and the users\' tokens, can then no longer be read)',
    ]);
  }
}

/** Reads the environment, generating missing development secrets once into the data directory. */
export async function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const { raw, missingSecrets } = parseEnvironment(env);
  const generated: Partial<Record<GeneratedSecret, string>> = {};
  if (missingSecrets.length) {
    const file = path.join(raw.DATA_DIR, 'dev-secrets.json');
    const stored = existsSync(file) ? await readSecretsFile(file) : {};
    let changed = false;
    for (const name of missingSecrets) {
      if (!stored[name]) {
        stored[name] = GENERATED_SECRETS[name]();
        changed = true;
      }
      generated[name] = stored[name];
    }
    if (changed) {
      await mkdir(raw.DATA_DIR, { recursive: true });
      // Written whole or not at all: a crash mid-write must not leave the secrets that encrypt the data half-written.
      const partial = `${file}.${process.pid}.tmp`;
      await writeFile(partial, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 });
      await chmod(partial, 0o600);
      await rename(partial, file);
    }
  }
  const apiBaseUrl = (raw.API_BASE_URL ?? `http://localhost:${raw.PORT}`).replace(/\/+$/, '');
  return {
    ...raw,
    AUTH_JWT_SECRET: raw.AUTH_JWT_SECRET ?? generated.AUTH_JWT_SECRET,
    IDENTITY_HASH_KEY: (raw.IDENTITY_HASH_KEY ?? generated.IDENTITY_HASH_KEY) as string,
    ENCRYPTION_KEY: (raw.ENCRYPTION_KEY ?? generated.ENCRYPTION_KEY) as string,
    CRON_SECRET: (raw.CRON_SECRET ?? generated.CRON_SECRET) as string,
    API_BASE_URL: apiBaseUrl,
    // In development without a front end, the OAuth callback lands on Tally's own /pos page.
    FRONTEND_URL: (raw.FRONTEND_URL ?? (raw.NODE_ENV === 'development' ? apiBaseUrl : 'http://localhost:5173')).replace(/\/+$/, ''),
    generatedSecrets: missingSecrets,
    squareSimulated: raw.SQUARE_SIMULATOR === 'on' || (raw.SQUARE_SIMULATOR === 'auto' && raw.NODE_ENV === 'development' && !raw.SQUARE_APP_ID),
  };
}

/** Every value that must never reach a log line or a response. */
export function secretValues(config: Config): string[] {
  return [
    config.AUTH_JWT_SECRET,
    config.IDENTITY_HASH_KEY,
    config.ENCRYPTION_KEY,
    config.ENCRYPTION_KEY_PREVIOUS,
    config.CRON_SECRET,
    config.SQUARE_APP_SECRET,
    config.SQUARE_WEBHOOK_SIGNATURE_KEY,
    config.TWILIO_AUTH_TOKEN,
    ...databaseUrlSecrets(config.DATABASE_URL),
  ].filter((v): v is string => typeof v === 'string' && v.length > 0);
}
