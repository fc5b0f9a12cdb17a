/**
 * The prompt greeting: a connection handed to the server's `connect()` is ready (greeting sent) before
 * `connect()` returns, instead of 100 ms later; and the smtp-server internals it relies on are still there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { greetPromptly, greetsPromptly } from '../../src/smtp/prompt-greeting.js';
import { SmtpDevice } from '../support/smtp-device.js';

interface ConnectionView {
  _ready: boolean;
}

/** A TCP server that hands each socket to `smtp.connect()` and records whether the connection was ready on return. */
async function front(smtp: SMTPServer): Promise<{ port: number; readyOnReturn: boolean[]; close: () => void }> {
  const readyOnReturn: boolean[] = [];
  const connections = (smtp as unknown as { connections: Set<ConnectionView> }).connections;
  const tcp = createServer((socket: Socket) => {
    (smtp as unknown as { connect(s: Socket, o: object): void }).connect(socket, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
    readyOnReturn.push([...connections].at(-1)?._ready === true);
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  return { port: (tcp.address() as AddressInfo).port, readyOnReturn, close: () => tcp.close() };
}

/** onConnect answers at once, like the relay's (smtp-server's default defers it with setImmediate). */
function server(maxClients?: number): SMTPServer {
  return new SMTPServer({ logger: false, disableReverseLookup: true, authOptional: true, hideSTARTTLS: true, disabledCommands: ['STARTTLS'], banner: 'test', onConnect: (_session, cb) => cb(), ...(maxClients ? { maxClients } : {}) });
}

test('smtp-server still holds a new connection 100 ms before the greeting (the wait greetPromptly skips)', () => {
  // If this fails, smtp-server changed SMTPConnection.init(): re-measure and drop or adapt prompt-greeting.ts.
  const proto = SMTPConnection.prototype as unknown as Record<string, unknown>;
  assert.match(String(proto.init), /setTimeout\(\(\) => this\.connectionReady\(\), 100\)/);
  for (const internal of ['_setListeners', 'connectionReady', 'send']) assert.equal(typeof proto[internal], 'function', internal);
});

test('with greetPromptly the connection is ready when connect() returns and the client is greeted; without, it is not yet', async () => {
  const plain = server();
  const prompt = greetPromptly(server());
  assert.equal(greetsPromptly(prompt), true);
  assert.equal(greetsPromptly(plain), false);
  const fronts = [await front(plain), await front(prompt)];
  try {
    for (const f of fronts) {
      const device = await SmtpDevice.connect(f.port);
      const greeting = await device.reply();
      assert.equal(greeting.code, 220);
      assert.equal((await device.command('EHLO printer')).code, 250);
      device.close();
    }
    assert.deepEqual(fronts[0]!.readyOnReturn, [false]);
    assert.deepEqual(fronts[1]!.readyOnReturn, [true]);
  } finally {
    for (const f of fronts) f.close();
    await Promise.all([plain, prompt].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
});

test('greetPromptly keeps the maxClients refusal (421)', async () => {
  const smtp = greetPromptly(server(1));
  const f = await front(smtp);
  try {
    const first = await SmtpDevice.connect(f.port);
    assert.equal((await first.reply()).code, 220);
    const second = await SmtpDevice.connect(f.port);
    const refused = await second.reply();
    assert.equal(refused.code, 421);
    assert.match(refused.text, /Too many connected clients/);
    first.close();
    second.close();
  } finally {
    f.close();
    await new Promise<void>((r) => smtp.close(() => r()));
  }
});
