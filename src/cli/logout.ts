/** `xoauth2-relay logout <account>`: deletes the account's token; its state goes back to *not acquired*. */
import { TokenServices } from '../auth/token-services.js';
import { commandContext, type GlobalOptions } from './context.js';
import { exitCodes } from './exit-codes.js';

export async function logoutCommand(account: string, opts: GlobalOptions): Promise<number> {
  const { loaded, logger } = commandContext(opts);
  const services = await TokenServices.create(loaded.config, logger);
  try {
    const service = services.get(account);
    await service.start();
    await service.logout();
    process.stdout.write(`${account}: token deleted, state not-acquired\n`);
    return exitCodes.ok;
  } finally {
    await services.stop();
  }
}
