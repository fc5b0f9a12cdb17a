/**
 * `xoauth2-relay demo`: the relay on its embedded default. Starts the sandbox (identity simulator and an
 * XOAUTH2-only mailbox), runs the real relay against it, walks through the device-code sign-in, relays a
 * test scan, and then waits for the newcomer's own scans. No Microsoft tenant involved.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';
import { SANDBOX_MAILBOX } from '../sandbox/sandbox-config.js';
import { startSandboxWorld } from '../sandbox/sandbox-world.js';
import { fetchNewestSubjectOverPop3 } from './demo-fetch.js';
import { exitCodes } from './exit-codes.js';
import { DEMO_MARKER, demoMarkerText, portsProblem, stateDirProblem } from './demo-guards.js';
import { cliCommand } from './invocation.js';

export interface DemoOptions {
  stateDir: string;
  smtpPort: string;
  pop3Port: string;
  imapPort: string;
  adminPort: string;
  autoApprove?: boolean;
}

function portOption(name: string, value: string): number | null {
  const port = Number(value);
  if (Number.isInteger(port) && port >= 0 && port <= 65535) return port;
  process.stderr.write(`xoauth2-relay: --${name} ${JSON.stringify(value)} is not a TCP port\n`);
  return null;
}

const say = (text = '') => process.stdout.write(`${text}\n`);

function refuse(problem: string, code: number): number {
  process.stderr.write(`xoauth2-relay demo: ${problem.replaceAll('\n', '\nxoauth2-relay demo: ')}\n`);
  return code;
}
const DEVICE_PASSWORD = 'demo';

/** The From and Reply-To of a stored message (the header block only). */
async function senderHeaders(file: string): Promise<{ from: string; replyTo: string }> {
  const text = await readFile(file, 'latin1');
  const head = text.slice(0, Math.max(0, text.search(/\r?\n\r?\n/))).replace(/\r?\n[ \t]+/g, ' ');
  const field = (name: string) => new RegExp(`^${name}:[ \t]*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '(none)';
  return { from: field('From'), replyTo: field('Reply-To') };
}

export async function demoCommand(opts: DemoOptions): Promise<number> {
  const smtpPort = portOption('smtp-port', opts.smtpPort);
  const pop3Port = portOption('pop3-port', opts.pop3Port);
  const imapPort = portOption('imap-port', opts.imapPort);
  const adminPort = portOption('admin-port', opts.adminPort);
  if (smtpPort === null || pop3Port === null || imapPort === null || adminPort === null) return exitCodes.usage;
  const dir = resolve(opts.stateDir);
  // Before anything is written: a refused start leaves the directory, the log and a running demo as they were.
  const dirProblem = await stateDirProblem(dir);
  if (dirProblem) return refuse(dirProblem, exitCodes.usage);
  const ports = [
    { option: 'smtp-port', port: smtpPort },
    { option: 'pop3-port', port: pop3Port },
    { option: 'imap-port', port: imapPort },
    { option: 'admin-port', port: adminPort },
  ];
  const portProblem = await portsProblem(ports);
  if (portProblem) return refuse(portProblem, exitCodes.unavailable);

  const logFile = resolve(dir, '..', `${dir.split('/').pop()}.log`);
  const logger = createLogger({ level: 'info', destination: pino.destination({ dest: logFile, sync: false, mkdir: true }) });
  say('xoauth2-relay demo: a sandbox identity platform and mailbox on this machine, the real relay in between.');
  const marker = { name: DEMO_MARKER, text: demoMarkerText() };
  const world = await startSandboxWorld({ dir, smtpPort, pop3Port, imapPort, adminPort, devicePassword: DEVICE_PASSWORD, logger, marker });
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ config: world.loaded.config, logger, deliveryRescanMs: 1000 });
  } catch (err) {
    // A port taken between the check and now: stop the sandbox too, or its servers keep the process alive.
    await world.close();
    logger.flush();
    throw err;
  }
  const port = daemon.ports.smtp[0]!;
  const pop3 = daemon.ports.pop3[0]!;
  const imap = daemon.ports.imap[0]!;
  say(`  relay for devices:      SMTP 127.0.0.1:${port}, POP3 127.0.0.1:${pop3}, IMAP 127.0.0.1:${imap}   (log: ${logFile})`);
  say(`  sandbox mailbox:        ${SANDBOX_MAILBOX} (XOAUTH2 only, like Exchange Online)`);
  say(`  admin page:             ${daemon.admin.url}  (token state, Get token / Delete token / Test, the spool)`);
  say();

  const stop = async (code: number) => {
    await daemon.stop(5000);
    await world.close();
    logger.flush();
    return code;
  };

  const service = daemon.tokens.get('scanner');
  const prompt = await service.startDeviceCode();
  const link = `${prompt.verificationUri}?user_code=${encodeURIComponent(prompt.userCode)}`;
  say('Step 1: sign in the mailbox (what an admin does once per mailbox in Microsoft\'s device-login page).');
  say(`  code ${prompt.userCode} at ${prompt.verificationUri}`);
  say(`  open ${link} , keep mailbox ${SANDBOX_MAILBOX}, press Approve`);
  const interactive = process.stdin.isTTY && !opts.autoApprove;
  let rl: ReturnType<typeof createInterface> | null = null;
  if (interactive) {
    say('  (or press Enter here to approve it for you)');
    rl = createInterface({ input: process.stdin, output: process.stdout, terminal: false });
    rl.once('line', () => approve());
  } else {
    say('  (approving it for you: --auto-approve or no terminal)');
    setTimeout(() => approve(), 500);
  }
  function approve() {
    try {
      world.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
    } catch {
      // already approved (or declined) on the page
    }
  }
  await prompt.done;
  rl?.close();
  if (service.state.state !== 'acquired') {
    say(`  sign-in ended without a token: ${service.lastSignInFailure ?? service.state.state}`);
    return stop(exitCodes.failed);
  }
  say(`  ✔ token acquired for ${SANDBOX_MAILBOX} (state: acquired)`);
  say();

  say('Step 2: a device sends a scan with plain SMTP; the relay spools it and delivers it with XOAUTH2.');
  const before = (await world.mailbox.messages(SANDBOX_MAILBOX)).length;
  const device = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  // Its From is fixed and foreign, as on most scanners: Exchange would refuse it (554 5.2.0 SendAsDenied) unless the
  // relay's default sender policy puts the mailbox in From and keeps the original in Reply-To.
  const deviceFrom = '"Floor 2 Scanner" <noreply@printer.local>';
  await device.sendMail({
    from: deviceFrom,
    to: SANDBOX_MAILBOX,
    subject: 'Scan from demo-scanner',
    text: 'Your scan is attached.',
    attachments: [{ filename: 'scan.pdf', content: Buffer.from('%PDF-1.4\n% demo scan\n%%EOF\n'), contentType: 'application/pdf' }],
  });
  device.close();
  const arrived = await waitForMessages(world, before + 1, 30_000);
  if (!arrived) {
    say(`  ✘ the test scan did not arrive within 30 s: see ${logFile}`);
    return stop(exitCodes.failed);
  }
  const arrivedFile = join(dir, 'mailbox', SANDBOX_MAILBOX, 'new', arrived.file);
  say(`  ✔ scan relayed: it is in the sandbox mailbox: ${arrivedFile}`);
  const headers = await senderHeaders(arrivedFile);
  say(`    the device said  From: ${deviceFrom}`);
  say(`    it arrived with  From: ${headers.from}   Reply-To: ${headers.replyTo}`);
  say('    (senderPolicy auto: the mailbox sends, replies still reach the original sender)');
  say();
  say('Step 3: an email-to-print device fetches it with plain POP3 (USER/PASS); the relay logs in upstream with XOAUTH2.');
  try {
    const subject = await fetchNewestSubjectOverPop3(pop3, 'mfp', DEVICE_PASSWORD);
    say(`  ✔ fetched through the relay: ${subject}`);
  } catch (err) {
    say(`  ✘ the POP3 fetch failed: ${err instanceof Error ? err.message : String(err)} (see ${logFile})`);
    return stop(exitCodes.failed);
  }
  say();
  say('Step 4: your turn. Send a scan as an old device would (no password, admitted by address):');
  say(`  printf 'Subject: My scan\\r\\n\\r\\nHello from the scanner\\r\\n' | curl -sS smtp://127.0.0.1:${port} --mail-from scan@printer.local --mail-rcpt ${SANDBOX_MAILBOX} -T -`);
  say(`  or with a password (AUTH LOGIN/PLAIN, user mfp, password ${DEVICE_PASSWORD}): add  --user mfp:${DEVICE_PASSWORD}`);
  say(`  Read it back as a device would:  curl -sS pop3://127.0.0.1:${pop3}/1 --user mfp:${DEVICE_PASSWORD}`);
  say(`                               or  curl -sS 'imap://127.0.0.1:${imap}/INBOX;UID=1' --user mfp:${DEVICE_PASSWORD}`);
  say(`  Arrivals show here. Queue: XOAUTH2_RELAY_CONFIG=${world.configFile} ${cliCommand()} queue list`);
  say('  Press Ctrl-C to stop.');

  let seen = before + 1;
  const watcher = setInterval(() => {
    world.mailbox
      .messages(SANDBOX_MAILBOX)
      .then((list) => {
        for (const m of list.slice(seen)) say(`  ✔ arrived in ${SANDBOX_MAILBOX}: ${m.file} (${m.size} bytes)`);
        seen = Math.max(seen, list.length);
      })
      .catch(() => undefined); // a mailbox read that fails now is tried again in half a second
  }, 500);
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  clearInterval(watcher);
  say('stopping');
  return stop(exitCodes.ok);
}

async function waitForMessages(world: { mailbox: { messages(m: string): Promise<Array<{ file: string }>> } }, count: number, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const list = await world.mailbox.messages(SANDBOX_MAILBOX);
    if (list.length >= count) return list[count - 1]!;
    await new Promise((r) => setTimeout(r, 200));
  }
  return null;
}
