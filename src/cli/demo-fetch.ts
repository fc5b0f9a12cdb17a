/**
 * The demo's email-to-print device: fetches the newest message through the relay's POP3 listener with
 * USER/PASS, exactly as an old MFP does (RFC 1939), and returns its Subject line.
 */
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

export async function fetchNewestSubjectOverPop3(port: number, user: string, pass: string): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setTimeout(15_000, () => socket.destroy(new Error('POP3 timeout')));
  const lines = createInterface({ input: socket, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error('POP3 connection closed');
    return r.value;
  };
  const expectOk = async (what: string) => {
    const line = await next();
    if (!line.startsWith('+OK')) throw new Error(`${what}: ${line}`);
    return line;
  };
  try {
    await expectOk('greeting');
    socket.write(`USER ${user}\r\n`);
    await expectOk('USER');
    socket.write(`PASS ${pass}\r\n`);
    await expectOk('PASS');
    socket.write('STAT\r\n');
    const count = Number(/^\+OK (\d+)/.exec(await expectOk('STAT'))?.[1] ?? 0);
    if (count === 0) throw new Error('the mailbox is empty');
    socket.write(`RETR ${count}\r\n`);
    await expectOk('RETR');
    let subject = '(no subject)';
    for (let line = await next(); line !== '.'; line = await next()) {
      if (/^Subject:/i.test(line) && subject === '(no subject)') subject = line;
    }
    socket.write('QUIT\r\n');
    await next().catch(() => '');
    return subject;
  } finally {
    socket.destroy();
  }
}
