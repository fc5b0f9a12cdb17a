/**
 * `xoauth2-relay run`: the daemon. JSON log lines on standard output (journald, docker logs). SIGTERM/SIGINT
 * drain and stop (a second signal stops at once); SIGHUP re-reads the config and applies what is safe
 * (see Daemon.reload); a config with errors is refused and the running one stays.
 */
import { Daemon } from '../daemon.js';
import { checkConfigFile, loadConfig } from '../config/load.js';
import { formatProblem } from '../config/problems.js';
import { createLogger, errorFields } from '../log.js';
import { exitCodes } from './exit-codes.js';
import type { GlobalOptions } from './context.js';

export async function runCommand(opts: GlobalOptions): Promise<number> {
  const { config, path } = loadConfig(opts.config);
  const logger = createLogger({ level: opts.verbose ? 'debug' : config.log.level });
  logger.info({ config: path, pid: process.pid }, 'starting');
  const daemon = await Daemon.start({ config, logger });

  const onHangup = () => {
    const checked = checkConfigFile(path);
    if (!checked.ok) {
      logger.error({ config: path, problems: checked.problems.map(formatProblem) }, 'reload refused: the configuration has errors (the running one stays); run xoauth2-relay check-config');
      return;
    }
    try {
      daemon.reload(checked.loaded.config);
    } catch (err) {
      logger.error(errorFields(err), 'reload failed (the running configuration stays)');
    }
  };
  process.on('SIGHUP', onHangup);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.off('SIGHUP', onHangup);
  logger.info({ signal }, 'signal received');
  const force = () => process.exit(exitCodes.software);
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  await daemon.stop();
  logger.flush();
  return exitCodes.ok;
}
