/**
 * The `xoauth2-relay` command line. Each command lives in its own file; this one only wires names, options,
 * help and exit codes.
 */
import { Command, CommanderError } from 'commander';
import { checkConfigCommand } from './check-config.js';
import { demoCommand, type DemoOptions } from './demo.js';
import { doctorCommand, type DoctorCommandOptions } from './doctor.js';
import { reportFailure, type GlobalOptions } from './context.js';
import { exitCodeHelp, exitCodes } from './exit-codes.js';
import { hashPasswordCommand } from './hash-password.js';
import { loginCommand } from './login.js';
import { logoutCommand } from './logout.js';
import { queueCommand, type QueueAction, type QueueOptions } from './queue.js';
import { runCommand } from './run.js';
import { sandboxCommand } from './sandbox.js';
import { statusCommand } from './status.js';
import { testAccountCommand, type TestOptions } from './test-account.js';
import { packageVersion } from './version.js';

const isQueueAction = (a: string): a is QueueAction => a === 'list' || a === 'retry' || a === 'drop';

type Action = (...args: never[]) => Promise<number> | number;

/** Runs a command and leaves with its exit code; errors become a sentence and a code, never a stack trace. */
function run<A extends Action>(action: A) {
  return async (...args: Parameters<A>) => {
    let code: number;
    try {
      code = await action(...args);
    } catch (err) {
      code = reportFailure(err);
    }
    process.exitCode = code;
  };
}

export function buildProgram(): Command {
  const program = new Command('xoauth2-relay')
    .description('Lets password-only printers and scanners use Exchange Online: plain SMTP/POP3/IMAP in, OAuth 2.0 (XOAUTH2) out.')
    .option('-c, --config <file>', 'configuration file (default: $XOAUTH2_RELAY_CONFIG, else /etc/xoauth2-relay/config.yaml)')
    .option('-v, --verbose', 'log JSON lines to standard error (debug level)')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .addHelpText('after', exitCodeHelp)
    .showHelpAfterError()
    .exitOverride();

  const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();

  program
    .command('demo')
    .description('try the relay with no Microsoft tenant: sandbox identity platform and mailbox, a sign-in, a relayed test scan')
    .option('--state-dir <dir>', 'where the demo keeps its config, tokens and mailbox (wiped at start; a non-empty directory the demo did not make is refused)', '.xoauth2-relay-demo')
    .option('--smtp-port <port>', 'device-facing SMTP port of the relay (0: any free port)', '2525')
    .option('--pop3-port <port>', 'device-facing POP3 port of the relay (0: any free port)', '1110')
    .option('--imap-port <port>', 'device-facing IMAP port of the relay (0: any free port)', '1143')
    .option('--admin-port <port>', 'port of the admin page on 127.0.0.1 (0: any free port)', '8025')
    .option('--auto-approve', 'approve the sign-in without asking (for scripts)')
    .action(run((opts: DemoOptions) => demoCommand(opts)));

  program
    .command('run')
    .description('run the relay: device listeners, token refresh, spool delivery (SIGTERM drains and stops)')
    .action(run((_opts: unknown, cmd: Command) => runCommand(globals(cmd))));

  program
    .command('queue')
    .description('show and manage the SMTP spool: list, retry, drop')
    .argument('<action>', 'list | retry | drop')
    .argument('[id]', 'message id (retry and drop); `retry --all` retries every waiting message')
    .option('--json', 'list: print JSON')
    .option('--dead', 'list: show the dead-letter folder instead of the queue')
    .option('--all', 'list: every message, not only the oldest page; retry: every queued, deferred and held message')
    .option('--limit <n>', 'list: how many of the oldest messages to show (default 100)')
    .action(
      run((action: string, id: string | undefined, _opts: unknown, cmd: Command) => {
        if (!isQueueAction(action)) {
          process.stderr.write(`xoauth2-relay: queue ${JSON.stringify(action)}: use list, retry or drop\n`);
          return exitCodes.usage;
        }
        return queueCommand(action, id, globals(cmd) as QueueOptions);
      }),
    );

  program
    .command('check-config')
    .description('check the configuration and list every problem at once, each with its key, value and fix')
    .action(run((_opts: unknown, cmd: Command) => checkConfigCommand(globals(cmd))));

  program
    .command('login')
    .description('get the token of an account: shows a device code and link (or a browser link), waits for the sign-in')
    .argument('<account>', 'account name from the configuration')
    .option('--browser', 'sign in through a browser on this machine (PKCE, loopback redirect) instead of a device code')
    .action(run((account: string, _opts: unknown, cmd: Command) => loginCommand(account, globals(cmd) as GlobalOptions & { browser?: boolean })));

  program
    .command('logout')
    .description('delete the token of an account (its state becomes not-acquired)')
    .argument('<account>', 'account name from the configuration')
    .action(run((account: string, _opts: unknown, cmd: Command) => logoutCommand(account, globals(cmd))));

  program
    .command('status')
    .description('one line per account: token state, mailbox, expiry or reason (exit 0 only when every account is acquired)')
    .option('--json', 'print JSON instead')
    .action(run((_opts: unknown, cmd: Command) => statusCommand(globals(cmd) as GlobalOptions & { json?: boolean })));

  program
    .command('test')
    .description("check an account's upstream access with its token: SMTP (EHLO, AUTH XOAUTH2), IMAP (login, INBOX), POP3 (login, STAT)")
    .argument('<account>', 'account name from the configuration')
    .option('--send-to <address>', 'also send a real test message to this address')
    .option('--only <protocols>', 'comma-separated subset of smtp,imap,pop3')
    .action(run((account: string, _opts: unknown, cmd: Command) => testAccountCommand(account, globals(cmd) as TestOptions)));

  program
    .command('doctor')
    .description('for each account, in order, what works against the tenant and what to fix: token, claims, SMTP AUTH, message size, Send As per sender, IMAP/POP3 login (exit 0 only when all pass)')
    .argument('[account]', 'only this account (default: every account)')
    .option('--json', 'print JSON instead')
    .option('--send-to <address>', 'also send one real message per checked sender, with it in From (Exchange checks From only after the data)')
    .action(run((account: string | undefined, _opts: unknown, cmd: Command) => doctorCommand(account, globals(cmd) as DoctorCommandOptions)));

  program
    .command('hash-password')
    .description('read a password (hidden at a terminal, or one line from standard input) and print its scrypt hash for the config')
    .action(run(() => hashPasswordCommand()));

  program
    .command('sandbox')
    .description('run the built-in identity platform simulator (no Microsoft tenant needed) and print a config that uses it')
    .option('--port <port>', 'HTTPS port of the simulator', '8443')
    .option('--state-dir <dir>', 'where the sandbox config, CA and tokens go', '.xoauth2-relay-sandbox')
    .action(run((opts: { port: string; stateDir: string }) => sandboxCommand(opts)));

  for (const cmd of program.commands) cmd.addHelpText('after', exitCodeHelp).exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors; anything else commander rejects is a wrong command line.
      process.exitCode = err.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
      return;
    }
    process.exitCode = reportFailure(err);
  }
}

await main(process.argv);
