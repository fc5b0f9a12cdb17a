/**
 * Bounded work before login, on real sockets: the per-listener connection cap (reached, answered with the
 * protocol's "too busy" reply, released), the default cap of 1,000 with 1,100 idle connections from 55 loopback
 * addresses, and the cap on commands before login (10,000 NOOPs used to be answered one by one).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayMetrics } from '../../src/admin/metrics.js';
import { DeviceDirectory } from '../../src/auth/device-directory.js';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import { SmtpListener } from '../../src/smtp/listener.js';
import { Spool } from '../../src/smtp/spool/index.js';
import { parsePrometheusText, valueOf } from '../admin/support/prometheus-text.js';
import { LineClient } from '../support/peers/line-client.js';
import { closedByRelay, useFrontHarness } from './support/front-harness.js';

const imap = useFrontHarness('imap');
const pop3 = useFrontHarness('pop3');

async function smtpListener(smtp: Record<string, unknown>) {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-caps-'));
  const config = configSchema.parse({
    stateDir: dir,
    accounts: { scanner: { mailbox: 'scanner@contoso.com', tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } },
    devices: [{ name: 'fax', account: 'scanner', allowFrom: ['127.0.0.1/32'] }],
    smtp: { listen: [{ host: '127.0.0.1', port: 0 }], ...smtp },
  });
  const spool = await Spool.open(dir, {});
  const metrics = new RelayMetrics({ processMetrics: false });
  const listener = new SmtpListener({ config, listen: config.smtp.listen[0]!, devices: new DeviceDirectory(config.devices), throttle: new FailureThrottle(), tls: null, sink: spool, logger: createLogger({ level: 'silent' }), metrics });
  const port = await listener.listen();
  return {
    port,
    async refused(reason: string) {
      return valueOf(parsePrometheusText((await metrics.exposition()).body), 'xoauth2_relay_connections_refused_total', { protocol: 'smtp', reason });
    },
    async close() {
      await listener.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Opens a raw connection and resolves its first line (the greeting or the refusal). */
function firstLine(port: number, localAddress: string): Promise<{ socket: Socket; line: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve({ socket, line: text.slice(0, nl).replace(/\r$/, '') });
    });
  });
}

describe('per-listener connection cap', () => {
  test('IMAP: the cap is reached (BYE [UNAVAILABLE]) and released when a connection closes', async () => {
    const server = await imap.upstream();
    const { port } = await imap.relay({ upstreamPort: server.port, limits: { maxConnectionsPerListener: 5 } });
    const held: LineClient[] = [];
    for (let i = 0; i < 5; i += 1) {
      const client = await LineClient.connect({ port, localAddress: `127.0.3.${i + 1}`, timeoutMs: 5000 });
      imap.cleanup(async () => client.close());
      assert.match(await client.readLine(), /^\* OK /);
      held.push(client);
    }
    const refused = await LineClient.connect({ port, localAddress: '127.0.3.99', timeoutMs: 5000 });
    assert.deepEqual(await closedByRelay(refused), ['* BYE [UNAVAILABLE] Too many connections, try again later']);
    held[0]!.close();
    await new Promise((r) => setTimeout(r, 200));
    const next = await LineClient.connect({ port, localAddress: '127.0.3.99', timeoutMs: 5000 });
    imap.cleanup(async () => next.close());
    assert.match(await next.readLine(), /^\* OK /, 'a slot was given back');
    assert.match(imap.world().logText(), /LISTENER_BUSY/);
  });

  test('SMTP: 421 4.3.2 over the cap, a new connection accepted once one closes', async () => {
    const smtp = await smtpListener({ maxConnectionsPerListener: 3 });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 3; i += 1) {
        const { socket, line } = await firstLine(smtp.port, `127.0.4.${i + 1}`);
        sockets.push(socket);
        assert.match(line, /^220 /);
      }
      const over = await firstLine(smtp.port, '127.0.4.99');
      sockets.push(over.socket);
      assert.equal(over.line, '421 4.3.2 Too many connections, try again later');
      sockets[0]!.destroy();
      await new Promise((r) => setTimeout(r, 200));
      const again = await firstLine(smtp.port, '127.0.4.99');
      sockets.push(again.socket);
      assert.match(again.line, /^220 /);
      assert.equal(await smtp.refused('listener-full'), 1, 'counted in /metrics');
    } finally {
      for (const s of sockets) s.destroy();
      await smtp.close();
    }
  });

  test('SMTP with the defaults: of 1,100 idle connections from 55 addresses, 1,000 are held and 100 refused', { timeout: 120_000 }, async () => {
    const smtp = await smtpListener({});
    const sockets: Socket[] = [];
    try {
      const lines: string[] = [];
      for (let a = 0; a < 55; a += 1) {
        const batch = await Promise.all(Array.from({ length: 20 }, () => firstLine(smtp.port, `127.0.5.${a + 1}`)));
        for (const { socket, line } of batch) {
          sockets.push(socket);
          lines.push(line);
        }
      }
      const held = lines.filter((l) => l.startsWith('220 ')).length;
      const refused = lines.filter((l) => l.startsWith('421 4.3.2')).length;
      console.log(`# connection cap: ${lines.length} idle connections from 55 addresses: ${held} held, ${refused} refused (421 4.3.2)`);
      assert.equal(held, 1000);
      assert.equal(refused, 100);
    } finally {
      for (const s of sockets) s.destroy();
      await smtp.close();
    }
  });
});

describe('commands before login', () => {
  test('IMAP: 10,000 pipelined NOOPs get 50 answers, then BYE and the connection is closed', async () => {
    const server = await imap.upstream();
    const { port } = await imap.relay({ upstreamPort: server.port });
    const { client } = await imap.device(port);
    // The relay closes while these are still arriving: the write may fail, which is the point.
    client.write(Array.from({ length: 10_000 }, (_, i) => `n${i} NOOP\r\n`).join('')).catch(() => undefined);
    const seen = await closedByRelay(client);
    assert.equal(seen.filter((l) => / OK NOOP completed$/.test(l)).length, 50);
    assert.equal(seen.at(-1), '* BYE Too many commands before login');
    assert.equal(server.connections, 0);
  });

  test('POP3: 10,000 pipelined USER commands get 50 answers, then -ERR and the connection is closed', async () => {
    const server = await pop3.upstream();
    const { port } = await pop3.relay({ upstreamPort: server.port });
    const { client } = await pop3.device(port);
    client.write(Array.from({ length: 10_000 }, (_, i) => `USER u${i}\r\n`).join('')).catch(() => undefined);
    const seen = await closedByRelay(client);
    assert.equal(seen.filter((l) => l === '+OK Send PASS').length, 50);
    assert.equal(seen.at(-1), '-ERR Too many commands before login');
    assert.equal(server.connections, 0);
  });
});
