/**
 * IMAP and POP3 through the relay against real Dovecot (IMAPS/POP3S on loopback accepting only XOAUTH2, JWTs
 * checked locally) with tokens from the real token service signed in at the sandbox identity simulator.
 * Devices are played by imapflow and by raw sockets. Messages are put into the maildir beforehand and must come
 * back byte for byte, a 30 MB one included, while the relay's memory stays flat; 200 IMAP sessions run at once.
 * Skips (with the reason) where Dovecot is not installed; fails when CI=true.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { chown, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { DeviceDirectory } from '../../src/auth/device-directory.js';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { TokenServices } from '../../src/auth/token-services.js';
import type { TokenState } from '../../src/auth/token-state.js';
import type { Config, TlsMode } from '../../src/config/schema.js';
import { isRelayError } from '../../src/errors.js';
import { ImapListener } from '../../src/imap/imap-listener.js';
import { Pop3Listener } from '../../src/pop3/pop3-listener.js';
import { createPki } from '../../src/sandbox/pki.js';
import { SANDBOX_CLIENT_ID, SANDBOX_MAILBOX, SANDBOX_TENANT_ID } from '../../src/sandbox/sandbox-config.js';
import type { ProxyListenerOptions } from '../../src/transport/proxy-listener.js';
import type { DeviceTlsMaterial } from '../../src/transport/tls-options.js';
import { attachmentMessage, sampleMessage } from '../support/peers/messages.js';
import { LineClient } from '../support/peers/line-client.js';
import { mailPeersAvailable, startMailPeers, type MailPeers } from '../support/peers/mail-peers.js';
import { startSandboxEnv, type SandboxEnv } from '../support/sandbox-env.js';
import { closedPort } from '../transport/support/relay-fixture.js';
import { RelayChild } from '../transport/support/relay-child-handle.js';
import { StreamingClient, pop3Stuffed } from '../transport/support/streaming-client.js';

const availability = mailPeersAvailable();
const inCi = process.env.CI === 'true';
const skip = !availability.ok && !inCi ? availability.reason : false;

const REVOKED_MAILBOX = 'revoked@sandbox.test';
const devicesInput = { mfp: 'mfp-Pässword "1"', fax: 'fax-password', copier: 'copier-password' };
const CONCURRENT_SESSIONS = 200;
const BIG_MESSAGE_BYTES = 30 * 1024 * 1024;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('IMAP and POP3 through the relay against real Dovecot', { skip }, () => {
  let env: SandboxEnv;
  let peers: MailPeers;
  let services: TokenServices;
  let config: Config;
  let devices: DeviceDirectory;
  let deviceTls: DeviceTlsMaterial;
  let deviceCa: string;
  const ports: Record<string, number> = {};
  const listeners: Array<ImapListener | Pop3Listener> = [];
  /** The small messages in the maildir, in order (sequence numbers 1…n). */
  const small: Buffer[] = [];

  before(async () => {
    if (!availability.ok) assert.fail(`CI=true but the mail peers cannot run: ${availability.reason}`);
    const params = { N: 16384, r: 8, p: 1 };
    const device = async (name: string, account: string) => ({ name, username: name, passwordHash: await hashPassword(devicesInput[name as keyof typeof devicesInput], params), account });
    env = await startSandboxEnv({
      sim: { pollIntervalSec: 1 },
      config: {
        accounts: {
          revoked: { mailbox: REVOKED_MAILBOX, tenantId: SANDBOX_TENANT_ID, clientId: SANDBOX_CLIENT_ID, flow: 'device-code' },
          unsigned: { mailbox: 'unsigned@sandbox.test', tenantId: SANDBOX_TENANT_ID, clientId: SANDBOX_CLIENT_ID, flow: 'device-code' },
        },
        devices: [await device('mfp', 'scanner'), await device('fax', 'revoked'), await device('copier', 'unsigned')],
      },
    });
    peers = await startMailPeers({
      validation: { issuers: [env.sim.issuer(SANDBOX_TENANT_ID)], audiences: ['https://outlook.office.com'], kid: env.sim.signingKey.kid, publicKeyPem: env.sim.signingKey.publicKeyPem },
      mailboxes: [SANDBOX_MAILBOX, REVOKED_MAILBOX],
    });
    services = await TokenServices.create(env.config, env.logger, { ...process.env, XOAUTH2_RELAY_KEY: 'cd'.repeat(32) });
    await services.start();
    await signIn('scanner', SANDBOX_MAILBOX);
    await signIn('revoked', REVOKED_MAILBOX);
    // The revoked account: its refresh token is refused from now on; a forced refresh makes the token invalid.
    env.sim.revokeRefreshTokens(REVOKED_MAILBOX);
    const revokedToken = await services.accessTokenFor('revoked');
    await assert.rejects(services.tokenRejected('revoked', revokedToken.token), (err) => isRelayError(err, 'TOKEN_INVALID'));

    config = {
      ...env.config,
      imap: { ...env.config.imap, upstream: { host: '127.0.0.1', port: peers.imapsPort } },
      pop3: { ...env.config.pop3, upstream: { host: '127.0.0.1', port: peers.pop3sPort } },
    };
    devices = new DeviceDirectory(config.devices);
    const pki = await createPki('relay device-side test CA');
    const cert = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
    deviceTls = { cert: cert.certPem, key: cert.keyPem };
    deviceCa = pki.caCertPem;

    for (let i = 0; i < 3; i++) small.push(Buffer.from(sampleMessage('sender@example.com', [SANDBOX_MAILBOX], `scan ${i} ${randomUUID()}`)));
    for (const [i, message] of small.entries()) await putMessage(SANDBOX_MAILBOX, message, i);

    ports.imap = await startListener('imap', 'none');
    ports.imapStarttls = await startListener('imap', 'starttls');
    ports.pop3 = await startListener('pop3', 'none');
    ports.pop3Starttls = await startListener('pop3', 'starttls');
  });

  after(async () => {
    await Promise.all(listeners.map((l) => l.close()));
    await services?.stop();
    await peers?.stop();
    const log = env?.logText() ?? '';
    await env?.close();
    for (const secret of Object.values(devicesInput)) assert.ok(!log.includes(secret), 'a device password reached the log');
    assert.ok(!/eyJ[\w-]{20,}\.[\w-]{20,}\./.test(log), 'a JWT reached the log');
  });

  async function signIn(account: string, mailbox: string): Promise<void> {
    const service = services.get(account);
    const acquired = new Promise<void>((resolve) => {
      const on = (state: TokenState) => state.state === 'acquired' && (service.off('state', on), resolve());
      service.on('state', on);
    });
    const prompt = await service.startDeviceCode();
    env.sim.approve(prompt.userCode, mailbox);
    await acquired;
  }

  /** Dovecot 2.3's defaults allow 100 login processes (one per TLS session) and 10 sessions per user and address. */
  async function putMessage(mailbox: string, message: Buffer, n: number): Promise<string> {
    const dir = peers.maildir(mailbox);
    const owner = await stat(dir);
    const file = join(dir, 'new', `${1_700_000_000 + n}.M${n}P1.relaytest,S=${message.length}`);
    await writeFile(file, message);
    await chown(file, owner.uid, owner.gid);
    return file;
  }

  async function startListener(protocol: 'imap' | 'pop3', tls: TlsMode, over: Partial<ProxyListenerOptions> = {}): Promise<number> {
    const options: ProxyListenerOptions = {
      config,
      listen: { host: '127.0.0.1', port: 0, tls, loginBeforeTls: 'refuse' },
      devices,
      throttle: new FailureThrottle({ freeFailures: 1000 }),
      tls: deviceTls,
      tokens: services,
      upstreamExtraCaPem: peers.caCertPem,
      logger: env.logger.child({ test: 'e2e' }),
      limits: { maxConnectionsPerAddress: CONCURRENT_SESSIONS + 50 },
      ...over,
    };
    const listener = protocol === 'imap' ? new ImapListener(options) : new Pop3Listener(options);
    listeners.push(listener);
    return listener.listen();
  }

  function imapflow(port: number, user = 'mfp', pass = devicesInput.mfp): ImapFlow {
    return new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass }, logger: false, tls: { ca: [deviceCa] }, connectionTimeout: 30_000, greetingTimeout: 30_000 });
  }

  async function lineClient(port: number): Promise<LineClient> {
    const client = await LineClient.connect({ port, ca: deviceCa, timeoutMs: 20_000 });
    assert.match(await client.readLine(), /^(\* OK|\+OK)/);
    return client;
  }

  /** Reads `* n FETCH (BODY[] {size}` … `)` … `tag OK` and returns the literal's bytes. */
  async function fetchBody(client: StreamingClient, tag: string, seq: number): Promise<{ sha256: string; size: number }> {
    client.send(`${tag} FETCH ${seq} BODY.PEEK[]`);
    for (;;) {
      const line = await client.readLine();
      const literal = /^\* \d+ FETCH \(.*BODY\[\] \{(\d+)\}$/.exec(line);
      if (literal) {
        const size = Number(literal[1]);
        const digest = await client.hashBytes(size);
        for (;;) {
          const rest = await client.readLine();
          if (rest.startsWith(`${tag} `)) {
            assert.match(rest, new RegExp(`^${tag} OK`));
            return { sha256: digest, size };
          }
        }
      }
      if (line.startsWith(`${tag} `)) assert.fail(`FETCH failed: ${line}`);
    }
  }

  test('imapflow logs in with LOGIN through the relay and reads every message byte for byte', async () => {
    const client = imapflow(ports.imap!);
    await client.connect();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        const status = await client.status('INBOX', { messages: true });
        assert.equal(status.messages, small.length);
        const seen = new Set<string>();
        for await (const message of client.fetch('1:*', { source: true })) seen.add(sha256(message.source!));
        assert.deepEqual(seen, new Set(small.map(sha256)));
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  });

  test('raw IMAP: LOGIN with literals, SELECT and FETCH; AUTHENTICATE PLAIN with a continuation', async () => {
    const pass = Buffer.from(devicesInput.mfp, 'utf8');
    const client = await lineClient(ports.imap!);
    client.send(`a1 LOGIN {3}`);
    assert.equal(await client.readLine(), '+ Ready for literal data');
    client.send(`mfp {${pass.length}}`);
    assert.equal(await client.readLine(), '+ Ready for literal data');
    await client.write(Buffer.concat([pass, Buffer.from('\r\n')]));
    const ok = await client.readLine();
    assert.match(ok, /^a1 OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/);
    const select = await client.imap('a2', 'SELECT INBOX');
    assert.match(select.at(-1)!, /^a2 OK \[READ-WRITE\]/);
    assert.match((await client.imap('a3', 'LOGOUT')).at(-1)!, /^a3 OK/);
    client.close();

    const plain = Buffer.from(`\0mfp\0${devicesInput.mfp}`).toString('base64');
    const second = await lineClient(ports.imap!);
    const reply = await second.imap('b1', 'AUTHENTICATE PLAIN', () => plain);
    assert.equal(reply[0], '+ ');
    assert.match(reply.at(-1)!, /^b1 OK \[CAPABILITY .*\] Logged in$/);
    const streaming = await StreamingClient.connect(ports.imap!);
    await streaming.readLine();
    assert.match((await streaming.imap('c1', `AUTHENTICATE PLAIN ${plain}`)).at(-1)!, /^c1 OK/);
    await streaming.imap('c2', 'EXAMINE INBOX');
    const body = await fetchBody(streaming, 'c3', 2);
    assert.ok(small.some((m) => sha256(m) === body.sha256 && m.length === body.size), 'message 2 is one of those put in, byte for byte');
    streaming.close();
    second.close();
  });

  test('IMAP STARTTLS on the device side, then LOGIN and SELECT', async () => {
    const client = await lineClient(ports.imapStarttls!);
    assert.deepEqual(await client.imap('a1', 'LOGIN mfp x'), ['a1 NO [PRIVACYREQUIRED] Use STARTTLS before logging in']);
    assert.deepEqual(await client.imap('a2', 'STARTTLS'), ['a2 OK Begin TLS negotiation now']);
    await client.startTls('localhost');
    const quoted = `"${devicesInput.mfp.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    assert.match((await client.imap('a3', `LOGIN mfp ${quoted}`)).at(-1)!, /^a3 OK \[CAPABILITY /);
    assert.match((await client.imap('a4', 'SELECT INBOX')).at(-1)!, /^a4 OK/);
    client.close();
    // imapflow upgrades by itself when STARTTLS is offered (LOGINDISABLED would stop it otherwise).
    const flow = imapflow(ports.imapStarttls!);
    await flow.connect();
    assert.ok(flow.usable && flow.capabilities.has('IMAP4rev1'));
    await flow.logout();
  });

  test('POP3: USER/PASS, LIST, RETR byte for byte, DELE, QUIT removes the message; AUTH PLAIN; STLS', async () => {
    const target = Buffer.from(sampleMessage('sender@example.com', [SANDBOX_MAILBOX], `to be deleted ${randomUUID()}`));
    const targetFile = await putMessage(SANDBOX_MAILBOX, target, 50);
    const client = await lineClient(ports.pop3!);
    client.send('USER mfp');
    assert.equal(await client.readLine(), '+OK Send PASS');
    client.send(`PASS ${devicesInput.mfp}`);
    assert.equal(await client.readLine(), '+OK Logged in');
    client.send('LIST');
    assert.match(await client.readLine(), /^\+OK/);
    const list = await client.pop3MultiLine();
    assert.equal(list.length, small.length + 1);
    const retrieved = new Map<string, number>();
    for (let i = 1; i <= list.length; i++) {
      client.send(`RETR ${i}`);
      assert.match(await client.readLine(), /^\+OK/);
      retrieved.set(sha256(`${(await client.pop3MultiLine()).join('\r\n')}\r\n`), i);
    }
    assert.deepEqual(new Set(retrieved.keys()), new Set([...small, target].map(sha256)));
    client.send(`DELE ${retrieved.get(sha256(target))}`);
    assert.match(await client.readLine(), /^\+OK/);
    client.send('QUIT');
    assert.match(await client.readLine(), /^\+OK/);
    client.close();
    assert.equal((await maildirFiles(SANDBOX_MAILBOX)).length, small.length);
    assert.ok(!(await maildirFiles(SANDBOX_MAILBOX)).some((f) => f.includes(targetFile.slice(targetFile.lastIndexOf('/') + 1, targetFile.indexOf(',')))));

    const auth = await lineClient(ports.pop3!);
    auth.send(`AUTH PLAIN ${Buffer.from(`\0mfp\0${devicesInput.mfp}`).toString('base64')}`);
    assert.equal(await auth.readLine(), '+OK Logged in');
    auth.send('STAT');
    assert.match(await auth.readLine(), new RegExp(`^\\+OK ${small.length} \\d+$`));
    auth.close();

    const tls = await lineClient(ports.pop3Starttls!);
    tls.send('STLS');
    assert.equal(await tls.readLine(), '+OK Begin TLS negotiation now');
    await tls.startTls('localhost');
    tls.send('AUTH PLAIN');
    assert.equal(await tls.readLine(), '+ ');
    tls.send(Buffer.from(`\0mfp\0${devicesInput.mfp}`).toString('base64'));
    assert.equal(await tls.readLine(), '+OK Logged in');
    tls.send('QUIT');
    assert.match(await tls.readLine(), /^\+OK/);
    tls.close();
  });

  async function maildirFiles(mailbox: string): Promise<string[]> {
    const dir = peers.maildir(mailbox);
    for (let i = 0; i < 40; i++) {
      const files = [...(await readdir(join(dir, 'new'))), ...(await readdir(join(dir, 'cur')))];
      if (files.length <= small.length) return files;
      await sleep(50); // QUIT's deletion may land just after the +OK
    }
    return [...(await readdir(join(dir, 'new'))), ...(await readdir(join(dir, 'cur')))];
  }

  test('a 30 MB message through IMAP and POP3: byte for byte, the relay process grows by less than 64 MB', async (t) => {
    const big = Buffer.from(attachmentMessage('scanner@example.com', [SANDBOX_MAILBOX], 'big scan', Math.floor((BIG_MESSAGE_BYTES * 3) / 4)));
    assert.ok(big.length >= BIG_MESSAGE_BYTES * 0.98, `message is ${big.length} bytes`);
    const expectedSha = sha256(big);
    const expectedPop3 = sha256(pop3Stuffed(big));
    await putMessage(SANDBOX_MAILBOX, big, 99);

    // The relay runs in a process of its own, so its RSS is the relay's alone (not this test's buffers).
    const child = await RelayChild.start({ config, token: (await services.accessTokenFor('scanner')).token, mailbox: SANDBOX_MAILBOX, upstreamExtraCaPem: peers.caCertPem });
    try {
      const plainLogin = `AUTH PLAIN ${Buffer.from(`\0mfp\0${devicesInput.mfp}`).toString('base64')}`;
      // One small session first, so the baseline includes what any session needs (TLS contexts, code paths).
      const warm = await StreamingClient.connect(child.imapPort);
      await warm.readLine();
      assert.match((await warm.imap('w1', `AUTHENTICATE PLAIN ${Buffer.from(`\0mfp\0${devicesInput.mfp}`).toString('base64')}`)).at(-1)!, /^w1 OK/);
      await warm.imap('w2', 'LOGOUT');
      warm.close();
      const baseline = await child.mark();

      const imap = await StreamingClient.connect(child.imapPort);
      await imap.readLine();
      assert.match((await imap.imap('a1', `LOGIN mfp "${devicesInput.mfp.replace(/[\\"]/g, (c) => `\\${c}`)}"`)).at(-1)!, /^a1 OK/);
      await imap.imap('a2', 'EXAMINE INBOX');
      const sizes = await imap.imap('a4', 'FETCH 1:* RFC822.SIZE');
      const seq = Number(sizes.map((l) => new RegExp(`^\\* (\\d+) FETCH \\(RFC822\\.SIZE ${big.length}\\)`).exec(l)).find(Boolean)?.[1]);
      assert.ok(seq > 0, `the big message is listed: ${sizes.join(' | ')}`);
      const started = performance.now();
      const fetched = await fetchBody(imap, 'a3', seq);
      const imapMs = performance.now() - started;
      assert.deepEqual(fetched, { sha256: expectedSha, size: big.length });
      imap.close();

      const pop3 = await StreamingClient.connect(child.pop3Port);
      await pop3.readLine();
      pop3.send(plainLogin);
      assert.equal(await pop3.readLine(), '+OK Logged in');
      pop3.send(`RETR ${seq}`);
      assert.match(await pop3.readLine(), /^\+OK/);
      const popStarted = performance.now();
      const body = await pop3.hashPop3Body();
      const pop3Ms = performance.now() - popStarted;
      assert.equal(body.sha256, expectedPop3);
      pop3.close();

      const { peak } = await child.peak();
      const growthMb = (peak - baseline) / 1024 / 1024;
      const mbps = (ms: number) => ((big.length / 1048576) / (ms / 1000)).toFixed(0);
      t.diagnostic(`${(big.length / 1048576).toFixed(1)} MB message: IMAP FETCH ${Math.round(imapMs)} ms (${mbps(imapMs)} MB/s), POP3 RETR ${Math.round(pop3Ms)} ms (${mbps(pop3Ms)} MB/s); relay process RSS ${(baseline / 1048576).toFixed(1)} MB → peak ${(peak / 1048576).toFixed(1)} MB (growth ${growthMb.toFixed(1)} MB)`);
      assert.ok(growthMb < 64, `RSS grew by ${growthMb.toFixed(1)} MB`);
    } finally {
      await child.stop();
    }
  });

  test(`${CONCURRENT_SESSIONS} concurrent IMAP sessions (imapflow) each log in and FETCH`, async (t) => {
    const started = performance.now();
    const clients = Array.from({ length: CONCURRENT_SESSIONS }, () => imapflow(ports.imap!));
    const expected = new Set([...small].map(sha256));
    let open = 0;
    let maxOpen = 0;
    const results = await Promise.allSettled(
      clients.map(async (client) => {
        await client.connect();
        open += 1;
        maxOpen = Math.max(maxOpen, open);
        try {
          const lock = await client.getMailboxLock('INBOX');
          try {
            const message = await client.fetchOne('1', { source: true });
            assert.ok(message && message.source);
            assert.ok(expected.has(sha256(message.source)));
          } finally {
            lock.release();
          }
          // Hold the session until every client is in, so they really are concurrent.
          while (open < CONCURRENT_SESSIONS && performance.now() - started < 40_000) await sleep(50);
        } finally {
          await client.logout().catch(() => client.close());
        }
      }),
    );
    const elapsed = performance.now() - started;
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    t.diagnostic(`${CONCURRENT_SESSIONS} sessions: ${results.length - failed.length} ok in ${Math.round(elapsed)} ms, ${maxOpen} open at once`);
    assert.deepEqual(failed.map((f) => String(f.reason)).slice(0, 3), []);
    assert.equal(maxOpen, CONCURRENT_SESSIONS);
    assert.ok(elapsed < 60_000, `took ${elapsed} ms`);
  });

  test('wrong password, unknown user, invalid token, no token: the right reply and a clear log line', async () => {
    const client = await lineClient(ports.imap!);
    assert.deepEqual(await client.imap('a1', 'LOGIN mfp wrong'), ['a1 NO [AUTHENTICATIONFAILED] Wrong user name or password']);
    assert.deepEqual(await client.imap('a2', 'LOGIN stranger whatever'), ['a2 NO [AUTHENTICATIONFAILED] Wrong user name or password']);
    assert.deepEqual(await client.imap('a3', `LOGIN fax ${devicesInput.fax}`), ['a3 NO [UNAVAILABLE] Relay mailbox token is invalid: ask the administrator to sign in again']);
    assert.deepEqual(await client.imap('a4', `LOGIN copier ${devicesInput.copier}`), ['a4 NO [UNAVAILABLE] Relay has no mailbox token yet: ask the administrator to sign in']);
    client.close();
    const pop3 = await lineClient(ports.pop3!);
    pop3.send(`AUTH PLAIN ${Buffer.from(`\0fax\0${devicesInput.fax}`).toString('base64')}`);
    assert.equal(await pop3.readLine(), '-ERR [SYS/TEMP] Relay mailbox token is invalid: ask the administrator to sign in again');
    pop3.send('USER mfp');
    await pop3.readLine();
    pop3.send('PASS wrong');
    assert.equal(await pop3.readLine(), '-ERR [AUTH] Wrong user name or password');
    pop3.close();
    const log = env.logText();
    assert.match(log, /"level":"info".*device login refused: device sent a wrong user name or password \(user name \\"stranger\\"\)/);
    assert.match(log, /"level":"warn".*"account":"revoked".*login failed upstream: the token is no longer valid/);
    assert.match(log, /"level":"warn".*"account":"unsigned".*no token for this account yet: run `xoauth2-relay login <account>`/);
    assert.equal(services.get('revoked').state.state, 'invalid');
  });

  test('upstream down: NO [UNAVAILABLE] / -ERR [SYS/TEMP], the log says so, the token is kept and still works', async () => {
    const down = { ...config, imap: { ...config.imap, upstream: { host: '127.0.0.1', port: await closedPort() } }, pop3: { ...config.pop3, upstream: { host: '127.0.0.1', port: await closedPort() } } };
    const imapPort = await startListener('imap', 'none', { config: down });
    const pop3Port = await startListener('pop3', 'none', { config: down });
    const before = services.get('scanner').state;
    const client = await lineClient(imapPort);
    assert.deepEqual(await client.imap('a1', `LOGIN mfp "${devicesInput.mfp.replace(/[\\"]/g, (c) => `\\${c}`)}"`), ['a1 NO [UNAVAILABLE] Mail server unreachable, try again later']);
    client.close();
    const pop3 = await lineClient(pop3Port);
    pop3.send(`AUTH PLAIN ${Buffer.from(`\0mfp\0${devicesInput.mfp}`).toString('base64')}`);
    assert.equal(await pop3.readLine(), '-ERR [SYS/TEMP] Mail server unreachable, try again later');
    pop3.close();
    assert.match(env.logText(), /"level":"warn".*the upstream IMAP\/POP3 server could not be reached.*connection refused/);
    assert.deepEqual(services.get('scanner').state, before);
    assert.equal(services.get('scanner').state.state, 'acquired');
    // And the relay still logs in through a working listener with the same token.
    const ok = await lineClient(ports.imap!);
    assert.match((await ok.imap('b1', `LOGIN mfp "${devicesInput.mfp.replace(/[\\"]/g, (c) => `\\${c}`)}"`)).at(-1)!, /^b1 OK/);
    ok.close();
  });
});
