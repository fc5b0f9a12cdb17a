/**
 * A relay with its admin page, as the daemon will run it, for the admin tests: the sandbox identity simulator
 * (device code with an approve step), the real daemon (token services, spool, delivery worker, SMTP listener on
 * 127.0.0.1), a RelayMetrics following them, and the admin server on 127.0.0.1:0. The upstream is the sandbox
 * XOAUTH2 mailbox (SMTP, IMAP, POP3) on ports reserved up front, so a test can start the relay with the upstream
 * down and bring it up later (deferred messages, then Retry). The Test button runs src/checks against it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { startAdminServer, RelayMetrics, type AdminServer, type AdminServerOptions } from '../../../src/admin/index.js';
import { testAccount as runAccountChecks } from '../../../src/checks/account-check.js';
import { doctorAccount as runDoctorOn } from '../../../src/checks/doctor/doctor.js';
import { Daemon } from '../../../src/daemon.js';
import { startSandboxMailbox, type SandboxMailbox } from '../../../src/sandbox/mailbox/mailbox.js';
import { createPki, type Pki } from '../../../src/sandbox/pki.js';
import { SANDBOX_MAILBOX, SANDBOX_TENANT_ID } from '../../../src/sandbox/sandbox-config.js';
import { freePorts } from '../../support/peers/free-port.js';
import { startSandboxEnv, type SandboxEnv } from '../../support/sandbox-env.js';

export const KEY_ENV = { XOAUTH2_RELAY_KEY: 'c4'.repeat(32) };

export interface AdminWorld {
  env: SandboxEnv;
  daemon: Daemon;
  metrics: RelayMetrics;
  admin: AdminServer;
  /** The readiness flag handed to the admin server as `ready`. */
  listenersBound: { value: boolean };
  /** The sandbox mailbox, once started. */
  mailbox: SandboxMailbox | null;
  /** The mailbox's SMTP, IMAP and POP3 ports, reserved before the relay starts (its config names them). */
  upstreamPorts: { smtp: number; imap: number; pop3: number };
  startMailbox(): Promise<SandboxMailbox>;
  /** A device (admitted by address) sends one message through the relay's SMTP listener. */
  sendScan(subject: string): Promise<string>;
  close(): Promise<void>;
}

export interface AdminWorldOptions {
  /** Start the upstream mailbox at once (default) or leave it down. */
  mailboxUp?: boolean;
  /** Extra admin server options (testAccount is filled in unless set to null). */
  admin?: Partial<Omit<AdminServerOptions, 'testAccount'>> & { testAccount?: AdminServerOptions['testAccount'] | null };
  /** admin.passwordHash for the config. */
  adminPasswordHash?: string;
  /** Serve the admin page over HTTPS (admin.tls) with a certificate for 127.0.0.1 from the world's CA. */
  adminTls?: boolean;
}

export async function startAdminWorld(opts: AdminWorldOptions = {}): Promise<AdminWorld> {
  const scratch = await mkdtemp(join(tmpdir(), 'xoauth2-relay-admin-'));
  const pki = await createPki('xoauth2-relay admin test CA');
  const caFile = join(scratch, 'ca.pem');
  await writeFile(caFile, pki.caCertPem);
  const adminTls = opts.adminTls ? await writeAdminCertificate(pki, scratch) : {};
  const [smtp, imap, pop3] = (await freePorts(3)) as [number, number, number];
  const upstreamPorts = { smtp, imap, pop3 };
  const env = await startSandboxEnv({
    sim: { pki, pollIntervalSec: 0.2, accessTokenLifetimeSec: 3600 },
    config: {
      devices: [{ name: 'desk-scanner', account: 'scanner', allowFrom: ['127.0.0.1/32'] }],
      smtp: {
        listen: [{ host: '127.0.0.1', port: 0, tls: 'none' }],
        upstream: { host: '127.0.0.1', port: smtp },
        // A deferred message waits an hour: only the admin page's Retry brings it back within a test.
        delivery: { retryInitialSeconds: 3600, retryMaxSeconds: 3600 },
      },
      imap: { upstream: { host: '127.0.0.1', port: imap } },
      pop3: { upstream: { host: '127.0.0.1', port: pop3 } },
      upstreamTls: { extraCaFile: caFile },
      admin: { listen: '127.0.0.1:0', ...(opts.adminPasswordHash ? { passwordHash: opts.adminPasswordHash } : {}), ...adminTls },
    },
  });
  // A world that fails half-way (a reserved upstream port taken meanwhile by another test file, under load) must not
  // leave its servers listening: the test file would never exit, and the whole run would wait on it.
  const daemon = await Daemon.start({ config: env.config, logger: env.logger, env: { ...process.env, ...KEY_ENV }, deliveryRescanMs: 200 }).catch(async (err: unknown) => {
    await env.close().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
    throw err;
  });
  const metrics = new RelayMetrics();
  const unobserve = metrics.observe({ tokens: daemon.tokens, spool: daemon.spool, delivery: daemon.delivery });
  const listenersBound = { value: true };

  const world: AdminWorld = {
    env,
    daemon,
    metrics,
    admin: undefined as unknown as AdminServer,
    listenersBound,
    mailbox: null,
    upstreamPorts,
    async startMailbox() {
      world.mailbox = await startMailbox(env, pki, upstreamPorts, join(scratch, 'maildir'));
      return world.mailbox;
    },
    async sendScan(subject) {
      const device = nodemailer.createTransport({ host: '127.0.0.1', port: daemon.ports.smtp[0]!, secure: false, ignoreTLS: true });
      try {
        const info = await device.sendMail({ from: 'scan@printer.local', to: SANDBOX_MAILBOX, subject, text: `${subject}\r\n` });
        return info.response;
      } finally {
        device.close();
      }
    },
    async close() {
      unobserve();
      await world.admin?.close();
      await daemon.stop(2000);
      await world.mailbox?.close();
      await env.close();
      await rm(scratch, { recursive: true, force: true });
    },
  };
  try {
    await finishStarting(world, opts, env, daemon, metrics, listenersBound, pki);
  } catch (err) {
    await world.close().catch(() => undefined);
    throw err;
  }
  return world;
}

async function finishStarting(world: AdminWorld, opts: AdminWorldOptions, env: SandboxEnv, daemon: Daemon, metrics: RelayMetrics, listenersBound: { value: boolean }, pki: Pki): Promise<void> {
  if (opts.mailboxUp !== false) await world.startMailbox();
  const { testAccount, ...adminOptions } = opts.admin ?? {};
  world.admin = await startAdminServer({
    config: env.config,
    tokens: daemon.tokens,
    spool: daemon.spool,
    delivery: daemon.delivery,
    logger: env.logger,
    metrics,
    ready: () => listenersBound.value,
    // The Test button runs the `test` command's real checks against the sandbox mailbox (loopback only).
    ...(testAccount === null ? {} : { testAccount: testAccount ?? ((account) => runAccountChecks(account, { config: env.config, tokens: daemon.tokens, extraCaPem: pki.caCertPem, logger: env.logger })) }),
    // The Doctor button runs the `doctor` command's real checks against the same sandbox mailbox.
    doctorAccount: (account) => runDoctorOn(account, { config: env.config, tokens: daemon.tokens, account: (name) => daemon.tokens.get(name), extraCaPem: pki.caCertPem, logger: env.logger }),
    ...adminOptions,
  });
}

async function writeAdminCertificate(pki: Pki, dir: string): Promise<{ tls: { enabled: true; certFile: string; keyFile: string } }> {
  const issued = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
  const certFile = join(dir, 'admin-cert.pem');
  const keyFile = join(dir, 'admin-key.pem');
  await writeFile(certFile, issued.certPem);
  await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
  return { tls: { enabled: true, certFile, keyFile } };
}

function startMailbox(env: SandboxEnv, pki: Pki, ports: AdminWorld['upstreamPorts'], maildir: string): Promise<SandboxMailbox> {
  return pki.issueServerCertificate(['127.0.0.1', 'localhost']).then((tls) =>
    startSandboxMailbox({
      smtpPort: ports.smtp,
      imapPort: ports.imap,
      pop3Port: ports.pop3,
      tls,
      maildir,
      tokens: {
        publicKeyPem: env.sim.signingKey.publicKeyPem,
        kid: env.sim.signingKey.kid,
        issuers: [env.sim.issuer(SANDBOX_TENANT_ID)],
        audiences: ['https://outlook.office.com', 'https://outlook.office365.com'],
      },
      logger: env.logger,
    }),
  );
}
