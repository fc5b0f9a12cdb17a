/**
 * Logging: one pino root, children per component and per connection. Secrets are masked where they are
 * produced (transcripts mark sensitive arguments); redaction here is the second line of defence, for keys
 * that hold secrets wherever they appear in a log object.
 */
import { createHash } from 'node:crypto';
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** Object keys that never reach a log line with their value, at any depth we log. */
const secretKeys = [
  'password', 'pass', 'passwordHash', 'secret', 'clientSecret', 'client_secret', 'client_assertion',
  'accessToken', 'access_token', 'refreshToken', 'refresh_token', 'id_token', 'idToken', 'token',
  'authorization', 'Authorization', 'xoauth2', 'key', 'privateKey', 'device_code', 'deviceCode', 'code_verifier', 'authCode',
];

const redactPaths = secretKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k.toLowerCase()}`]);

export interface LogOptions {
  level: LevelWithSilent;
  /** Where lines go; standard output by default (systemd-journald and docker collect it). */
  destination?: DestinationStream;
}

export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'xoauth2-relay' },
      redact: { paths: redactPaths, censor: '[secret]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A short, stable, non-reversible name for a token, so log lines can tell tokens apart without holding one. */
export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 10);
}

/** Error fields fit for a log line: message and code, never the raw error object (whose cause may hold a request body). */
export function errorFields(err: unknown): { err: { message: string; code?: string; name?: string } } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown; errorCode?: unknown }).code ?? (err as { errorCode?: unknown }).errorCode;
    return { err: { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) } };
  }
  return { err: { message: String(err) } };
}
