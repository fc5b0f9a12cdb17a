/**
 * Free TCP ports on loopback, found by binding port 0 and reading what the kernel chose.
 * All sockets are held open together so the ports are distinct, then released for the daemon to bind.
 * (A small race remains: another process could take a port in between; `startMailPeers` retries.)
 */
import { createServer, type Server } from 'node:net';

const loopback = '127.0.0.1';

function listenOnEphemeralPort(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address && typeof address === 'object') resolve(address.port);
      else reject(new Error('listening socket has no port'));
    });
  });
}

/** `count` distinct free TCP ports on `host` (default 127.0.0.1). */
export async function freePorts(count: number, host = loopback): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(servers.map((server) => listenOnEphemeralPort(server, host)));
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))),
    );
  }
}
