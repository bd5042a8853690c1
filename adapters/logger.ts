/**
 * Structured JSON logs (pino). Credentials are redacted by path, and as a last line of defence every known
 * secret value is masked wherever it appears in a line, so a token pasted into an error message is not leaked.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

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

export interface LoggerOptions {
  level: string;
  /** Values to mask anywhere in a log line. */
  secrets?: string[];
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const secrets = (options.secrets ?? []).filter((s) => s.length >= 8);
  const target = options.destination ?? pino.destination({ dest: 1, sync: false });
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
