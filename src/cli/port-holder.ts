/**
 * Is a TCP port on 127.0.0.1 free, and if not, who holds it? Asked before the demo writes anything, so a second
 * `npm start` can say "port 2525 is held by pid 4242 (xoauth2-relay demo)" instead of failing half-way.
 *
 * The holder is found the way `ss -ltnp` does it, without needing ss: the listening socket's inode from
 * /proc/net/tcp{,6}, then the process with a file descriptor on that socket. Linux only, and only processes of
 * this user are visible: elsewhere the answer is just "in use".
 */
import { createServer } from 'node:net';
import { readFile, readdir, readlink } from 'node:fs/promises';

/** Resolves true when 127.0.0.1:port can be bound now (the probe is closed again at once). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

export interface PortHolder {
  pid: number;
  /** The process's whole command line (what it is decided on: a long install path must not cut off its words). */
  command: string;
  /** The same, shortened to 120 characters for a message. */
  shown: string;
}

/** The process listening on `port` (any local address), or null when it cannot be seen. */
export async function portHolder(port: number): Promise<PortHolder | null> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; column 9 is the inode.
      if (cols.length > 9 && cols[3] === '0A' && Number.parseInt(cols[1]!.split(':')[1]!, 16) === port) inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return null;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (!inode || !inodes.has(inode)) continue;
      const command = await commandLine(pid);
      return { pid: Number(pid), command, shown: command.length > 120 ? `${command.slice(0, 117)}...` : command };
    }
  }
  return null;
}

async function commandLine(pid: string): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.split('\0').filter(Boolean).join(' ') || '?';
}
