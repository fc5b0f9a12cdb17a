/**
 * A world for IMAP/POP3 front tests: a throw-away CA with certificates for the scripted upstream and the
 * device-facing listeners, two devices with scrypt hashes, a failure throttle, a fake token source with counters,
 * and a logger whose every line (trace level) is kept so tests can assert what was logged and that no secret was.
 */
import { DeviceDirectory } from '../../../src/auth/device-directory.js';
import { FailureThrottle } from '../../../src/auth/failure-throttle.js';
import { hashPassword } from '../../../src/auth/password-hash.js';
import type { AccessToken } from '../../../src/auth/token-service.js';
import { configSchema, type Config, type LoginBeforeTls, type TlsMode } from '../../../src/config/schema.js';
import { RelayError, type ErrorCode } from '../../../src/errors.js';
import { ImapListener } from '../../../src/imap/imap-listener.js';
import type { Logger } from '../../../src/log.js';
import { Pop3Listener } from '../../../src/pop3/pop3-listener.js';
import { createPki, type IssuedCertificate } from '../../../src/sandbox/pki.js';
import type { ProxyLimits, ProxyTimeouts } from '../../../src/transport/device-session.js';
import type { DeviceTlsMaterial } from '../../../src/transport/tls-options.js';
import type { ListenerMetrics } from '../../../src/transport/listener-metrics.js';
import { accountTokens, type AccountTokens, type TokenProvider } from '../../../src/auth/account-tokens.js';
import { memoryLogger } from '../../support/memory-logger.js';

export const MAILBOX = 'scanner@contoso.com';
/** A plain device. */
export const MFP = { username: 'mfp', password: 'secret-pw' };
/** A device whose password has what breaks naive parsers: a quote, a backslash, a space, non-ASCII. */
export const FAX = { username: 'fax', password: 'fa"x\\pw wörd' };

export interface FakeTokens extends TokenProvider, AccountTokens {
  accessCalls: number;
  rejectedCalls: number;
  /** Tokens handed out, in order. */
  issued: string[];
  /** When set, accessTokenFor and tokenRejected throw this catalogue error. */
  failWith: ErrorCode | null;
}

export function fakeTokens(mailbox = MAILBOX): FakeTokens {
  let generation = 1;
  const current = (): AccessToken => ({ token: `token-${generation}-${'x'.repeat(40)}`, expiresAt: new Date(Date.now() + 3600_000), mailbox });
  const tokens: FakeTokens = {
    accessCalls: 0,
    rejectedCalls: 0,
    issued: [],
    failWith: null,
    withAccessToken: (account, use) => accountTokens(tokens).withAccessToken(account, use),
    async accessTokenFor() {
      tokens.accessCalls += 1;
      if (tokens.failWith) throw new RelayError(tokens.failWith, 'scripted by the test');
      const t = current();
      tokens.issued.push(t.token);
      return t;
    },
    async tokenRejected(_account: string, token: string) {
      tokens.rejectedCalls += 1;
      if (tokens.failWith) throw new RelayError(tokens.failWith, 'scripted by the test');
      if (token === current().token) generation += 1;
      const t = current();
      tokens.issued.push(t.token);
      return t;
    },
  };
  return tokens;
}

export interface RelayWorld {
  caCertPem: string;
  upstreamCertificate: IssuedCertificate;
  deviceTls: DeviceTlsMaterial;
  devices: DeviceDirectory;
  logger: Logger;
  logText(): string;
  /** The secrets that must never appear in a log line. */
  secrets(): string[];
}

export async function relayWorld(): Promise<RelayWorld> {
  const pki = await createPki('xoauth2-relay imap/pop3 tests CA');
  const [upstreamCertificate, deviceCertificate] = await Promise.all([
    pki.issueServerCertificate(['127.0.0.1', 'localhost']),
    pki.issueServerCertificate(['127.0.0.1', 'localhost']),
  ]);
  const params = { N: 16384, r: 8, p: 1 };
  const devices = new DeviceDirectory([
    device('mfp', MFP.username, await hashPassword(MFP.password, params)),
    device('fax', FAX.username, await hashPassword(FAX.password, params)),
  ]);
  const memory = memoryLogger();
  const logger = memory.logger;
  return {
    caCertPem: pki.caCertPem,
    upstreamCertificate,
    deviceTls: { cert: deviceCertificate.certPem, key: deviceCertificate.keyPem },
    devices,
    logger,
    logText: () => memory.text(),
    secrets: () => [MFP.password, FAX.password, Buffer.from(`\u0000${MFP.username}\u0000${MFP.password}`).toString('base64')],
  };
}

function device(name: string, username: string, passwordHash: string): Config['devices'][number] {
  return { name, username, passwordHash, account: 'scanner', allowedSenders: [], allowedRecipientDomains: [], allowFrom: [], popBeforeSmtpMinutes: 0 };
}

export function testConfig(upstreamPort: number, maxConnectionsPerAddress = 20): Config {
  return configSchema.parse({
    accounts: { scanner: { mailbox: MAILBOX, tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } },
    smtp: { maxConnectionsPerAddress },
    imap: { upstream: { host: '127.0.0.1', port: upstreamPort } },
    pop3: { upstream: { host: '127.0.0.1', port: upstreamPort } },
  });
}

export interface RelayOptions {
  upstreamPort: number;
  tls?: TlsMode;
  tokens: AccountTokens;
  throttle?: FailureThrottle;
  timeouts?: Partial<ProxyTimeouts>;
  limits?: Partial<ProxyLimits>;
  maxConnectionsPerAddress?: number;
  drainMs?: number;
  loginBeforeTls?: LoginBeforeTls;
  /** `tls.legacyDevices` (TLS 1.0/1.1 from devices). */
  legacyDevices?: boolean;
  metrics?: ListenerMetrics;
}

export interface StartedRelay {
  port: number;
  listener: ImapListener | Pop3Listener;
  throttle: FailureThrottle;
  close(): Promise<void>;
}

/** An IMAP or POP3 listener on 127.0.0.1, port 0, with the scripted upstream's CA trusted. */
export async function startRelay(protocol: 'imap' | 'pop3', world: RelayWorld, o: RelayOptions): Promise<StartedRelay> {
  const base = testConfig(o.upstreamPort, o.maxConnectionsPerAddress);
  const config = o.legacyDevices ? { ...base, tls: { ...base.tls, legacyDevices: true } } : base;
  const throttle = o.throttle ?? new FailureThrottle({ freeFailures: 3, baseBlockMs: 60_000 });
  const options = {
    config,
    listen: { host: '127.0.0.1', port: 0, tls: o.tls ?? 'none', loginBeforeTls: o.loginBeforeTls ?? 'refuse' },
    devices: world.devices,
    throttle,
    tls: world.deviceTls,
    tokens: o.tokens,
    upstreamExtraCaPem: world.caCertPem,
    logger: world.logger,
    timeouts: { upstreamConnectMs: 2000, upstreamReplyMs: 2000, lingerMs: 2000, ...o.timeouts },
    ...(o.limits ? { limits: o.limits } : {}),
    drainMs: o.drainMs ?? 1000,
    ...(o.metrics ? { metrics: o.metrics } : {}),
  };
  const listener = protocol === 'imap' ? new ImapListener(options) : new Pop3Listener(options);
  const port = await listener.listen();
  return { port, listener, throttle, close: async () => void (await listener.close()) };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
