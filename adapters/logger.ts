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
const LOG_BUFFER_BYTES = 12_288;
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
  // Lines are gathered up to 12 KiB (sonic-boom writes at most 16 KiB at once) and written at least every 100 ms (and
  // on exit, by pino): one write per request line was a tenth of a read request's CPU (bench/reads.ts profile, issue
  // 16); with 4 KiB batches the writes were still 2 % of it at 1,000 requests/s.
  const target = options.destination ?? pretty ?? pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
  const stream: DestinationStream = secrets.length
    ? {
        write(line: string) {
          let safe = line;
          for (const secret of secrets) if (safe.includes(secret)) safe = safe.split(secret).join('[REDACTED]');
          target.write(safe);
        },
      }
    : target;
  const common = {
    base: { service: 'tally' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const log = pino({ ...common, level: options.level, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } }, stream);
  // Written to only when `log` is enabled at the level used (see `withoutRedaction`), so its own level lets all through.
  unredacted.set(log, pino({ ...common, level: 'trace' }, stream));
  return log;
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
