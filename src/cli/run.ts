/**
 * `xoauth2-relay run`: the daemon. JSON log lines on standard output (journald, docker logs). SIGTERM/SIGINT
 * drain and stop (a second signal stops at once); SIGHUP re-reads the config and applies it as a whole or refuses
 * it as a whole (see Daemon.reload); a config with errors is refused and the running one stays. A fault no handler
 * caught is logged and counted, and the daemon keeps serving (faults.ts).
 */
import { Daemon } from '../daemon.js';
import { checkConfigFile, loadConfig } from '../config/load.js';
import { formatProblem } from '../config/problems.js';
import { installFaultPolicy } from '../faults.js';
import { createLogger, errorFields, type Logger } from '../log.js';
import { exitCodes } from './exit-codes.js';
import type { GlobalOptions } from './context.js';

async function reloadFrom(path: string, daemon: Daemon, logger: Logger): Promise<void> {
  const checked = checkConfigFile(path);
  if (!checked.ok) {
    logger.error({ config: path, problems: checked.problems.map(formatProblem), code: 'CONFIG_INVALID' }, 'reload refused: the configuration has errors (the running one stays); run xoauth2-relay check-config');
    return;
  }
  await daemon.reload(checked.loaded.config);
}

export async function runCommand(opts: GlobalOptions): Promise<number> {
  const { config, path } = loadConfig(opts.config);
  const logger = createLogger({ level: opts.verbose ? 'debug' : config.log.level });
  const faults = installFaultPolicy(logger, (code) => process.exit(code));
  logger.info({ config: path, pid: process.pid }, 'starting');
  const daemon = await Daemon.start({ config, logger });
  faults.serving();

  // One reload at a time: a second SIGHUP during a reload runs after it, against the file as it is then.
  let reloading: Promise<void> = Promise.resolve();
  const onHangup = () => {
    reloading = reloading
      .then(() => reloadFrom(path, daemon, logger))
      .catch((err: unknown) => logger.error(errorFields(err), 'reload failed as a whole (the running configuration stays)'));
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
  await reloading;
  await daemon.stop();
  logger.flush();
  return exitCodes.ok;
}
