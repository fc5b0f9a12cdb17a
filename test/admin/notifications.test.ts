/**
 * Notifications: token state changes logged once with the fix, and JSON notices POSTed to a webhook (a local
 * HTTP server on 127.0.0.1) when a device code waits and when an account turns invalid, never carrying a token;
 * the webhook times out, does not retry, does not repeat itself, and caps its rate.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TokenServices } from '../../src/auth/token-services.js';
import { createEncryptedFileStore } from '../../src/auth/store/index.js';
import { isRelayError } from '../../src/errors.js';
import { followAccountStates, Webhook } from '../../src/notify/index.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { eventually, startSandboxEnv, type SandboxEnv } from '../support/sandbox-env.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1 that answers `status`, or never answers (`status` null). */
async function startReceiver(status: number | null = 204): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (status !== null) res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/T0KEN-IN-PATH?key=s3cret`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const keyEnv = { ...process.env, XOAUTH2_RELAY_KEY: '5e'.repeat(32) };

describe('account notices', () => {
  let env: SandboxEnv;
  let services: TokenServices;
  let receiver: Receiver;

  before(async () => {
    env = await startSandboxEnv({ sim: { pollIntervalSec: 0.2 } });
    services = await TokenServices.create(env.config, env.logger, keyEnv);
    await services.start();
    receiver = await startReceiver();
  });
  after(async () => {
    await services?.stop();
    await receiver?.close();
    await env?.close();
  });

  test('a waiting device code and an invalid account are POSTed with the fix, logged once, and never carry a token', async () => {
    const notifier = followAccountStates(services, { logger: env.logger, webhook: { url: receiver.url, timeoutMs: 2000 }, adminUrl: 'http://127.0.0.1:8025/', relayName: 'relay-test' });
    const service = services.get('scanner');
    const prompt = await service.startDeviceCode();
    await eventually(() => receiver.received.length === 1, 5000, 'the sign-in notice');
    const waiting = JSON.parse(receiver.received[0]!.body);
    assert.equal(receiver.received[0]!.method, 'POST');
    assert.equal(receiver.received[0]!.url, '/hooks/T0KEN-IN-PATH?key=s3cret');
    assert.equal(receiver.received[0]!.headers['content-type'], 'application/json');
    assert.equal(waiting.event, 'sign-in-waiting');
    assert.equal(waiting.account, 'scanner');
    assert.equal(waiting.mailbox, SANDBOX_MAILBOX);
    assert.equal(waiting.relay, 'relay-test');
    assert.deepEqual(Object.keys(waiting.signIn).sort(), ['expiresAt', 'userCode', 'verificationUri']);
    assert.equal(waiting.signIn.userCode, prompt.userCode);
    assert.match(waiting.fix, new RegExp(`enter the code ${prompt.userCode} and sign in as ${SANDBOX_MAILBOX.replace('.', '\\.')}`));
    assert.match(waiting.text, /is waiting for a sign-in/);

    env.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
    await prompt.done;
    const token = await services.accessTokenFor('scanner');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.received.length, 1, 'acquired is not worth a notice');

    env.sim.revokeRefreshTokens(SANDBOX_MAILBOX);
    await assert.rejects(services.tokenRejected('scanner', token.token), (err) => isRelayError(err, 'TOKEN_INVALID'));
    await eventually(() => receiver.received.length === 2, 5000, 'the invalid notice');
    const invalid = JSON.parse(receiver.received[1]!.body);
    assert.equal(invalid.event, 'account-invalid');
    assert.equal(invalid.state, 'invalid');
    assert.match(invalid.reason, /revoked/);
    assert.match(invalid.fix, /sign in again as scanner@sandbox\.test: press Get token on the admin page \(http:\/\/127\.0\.0\.1:8025\/\) or run `xoauth2-relay login scanner`/);

    const store = createEncryptedFileStore({ stateDir: env.config.stateDir, key: Buffer.from('5e'.repeat(32), 'hex') });
    const cache = JSON.parse((await store.load('scanner')) ?? '{}') as { RefreshToken?: Record<string, { secret: string }> };
    const secrets = [token.token, ...Object.values(cache.RefreshToken ?? {}).map((t) => t.secret)];
    for (const r of receiver.received) {
      for (const secret of secrets) assert.equal(r.body.includes(secret), false, 'no token in a notice');
      assert.equal(/eyJ[A-Za-z0-9_-]{10,}/.test(r.body), false, 'nothing JWT-shaped in a notice');
    }
    const log = env.logText();
    const invalidLines = log.split('\n').filter((l) => l.includes('"component":"notify"') && l.includes('needs a new sign-in'));
    assert.equal(invalidLines.length, 1, 'the invalid state is logged once by the notifier');
    assert.match(invalidLines[0]!, /"level":"error"/);
    assert.match(log, /"level":"warn".*"component":"notify".*is waiting for a sign-in: open https:\/\/127\.0\.0\.1:\d+\/sandbox\/devicelogin, enter the code/);
    assert.equal(log.includes('T0KEN-IN-PATH') || log.includes('s3cret'), false, 'the webhook URL path and query are not logged');
    await notifier.idle();
    notifier.stop();
  });

  test('an account already invalid when following starts is announced at once', async () => {
    assert.equal(services.get('scanner').state.state, 'invalid');
    const fresh = await startReceiver();
    try {
      const notifier = followAccountStates(services, { logger: env.logger, webhook: { url: fresh.url } });
      await notifier.idle();
      assert.equal(fresh.received.length, 1);
      assert.equal(JSON.parse(fresh.received[0]!.body).event, 'account-invalid');
      notifier.stop();
    } finally {
      await fresh.close();
    }
  });
});

describe('webhook behaviour', () => {
  const logger = () => {
    const lines: string[] = [];
    const log = { warn: (o: object, m: string) => lines.push(`warn ${m} ${JSON.stringify(o)}`), info: (o: object, m: string) => lines.push(`info ${m} ${JSON.stringify(o)}`) };
    return { lines, log: log as unknown as Parameters<typeof followAccountStates>[1]['logger'] };
  };

  test('a receiver that never answers: given up after the timeout, not retried', async () => {
    const silent = await startReceiver(null);
    const { lines, log } = logger();
    try {
      const webhook = new Webhook({ url: silent.url, logger: log, timeoutMs: 300 });
      const started = Date.now();
      webhook.send({ key: 'a', body: { event: 'test' } });
      await webhook.idle();
      assert.ok(Date.now() - started < 2000);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(silent.received.length, 1, 'one attempt only');
      assert.match(lines.join('\n'), /notification webhook did not accept the notice .*\(no answer within 300 ms\)/);
    } finally {
      await silent.close();
    }
  });

  test('an error answer is logged, not retried; the same notice is not repeated; the hourly cap holds', async () => {
    const failing = await startReceiver(500);
    const { lines, log } = logger();
    try {
      const webhook = new Webhook({ url: failing.url, logger: log, maxPerHour: 3 });
      webhook.send({ key: 'same', body: { event: 'one' } });
      webhook.send({ key: 'same', body: { event: 'one' } });
      await webhook.idle();
      assert.equal(failing.received.length, 1, 'no retry, no repeat');
      assert.match(lines.join('\n'), /HTTP 500/);
      for (const key of ['b', 'c', 'd', 'e']) webhook.send({ key, body: { event: key } });
      await webhook.idle();
      assert.equal(failing.received.length, 3, 'capped at 3 an hour');
      assert.match(lines.join('\n'), /too many notices this hour/);
    } finally {
      await failing.close();
    }
  });

  test('only http(s) URLs are accepted', () => {
    const { log } = logger();
    assert.throws(() => new Webhook({ url: 'file:///etc/passwd', logger: log }), (err) => isRelayError(err, 'CONFIG_INVALID'));
    assert.throws(() => new Webhook({ url: 'not a url', logger: log }), (err) => isRelayError(err, 'CONFIG_INVALID'));
  });
});
