/**
 * splice() over real loopback sockets: device client ⇄ [relay: device socket | upstream socket] ⇄ upstream server.
 * Bytes untouched both ways, back-pressure (a slow device keeps the relay's buffers small), the teardown rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { splice, type SpliceOptions } from '../../src/transport/splice.js';

interface Rig {
  /** The device's own socket. */
  device: Socket;
  /** The upstream server's socket. */
  upstream: Socket;
  /** The relay's two sockets. */
  relayDevice: Socket;
  relayUpstream: Socket;
  close(): void;
}

async function rig(): Promise<Rig> {
  const upstreamServer = createServer();
  const relayServer = createServer();
  await Promise.all([once(upstreamServer.listen(0, '127.0.0.1'), 'listening'), once(relayServer.listen(0, '127.0.0.1'), 'listening')]);
  const port = (s: typeof relayServer) => (s.address() as { port: number }).port;
  const relayDevice = once(relayServer, 'connection');
  const upstreamSide = once(upstreamServer, 'connection');
  const device = connect(port(relayServer), '127.0.0.1');
  const relayUpstream = connect(port(upstreamServer), '127.0.0.1');
  const [[rd], [up]] = await Promise.all([relayDevice, upstreamSide, once(device, 'connect'), once(relayUpstream, 'connect')]);
  for (const s of [device, up, rd, relayUpstream] as Socket[]) s.on('error', () => undefined);
  return {
    device,
    upstream: up as Socket,
    relayDevice: rd as Socket,
    relayUpstream,
    close() {
      for (const s of [device, up, rd, relayUpstream] as Socket[]) s.destroy();
      upstreamServer.close();
      relayServer.close();
    },
  };
}

function collect(socket: Socket): { bytes: () => Buffer; ended: Promise<unknown> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return { bytes: () => Buffer.concat(chunks), ended: once(socket, 'close') };
}

const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const opts: SpliceOptions = { idleMs: 5000, lingerMs: 1000 };

test('bytes flow both ways untouched; leftovers go first; counts are reported', async () => {
  const r = await rig();
  const atUpstream = collect(r.upstream);
  const atDevice = collect(r.device);
  const s = splice(r.relayDevice, r.relayUpstream, { ...opts, toUpstream: Buffer.from('pipelined\r\n'), toDevice: Buffer.from('* untagged\r\n') });
  r.device.write(every);
  r.upstream.write(Buffer.concat([every, every]));
  await sleep(100);
  assert.deepEqual(atUpstream.bytes(), Buffer.concat([Buffer.from('pipelined\r\n'), every]));
  assert.deepEqual(atDevice.bytes(), Buffer.concat([Buffer.from('* untagged\r\n'), every, every]));
  r.device.end();
  const result = await s.done;
  assert.equal(result.end, 'device-closed');
  assert.equal(result.bytesFromDevice, 256);
  assert.equal(result.bytesFromUpstream, 512);
  r.close();
});

test('back-pressure: a device that stops reading holds the upstream back; the relay buffers stay small; all 40 MB arrive', async () => {
  const r = await rig();
  const total = 40 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 13) % 251;
  const sent = createHash('sha256');
  const received = createHash('sha256');
  let receivedBytes = 0;
  const s = splice(r.relayDevice, r.relayUpstream, opts);
  r.device.pause();
  let written = 0;
  const writer = (async () => {
    while (written < total) {
      sent.update(chunk);
      written += chunk.length;
      if (!r.upstream.write(chunk)) await once(r.upstream, 'drain');
    }
    r.upstream.end();
  })();
  await sleep(500);
  const held = r.relayDevice.writableLength + r.relayUpstream.readableLength;
  assert.ok(held < 2 * 1024 * 1024, `relay holds ${held} bytes`);
  assert.ok(written < total / 2, `the upstream could write ${written} bytes into a stalled pipe`);
  r.device.on('data', (c: Buffer) => {
    received.update(c);
    receivedBytes += c.length;
  });
  r.device.resume();
  await writer;
  await once(r.device, 'end');
  assert.equal(receivedBytes, total);
  assert.equal(received.digest('hex'), sent.digest('hex'));
  r.device.end();
  assert.equal((await s.done).end, 'upstream-closed');
  r.close();
});

test('the upstream closes after its last reply: the device gets every byte, then the connection ends', async () => {
  const r = await rig();
  const atDevice = collect(r.device);
  const s = splice(r.relayDevice, r.relayUpstream, opts);
  r.upstream.end('* BYE logging out\r\na OK LOGOUT\r\n');
  await atDevice.ended;
  assert.equal(atDevice.bytes().toString(), '* BYE logging out\r\na OK LOGOUT\r\n');
  assert.equal((await s.done).end, 'upstream-closed');
  r.close();
});

test('a device that vanishes (reset) takes the upstream connection down', async () => {
  const r = await rig();
  const atUpstream = collect(r.upstream);
  const s = splice(r.relayDevice, r.relayUpstream, opts);
  r.device.resetAndDestroy();
  await atUpstream.ended;
  assert.match((await s.done).end, /^device-(error|closed)$/);
  r.close();
});

test('idle timeout closes both sides; close() ends a session at once', async () => {
  const r = await rig();
  const started = Date.now();
  const s = splice(r.relayDevice, r.relayUpstream, { idleMs: 200 });
  assert.equal((await s.done).end, 'idle-timeout');
  assert.ok(Date.now() - started >= 190);
  r.close();

  const r2 = await rig();
  const s2 = splice(r2.relayDevice, r2.relayUpstream, opts);
  s2.close();
  assert.equal((await s2.done).end, 'shutdown');
  r2.close();
});
