/**
 * Real upstream peers for end-to-end tests: Dovecot (IMAPS, POP3S) and Postfix (submission) on 127.0.0.1,
 * accepting only XOAUTH2/OAUTHBEARER with JWTs validated against a given RS256 key, and delivering submitted mail
 * into maildirs that Dovecot serves (SMTP in, IMAP/POP3 out: one loop). Needs root (CI runs as root) and the
 * Debian packages that scripts/setup-debian.sh installs.
 * Set KEEP_PEERS_DIR=1 to keep the temp dir (config, logs, maildirs) after stop() for debugging.
 */
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPki } from '../../../src/sandbox/pki.js';
import { Dovecot, authSocketPath } from './dovecot.js';
import { freePorts } from './free-port.js';
import { Postfix } from './postfix.js';
import { waitForPorts } from './processes.js';
import type { MailPeers, MailPeersOptions } from './types.js';

export type { MailPeers, MailPeersOptions, TokenValidation } from './types.js';

const requiredFiles = [
  '/usr/sbin/dovecot',
  '/usr/bin/doveadm',
  '/usr/lib/dovecot/imap-login',
  '/usr/lib/dovecot/pop3-login',
  '/usr/lib/dovecot/auth',
  '/usr/sbin/postfix',
  '/usr/sbin/postconf',
  '/usr/lib/postfix/sbin/master',
  '/usr/lib/postfix/sbin/virtual',
];
/** Accounts the Debian packages create: Dovecot's login and internal users, Postfix's mail_owner and setgid group. */
const requiredUsers = ['dovecot', 'dovenull', 'postfix', 'nobody'];
const requiredGroups = ['postdrop', 'nogroup'];

function namesIn(file: string): Map<string, number> {
  const names = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id) names.set(name, Number(id));
  }
  return names;
}

/**
 * Whether the peers can run here: Linux, root, Dovecot and Postfix installed (`scripts/setup-debian.sh`).
 * Tests skip with `reason` on a developer machine, and must fail when `CI=true`.
 */
export function mailPeersAvailable(): { ok: boolean; reason?: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `mail peers need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'mail peers need root (Dovecot and Postfix switch users)' };
  const missing = requiredFiles.filter((file) => {
    try {
      accessSync(file, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  try {
    const users = namesIn('/etc/passwd');
    const groups = namesIn('/etc/group');
    missing.push(...requiredUsers.filter((u) => !users.has(u)).map((u) => `user ${u}`));
    missing.push(...requiredGroups.filter((g) => !groups.has(g)).map((g) => `group ${g}`));
  } catch (error) {
    return { ok: false, reason: `cannot read the account database: ${String(error)}` };
  }
  if (missing.length > 0) {
    return { ok: false, reason: `missing ${missing.join(', ')}: run scripts/setup-debian.sh as root` };
  }
  return { ok: true };
}

function checkMailbox(mailbox: string): { local: string; domain: string } {
  const match = /^([a-z0-9._-]+)@([a-z0-9-]+(?:\.[a-z0-9-]+)+)$/.exec(mailbox);
  if (!match) throw new Error(`mailbox ${JSON.stringify(mailbox)}: use lower-case local@domain.tld`);
  return { local: match[1]!, domain: match[2]! };
}

/** A temp dir short enough for unix socket paths (108 bytes) and world-traversable (daemons drop privileges). */
async function makeRunDir(): Promise<string> {
  const base = tmpdir().length <= 40 && !/\s/.test(tmpdir()) ? tmpdir() : '/tmp';
  const dir = await mkdtemp(join(base, 'xoauth2-peers-'));
  await chmod(dir, 0o755);
  return dir;
}

/** Starts Dovecot and Postfix with fresh config, certificate, ports and maildirs; resolves when the ports accept. */
export async function startMailPeers(opts: MailPeersOptions): Promise<MailPeers> {
  const available = mailPeersAvailable();
  if (!available.ok) throw new Error(available.reason);
  if (opts.validation.audiences.length === 0 || opts.validation.issuers.length === 0) {
    throw new Error('validation needs at least one issuer and one audience');
  }
  opts.mailboxes.forEach(checkMailbox);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (error) {
      // Free ports are found by binding port 0 and releasing it: another process may grab one in between.
      if (attempt >= 3 || !/in use/i.test(String(error))) throw error;
    }
  }
}

async function startOnce(opts: MailPeersOptions): Promise<MailPeers> {
  const dir = await makeRunDir();
  let dovecot: Dovecot | undefined;
  let postfix: Postfix | undefined;
  // If the test process ends without stop() (a crash, a forgotten after-hook), the daemons must not outlive it.
  const onExit = (): void => {
    dovecot?.terminateNow();
    postfix?.terminateNow();
    if (!process.env.KEEP_PEERS_DIR) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const cleanUp = async (): Promise<void> => {
    const results = await Promise.allSettled([dovecot?.stop(), postfix?.stop()]);
    process.removeListener('exit', onExit);
    if (!process.env.KEEP_PEERS_DIR) await rm(dir, { recursive: true, force: true });
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  };
  try {
    const users = namesIn('/etc/passwd');
    const groups = namesIn('/etc/group');
    // Maildirs belong to `nobody`: Dovecot refuses uid 0 for mail access and virtual(8) refuses it too.
    const mailUid = users.get('nobody')!;
    const mailGid = groups.get('nogroup')!;
    const mailRoot = join(dir, 'mail');
    const logDir = join(dir, 'log');
    const dovecotDir = join(dir, 'dovecot');
    await mkdir(logDir, { mode: 0o755 });
    await mkdir(dovecotDir, { mode: 0o755 });
    const tls = await writeTlsFiles(join(dir, 'tls'));
    for (const mailbox of opts.mailboxes) await makeMaildir(mailRoot, mailbox, mailUid, mailGid);
    const [imapsPort, pop3sPort, submissionPort] = (await freePorts(3)) as [number, number, number];
    const logs = { dovecot: join(logDir, 'dovecot.log'), postfix: join(logDir, 'postfix.log') };
    const common = { mailRoot, certFile: tls.certFile, keyFile: tls.keyFile, mailUid, mailGid };

    const pf = await Postfix.configure(
      { ...common, dir: join(dir, 'postfix'), logFile: logs.postfix, submissionPort, saslPath: authSocketPath(dovecotDir), mailboxes: opts.mailboxes },
      logDir,
    );
    postfix = pf;
    // Both start in parallel (smtpd only talks to Dovecot's auth socket when a client authenticates).
    const started = await Promise.allSettled([
      Dovecot.start({ ...common, dir: dovecotDir, logFile: logs.dovecot, imapsPort, pop3sPort, validation: opts.validation, authSocketUser: 'postfix' }).then(
        (instance) => (dovecot = instance),
      ),
      pf.start(),
    ]);
    for (const result of started) if (result.status === 'rejected') throw result.reason;
    await waitForPorts([imapsPort, pop3sPort, submissionPort]);

    let stopped = false;
    return {
      dir,
      imapsPort,
      pop3sPort,
      submissionPort,
      caCertPem: tls.caCertPem,
      maildir: (mailbox) => maildirOf(mailRoot, mailbox),
      waitForMessages: (mailbox, count, timeoutMs) =>
        waitForMessages(maildirOf(mailRoot, mailbox), count, timeoutMs ?? 15_000, logs.postfix),
      dovecotLog: () => readFile(logs.dovecot, 'utf8').catch(() => ''),
      postfixLog: () => readFile(logs.postfix, 'utf8').catch(() => ''),
      stopPostfix: () => pf.stop(),
      async startPostfix() {
        await pf.start();
        await waitForPorts([submissionPort]);
      },
      processIds: () => [...(dovecot?.pids() ?? []), ...pf.pids()],
      async stop() {
        if (stopped) return;
        stopped = true;
        await cleanUp();
      },
    };
  } catch (error) {
    await cleanUp().catch(() => undefined);
    throw error;
  }
}

async function writeTlsFiles(tlsDir: string): Promise<{ caCertPem: string; certFile: string; keyFile: string }> {
  const pki = await createPki('xoauth2-relay test peers CA');
  const issued = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
  await mkdir(tlsDir, { mode: 0o755 });
  const certFile = join(tlsDir, 'cert.pem');
  const keyFile = join(tlsDir, 'key.pem');
  await writeFile(certFile, issued.certPem, { mode: 0o644 });
  await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
  return { caCertPem: pki.caCertPem, certFile, keyFile };
}

function maildirOf(mailRoot: string, mailbox: string): string {
  const { local, domain } = checkMailbox(mailbox.toLowerCase());
  return join(mailRoot, domain, local, 'Maildir');
}

/** Home `<mailRoot>/<domain>/<local>` and its Maildir, owned by the mail user (Dovecot writes its index there). */
async function makeMaildir(mailRoot: string, mailbox: string, uid: number, gid: number): Promise<void> {
  const { local, domain } = checkMailbox(mailbox);
  await mkdir(join(mailRoot, domain), { recursive: true, mode: 0o755 });
  const home = join(mailRoot, domain, local);
  for (const path of [home, join(home, 'Maildir'), ...['new', 'cur', 'tmp'].map((d) => join(home, 'Maildir', d))]) {
    await mkdir(path, { mode: 0o700 });
    await chown(path, uid, gid);
  }
}

async function listMessages(maildir: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of ['new', 'cur']) {
    const names = await readdir(join(maildir, sub)).catch(() => []);
    files.push(...names.filter((name) => !name.startsWith('.')).map((name) => join(maildir, sub, name)));
  }
  // Maildir names start with the delivery time, so this is (roughly) arrival order.
  return files.sort((a, b) => a.slice(a.lastIndexOf('/')).localeCompare(b.slice(b.lastIndexOf('/'))));
}

async function waitForMessages(maildir: string, count: number, timeoutMs: number, postfixLog: string): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = await listMessages(maildir);
    if (files.length >= count) return files;
    if (Date.now() > deadline) {
      const log = (await readFile(postfixLog, 'utf8').catch(() => '')).trim().split('\n').slice(-10).join('\n');
      throw new Error(`${maildir} holds ${files.length} of ${count} messages after ${timeoutMs} ms; postfix log ends with:\n${log}`);
    }
    await sleep(50);
  }
}
