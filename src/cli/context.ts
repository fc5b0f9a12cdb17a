/**
 * What every command needs: the config (from --config / XOAUTH2_RELAY_CONFIG), a logger that writes to
 * standard error (standard output stays clean for `status --json` and for the codes a person reads),
 * and a way to turn any error into a clear message and an exit code.
 */
import { pino } from 'pino';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { RelayError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { exitCodes } from './exit-codes.js';

export interface GlobalOptions {
  config?: string;
  verbose?: boolean;
}

export interface CommandContext {
  loaded: LoadedConfig;
  logger: Logger;
}

export function commandContext(opts: GlobalOptions): CommandContext {
  const loaded = loadConfig(opts.config);
  // Commands speak to a person in sentences; JSON log lines only with --verbose (or errors).
  const level = opts.verbose ? 'trace' : 'error';
  const logger = createLogger({ level, destination: pino.destination({ fd: 2, sync: true }) });
  return { loaded, logger };
}

/** Prints a failure for a person and returns the exit code that says what kind it was. */
export function reportFailure(err: unknown): number {
  if (err instanceof RelayError) {
    process.stderr.write(`xoauth2-relay: ${err.message}\n`);
    switch (err.kind) {
      case 'config':
        return exitCodes.config;
      case 'identity':
        return err.code === 'TOKEN_REFRESH_FAILED' ? exitCodes.unavailable : exitCodes.failed;
      case 'upstream':
        return exitCodes.unavailable;
      case 'device':
        return exitCodes.failed;
      default:
        return exitCodes.software;
    }
  }
  process.stderr.write(`xoauth2-relay: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  return exitCodes.software;
}
