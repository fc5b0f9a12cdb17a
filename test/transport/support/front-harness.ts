/**
 * What every IMAP/POP3 front test file needs: the world (certificates, devices, log) made once per file, a
 * scripted upstream and a relay listener per test, device connections, and the after-check that no device
 * password and no access token reached the log. Everything started is stopped after the file.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { LineClient } from '../../support/peers/line-client.js';
import { fakeTokens, relayWorld, startRelay, type FakeTokens, type RelayOptions, type RelayWorld, type StartedRelay } from './relay-fixture.js';
import { startScriptedServer, type ScriptedServer, type ScriptedServerOptions } from './scripted-mail-server.js';

export interface FrontHarness {
  world(): RelayWorld;
  upstream(o?: Partial<ScriptedServerOptions>): Promise<ScriptedServer>;
  relay(o: Partial<RelayOptions> & { upstreamPort: number }): Promise<StartedRelay & { tokens: FakeTokens }>;
  device(port: number, o?: { tls?: boolean }): Promise<{ client: LineClient; greeting: string }>;
  /** Registers something to stop after the file. */
  cleanup(stop: () => Promise<void>): void;
}

export function useFrontHarness(protocol: 'imap' | 'pop3'): FrontHarness {
  let world: RelayWorld;
  const cleanups: Array<() => Promise<void>> = [];
  before(async () => {
    world = await relayWorld();
  });
  after(async () => {
    for (const stop of cleanups.reverse()) await stop();
    const log = world.logText();
    for (const secret of world.secrets()) assert.ok(!log.includes(secret), 'a device secret reached the log');
    assert.ok(!/token-\d-x{40}/.test(log), 'an access token reached the log');
  });
  return {
    world: () => world,
    cleanup: (stop) => void cleanups.push(stop),
    async upstream(o = {}) {
      const server = await startScriptedServer({ protocol, certificate: world.upstreamCertificate, ...o });
      cleanups.push(() => server.close());
      return server;
    },
    async relay(o) {
      const tokens = (o.tokens as FakeTokens | undefined) ?? fakeTokens();
      const started = await startRelay(protocol, world, { ...o, tokens });
      cleanups.push(() => started.close());
      return { ...started, tokens };
    },
    async device(port, o = {}) {
      const client = await LineClient.connect({ port, tls: o.tls, ca: world.caCertPem, timeoutMs: 5000 });
      cleanups.push(async () => client.close());
      return { client, greeting: await client.readLine() };
    },
  };
}

/** Reads until the relay closes the connection; returns the lines it said before. */
export async function closedByRelay(client: LineClient): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    try {
      seen.push(await client.readLine());
    } catch (err) {
      assert.match(String(err), /closed|ECONNRESET/);
      return seen;
    }
  }
}
