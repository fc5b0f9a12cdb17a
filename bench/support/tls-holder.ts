/**
 * The baseline for a held session's memory: a process that does nothing but hold idle TLS client connections to
 * the fake upstream (one shared SecureContext, IMAP greeting read, nothing else). Its RSS per connection is what
 * Node and OpenSSL cost for the upstream half of a session before the relay adds anything. IPC: `{ port, caPem,
 * count }` → `{ baseKb, heldKb, held }`.
 */
import { readFileSync } from 'node:fs';
import { connect, createSecureContext, rootCertificates, type TLSSocket } from 'node:tls';

interface Request {
  port: number;
  caPem: string;
  count: number;
}

const rssKb = (): number => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const held: TLSSocket[] = [];

function open(port: number, secureContext: ReturnType<typeof createSecureContext>): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, secureContext, rejectUnauthorized: true }, () => socket.once('data', () => resolve()));
    socket.on('error', () => resolve());
    held.push(socket);
  });
}

process.on('message', (request: Request) => {
  void (async () => {
    const secureContext = createSecureContext({ ca: [...rootCertificates, request.caPem], minVersion: 'TLSv1.2' });
    gc();
    await new Promise((r) => setTimeout(r, 200));
    const baseKb = rssKb();
    for (let i = 0; i < request.count; i += 200) await Promise.all(Array.from({ length: Math.min(200, request.count - i) }, () => open(request.port, secureContext)));
    gc();
    await new Promise((r) => setTimeout(r, 500));
    process.send!({ baseKb, heldKb: rssKb(), held: held.filter((s) => !s.destroyed).length });
  })();
});
process.on('disconnect', () => process.exit(0));
