/**
 * `xoauth2-relay run`: the daemon. JSON log lines on standard output (journald, docker logs), SIGTERM/SIGINT
 * drain and stop, a second signal stops at once.
 */
import { Daemon } from '../daemon.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { exitCodes } from './exit-codes.js';
import type { GlobalOptions } from './context.js';

export async function runCommand(opts: GlobalOptions): Promise<number> {
  const { config, path } = loadConfig(opts.config);
  const logger = createLogger({ level: opts.verbose ? 'debug' : config.log.level });
  logger.info({ config: path, pid: process.pid }, 'starting');
  const daemon = await Daemon.start({ config, logger });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'signal received');
  const force = () => process.exit(exitCodes.software);
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  await daemon.stop();
  logger.flush();
  return exitCodes.ok;
}
