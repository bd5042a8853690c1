/**
 * Structured logs (pino): JSON lines for machines, or readable lines for people (pino-pretty, a development
 * dependency). Credentials are redacted by path, and as a last line of defence every known secret value is masked
 * wherever it appears in a line (before any pretty-printing), so a token pasted into an error message is not leaked.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type DestinationStream } from 'pino';

export type LogFormat = 'json' | 'pretty';

/** LOG_FORMAT wins; otherwise readable lines in a terminal outside production, JSON everywhere else. */
export function chooseLogFormat(options: { configured: LogFormat | undefined; nodeEnv: string; isTTY: boolean }): LogFormat {
  if (options.configured) return options.configured;
  return options.isTTY && options.nodeEnv !== 'production' ? 'pretty' : 'json';
}

/** pino-pretty's stream on stdout, or undefined where it is not installed (an image with production dependencies only). */
function prettyStream(): DestinationStream | undefined {
  try {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => DestinationStream;
    return pretty({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', singleLine: false, sync: true });
  } catch {
    return undefined;
  }
}

const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-cron-secret"]',
  'req.headers["x-square-hmacsha256-signature"]',
  'headers.authorization',
  'headers["x-cron-secret"]',
  '*.password',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  '*.token',
  '*.secret',
  '*.clientSecret',
  '*.client_secret',
];

/** Stdout log lines are written in batches of this many bytes, or after LOG_FLUSH_MS, whichever comes first. */
const LOG_BUFFER_BYTES = 65_536;
const LOG_FLUSH_MS = 100;

export interface LoggerOptions {
  level: string;
  /** Values to mask anywhere in a log line. */
  secrets?: string[];
  destination?: DestinationStream;
  /** json unless said; ignored when `destination` is given. */
  format?: LogFormat;
}

export function createLogger(options: LoggerOptions): Logger {
  const secrets = (options.secrets ?? []).filter((s) => s.length >= 8);
  const pretty = !options.destination && options.format === 'pretty' ? prettyStream() : undefined;
  if (!options.destination && options.format === 'pretty' && !pretty) {
    process.stderr.write('LOG_FORMAT=pretty, but pino-pretty is not installed (production dependencies only): logging JSON\n');
  }
  const masked = (line: string) => {
    let safe = line;
    for (const secret of secrets) if (safe.includes(secret)) safe = safe.split(secret).join('[REDACTED]');
    return safe;
  };
  const given = options.destination ?? pretty;
  const stream: DestinationStream = given
    ? secrets.length
      ? { write: (line: string) => given.write(masked(line)) }
      : given
    : stdoutInBatches(masked);
  const common = {
    base: { service: 'tally' },
    timestamp: isoTime(),
    formatters: { level: (label: string) => ({ level: label }) },
    serializers: { err: errorWithoutClient },
  };
  const log = pino({ ...common, level: options.level, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } }, stream);
  // Written to only when `log` is enabled at the level used (see `withoutRedaction`), so its own level lets all through.
  unredacted.set(log, pino({ ...common, level: 'trace' }, stream));
  return log;
}

/**
 * pino's error serializer, without the `client` node-postgres attaches to a connection's error: the whole client
 * object (connection parameters, prepared statements' text, its sockets' state), kilobytes a line and nothing an
 * operator needs beyond the error's own code and message.
 */
function errorWithoutClient(error: unknown): unknown {
  const serialized = pino.stdSerializers.err(error as Error) as Record<string, unknown>;
  if (serialized && typeof serialized === 'object' && 'client' in serialized) {
    const { client: _client, ...rest } = serialized;
    return rest;
  }
  return serialized;
}

/**
 * Stdout, written in batches of LOG_BUFFER_BYTES or every LOG_FLUSH_MS, whichever comes first (and on exit, by pino):
 * one write per request line was a tenth of a read request's CPU (bench/reads.ts profile, issue 16), and each write
 * wakes a thread of libuv's pool, which on a busy machine can take the CPU from the event loop for a while (the
 * writes of 12 KiB batches, 40–50 a second at 2,500 requests/s, were 12 µs of wall time per request in a profile of
 * bench/reads.ts; at 64 KiB the 100 ms flush writes most batches, 10 a second). Each line is handed over as bytes
 * (`contentMode: 'buffer'`): given text, sonic-boom measures the UTF-8 length of the whole batch gathered so far on
 * every line, flattening it first (1.6 µs of the 3.6 a request line cost in a profile of the direct path, and most
 * of its garbage).
 */
function stdoutInBatches(masked: (line: string) => string): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, maxWrite: 2 * LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS, contentMode: 'buffer' });
  // sonic-boom's types say text; in buffer mode it takes bytes.
  return { write: (line: string) => destination.write(Buffer.from(masked(line)) as unknown as string) };
}

/**
 * pino's `isoTime` (`,"time":"2026-12-05T11:12:00.123Z"`, what `toISOString` writes), with the part up to the
 * second made once per second: `toISOString` per line was 0.5 µs of a request line.
 */
function isoTime(): () => string {
  let second = Number.NaN;
  let prefix = '';
  return () => {
    const now = Date.now();
    const ms = ((now % 1000) + 1000) % 1000;
    if (now - ms !== second) {
      second = now - ms;
      prefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
    }
    return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  };
}

const unredacted = new WeakMap<Logger, Logger>();

/**
 * The same logger, same destination and secret masking, without the redaction of credential paths: for lines
 * whose fields cannot hold a credential, written often enough that redacting them shows in profiles (the
 * request line: request id, user id, method, path without its query, status, duration; the redaction, which
 * copies each line's objects along its 15 paths, was 1 % of a read request's CPU in bench/reads.ts). It lets
 * every level through: check the level on `log` first. A logger not made by `createLogger` (tests) is its own.
 */
export function withoutRedaction(log: Logger): Logger {
  return unredacted.get(log) ?? log;
}
