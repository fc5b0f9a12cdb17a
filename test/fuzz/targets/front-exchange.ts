/**
 * What the IMAP and POP3 front targets share: a relay listener with a scripted upstream (no device credential in
 * any generated input, so nothing may reach it), one raw connection per input that sends the input's chunks and
 * collects what the relay says until it closes, and the checks every input must pass.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { FailureThrottle } from '../../../src/auth/failure-throttle.js';
import { fakeTokens, relayWorld, startRelay, type RelayWorld, type StartedRelay } from '../../transport/support/relay-fixture.js';
import { startScriptedServer, type ScriptedServer } from '../../transport/support/scripted-mail-server.js';

export interface FrontWorld {
  world: RelayWorld;
  server: ScriptedServer;
  relay: StartedRelay;
  stop(): Promise<void>;
}

export async function startFrontWorld(protocol: 'imap' | 'pop3'): Promise<FrontWorld> {
  const world = await relayWorld();
  const server = await startScriptedServer({ protocol, certificate: world.upstreamCertificate, capabilitiesInOk: true });
  // The back-off has tests of its own; here it would only turn later inputs into refusals.
  const lenient = { freeFailures: 1_000_000 };
  const throttle = new FailureThrottle({ ...lenient, perUser: lenient, perPair: lenient });
  const relay = await startRelay(protocol, world, { upstreamPort: server.port, tokens: fakeTokens(), throttle, timeouts: { preAuthMs: 3000, lingerMs: 500 } });
  return {
    world,
    server,
    relay,
    async stop() {
      await relay.close();
      await server.close();
    },
  };
}

/** Sends `chunks` on a new connection; half-closes once the relay has been quiet a moment; resolves every line it said. */
export function exchange(port: number, chunks: Buffer[]): Promise<{ lines: string[]; bytes: number; closedMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    let quiet: NodeJS.Timeout | undefined;
    const settle = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(() => socket.end(), 40);
    };
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the relay did not close within 8 s (said ${Buffer.concat(received).length} bytes)`));
    }, 8000);
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      settle();
    });
    socket.on('data', (d: Buffer) => {
      received.push(d);
      settle();
    });
    socket.on('error', () => undefined); // a reset after the relay closed is an ending like another
    socket.on('close', () => {
      clearTimeout(quiet);
      clearTimeout(deadline);
      const all = Buffer.concat(received);
      const text = all.toString('latin1');
      const lines = text.split('\r\n');
      if (lines.at(-1) === '') lines.pop();
      resolve({ lines, bytes: all.length, closedMs: performance.now() - started });
    });
  });
}

/** The checks after each input: grammar of every line, bounded output, nothing upstream, no session left over. */
export async function checkFront(front: FrontWorld, said: { lines: string[]; bytes: number }, valid: RegExp): Promise<void> {
  for (const line of said.lines) assert.match(line, valid, `not a valid reply line: ${JSON.stringify(line.slice(0, 200))}`);
  assert.ok(said.lines.every((l) => !l.includes('\n') && !l.includes('\r')), 'a bare CR or LF in a reply');
  // At most maxCommandsBeforeLogin commands are answered (a few lines each), each line at most a tag plus text.
  assert.ok(said.bytes <= 60 * (8 * 1024 + 512), `${said.bytes} bytes of replies`);
  assert.equal(front.server.connections, 0, 'something reached the upstream without a successful login');
  for (let i = 0; i < 100 && front.relay.listener.registry.count() > 0; i += 1) await new Promise((r) => setTimeout(r, 20));
  assert.equal(front.relay.listener.registry.count(), 0, 'a session outlived its connection');
}
