/**
 * Many held sessions and login bursts through a real relay listener (plain device side, verified TLS upstream):
 * a few hundred IMAP sessions logged in and left idle, after which a new device is still served and the held
 * ones still answer; and a burst of logins over the upstream-login bound, where every device gets a reply (served
 * in turn, or told to try again with NO [UNAVAILABLE] / -ERR [SYS/TEMP]) and no connection is closed on it.
 * (The session count stays at 200: the test process holds four descriptors per session, and CI may allow 1,024.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { accountTokens } from '../../src/auth/account-tokens.js';
import type { AccessToken } from '../../src/auth/token-service.js';
import { ImapListener } from '../../src/imap/imap-listener.js';
import { Pop3Listener } from '../../src/pop3/pop3-listener.js';
import { LoginQueue } from '../../src/transport/login-queue.js';
import { LineClient } from '../support/peers/line-client.js';
import { MAILBOX, MFP, fakeTokens, relayWorld, testConfig, type RelayWorld } from './support/relay-fixture.js';
import { startScriptedServer, type ScriptedServer } from './support/scripted-mail-server.js';

const HELD = 200;
let world: RelayWorld;
const upstreams: ScriptedServer[] = [];
const clients: LineClient[] = [];
const listeners: Array<ImapListener | Pop3Listener> = [];

before(async () => {
  world = await relayWorld();
});
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(listeners.map((l) => l.close()));
  await Promise.all(upstreams.map((u) => u.close()));
});

async function upstream(protocol: 'imap' | 'pop3'): Promise<ScriptedServer> {
  const server = await startScriptedServer({ protocol, certificate: world.upstreamCertificate });
  upstreams.push(server);
  return server;
}

function listener(protocol: 'imap' | 'pop3', upstreamPort: number, tokens: ReturnType<typeof accountTokens>, upstreamLogins?: LoginQueue): ImapListener | Pop3Listener {
  const options = {
    config: testConfig(upstreamPort, 1000),
    listen: { host: '127.0.0.1', port: 0, tls: 'none' as const, loginBeforeTls: 'refuse' as const },
    devices: world.devices,
    throttle: new FailureThrottle(),
    tls: null,
    tokens,
    upstreamExtraCaPem: world.caCertPem,
    logger: world.logger,
    timeouts: { upstreamConnectMs: 5000, upstreamReplyMs: 5000, lingerMs: 1000 },
    drainMs: 1000,
    ...(upstreamLogins ? { upstreamLogins } : {}),
  };
  const made = protocol === 'imap' ? new ImapListener(options) : new Pop3Listener(options);
  listeners.push(made);
  return made;
}

async function connect(port: number): Promise<LineClient> {
  const client = await LineClient.connect({ port, timeoutMs: 15_000 });
  clients.push(client);
  return client;
}

async function imapLogin(port: number, tag = 'a'): Promise<{ client: LineClient; reply: string }> {
  const client = await connect(port);
  assert.match(await client.readLine(), /^\* OK /);
  const lines = await client.imap(tag, `LOGIN ${MFP.username} ${MFP.password}`);
  return { client, reply: lines.at(-1)! };
}

test(`${HELD} idle IMAP sessions held through the relay; a new device is still served and the held ones answer`, async () => {
  const server = await upstream('imap');
  const tokens = fakeTokens();
  const relay = listener('imap', server.port, tokens);
  const port = await relay.listen();
  // All at once: the login burst is served (the queue bound is far above it).
  const held = await Promise.all(Array.from({ length: HELD }, () => imapLogin(port)));
  for (const { reply } of held) assert.match(reply, /^a OK \[CAPABILITY [^\]]*\] Logged in$/);
  assert.equal(relay.registry.count('imap'), HELD);
  assert.ok(relay.registry.list().every((s) => s.phase === 'spliced'));
  assert.equal(server.open, HELD);

  const fresh = await imapLogin(port, 'n');
  assert.match(fresh.reply, /^n OK /, 'a new device is served while the others are held');
  // The held sessions still reach the mail server, first and last alike.
  for (const { client } of [held[0]!, held[HELD - 1]!]) {
    const lines = await client.imap('c', 'CAPABILITY');
    assert.match(lines.at(-1)!, /^c OK CAPABILITY completed/);
  }
  // One token per upstream login, from memory: no refresh, no refusal.
  assert.equal(tokens.rejectedCalls, 0);
  assert.equal(tokens.accessCalls, HELD + 1);
});

/** A token source whose every token waits until `release()`: the upstream logins pile up in the queue. */
function heldTokens(): { tokens: ReturnType<typeof accountTokens>; release(): void; asked: () => number } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let asked = 0;
  const token = (): AccessToken => ({ token: `token-${'y'.repeat(40)}`, expiresAt: new Date(Date.now() + 3600_000), mailbox: MAILBOX });
  const tokens = accountTokens({
    async accessTokenFor() {
      asked += 1;
      await released;
      return token();
    },
    async tokenRejected() {
      return token();
    },
  });
  return { tokens, release, asked: () => asked };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check());
}

test('IMAP login burst over the bound: the overflow is told NO [UNAVAILABLE] try again, stays connected, and is served on retry', async () => {
  const server = await upstream('imap');
  const gate = heldTokens();
  const queue = new LoginQueue(1, 2);
  const port = await listener('imap', server.port, gate.tokens, queue).listen();
  const first = await connect(port);
  assert.match(await first.readLine(), /^\* OK /);
  first.send(`a LOGIN ${MFP.username} ${MFP.password}`);
  await until(() => gate.asked() === 1); // the first login holds the only slot
  const queued = await Promise.all([connect(port), connect(port)]);
  for (const c of queued) {
    assert.match(await c.readLine(), /^\* OK /);
    c.send(`b LOGIN ${MFP.username} ${MFP.password}`);
  }
  await until(() => queue.load.waiting === 2);
  const over = await imapLogin(port, 'c');
  assert.equal(over.reply, 'c NO [UNAVAILABLE] Too many logins in progress, try again later');
  gate.release();
  assert.match(await first.readLine(), /^a OK /);
  for (const c of queued) assert.match(await c.readLine(), /^b OK /);
  // Still connected: the same connection logs in now.
  const retry = await over.client.imap('d', `LOGIN ${MFP.username} ${MFP.password}`);
  assert.match(retry.at(-1)!, /^d OK /);
  assert.equal(server.open, 4);
  assert.match(world.logText(), /"errorCode":"LOGINS_BUSY"/);
});

test('POP3 login burst over the bound: -ERR [SYS/TEMP] try again, then served on the same connection', async () => {
  const server = await upstream('pop3');
  const gate = heldTokens();
  const queue = new LoginQueue(1, 0);
  const port = await listener('pop3', server.port, gate.tokens, queue).listen();
  const pop3Login = async (client: LineClient): Promise<void> => {
    client.send(`USER ${MFP.username}`);
    assert.match(await client.readLine(), /^\+OK/);
    client.send(`PASS ${MFP.password}`);
  };
  const first = await connect(port);
  assert.match(await first.readLine(), /^\+OK /);
  await pop3Login(first);
  await until(() => gate.asked() === 1);
  const over = await connect(port);
  assert.match(await over.readLine(), /^\+OK /);
  await pop3Login(over);
  assert.equal(await over.readLine(), '-ERR [SYS/TEMP] Too many logins in progress, try again later');
  gate.release();
  assert.equal(await first.readLine(), '+OK Logged in');
  await pop3Login(over);
  assert.equal(await over.readLine(), '+OK Logged in');
  assert.equal(server.open, 2);
});
