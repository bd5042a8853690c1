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
const LOG_BUFFER_BYTES = 4096;
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
  // Lines are gathered up to 4 KiB and written at least every 100 ms (and on exit, by pino): one write per request
  // line was a tenth of a read request's CPU (bench/reads.ts profile, issue 16).
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
  return pino(
    {
      level: options.level,
      base: { service: 'tally' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}
