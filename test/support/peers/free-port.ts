/**
 * Free TCP ports on loopback, for servers whose port must be known before they start (a relay config names its
 * upstream's ports; Postfix and Dovecot take theirs from a config file). The ports are picked below the kernel's
 * ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by default), where a `listen(0)` never
 * lands: the relay's own port-0 listeners, the simulator and every other test file's port-0 servers started between
 * the reservation and its use can no longer take a reserved port (a test file once failed with EADDRINUSE on a
 * port its own daemon had been handed meanwhile, and then never exited). Each is checked by binding it; all are
 * held open together so they are distinct, then released. Two test files picking the same random port at the same
 * moment remains possible but rare (about 12,000 candidates); `startMailPeers` retries.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

const loopback = '127.0.0.1';
const LOWEST = 10_000;

/** The first port of the ephemeral range (what listen(0) may return), 32768 when it cannot be read. */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > LOWEST + 1000 ? first : 32768;
  } catch {
    return 32768;
  }
}

function tryListen(server: Server, port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = (): void => resolve(false);
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError);
      resolve(true);
    });
  });
}

/** `count` distinct free TCP ports on `host` (default 127.0.0.1), outside the ephemeral range. */
export async function freePorts(count: number, host = loopback): Promise<number[]> {
  const span = ephemeralStart() - LOWEST;
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < count; attempts++) {
      if (attempts > 200) throw new Error(`no free port found below the ephemeral range after ${attempts} tries`);
      const port = LOWEST + Math.floor(Math.random() * span);
      if (ports.includes(port)) continue;
      const server = createServer();
      if (await tryListen(server, port, host)) {
        servers.push(server);
        ports.push(port);
      }
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}
