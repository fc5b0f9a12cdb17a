/**
 * A minimal fast stand-in for Exchange Online's IMAPS (993) and POP3S (995), in a process of its own (forked by
 * bench/sessions.ts) so its sockets count against its own descriptor limit. It accepts any well-formed XOAUTH2
 * string carrying a bearer token (the token's validity is not what the bench measures), holds IDLE, and serves
 * one message of a given size (IMAP `FETCH 1 BODY[]`, POP3 `RETR 1`) from memory. The sandbox mailbox is not used
 * here: it has no IDLE, keeps a maildir per session and caps connections at 100.
 */
import { createServer, type TLSSocket } from 'node:tls';

interface Start {
  certPem: string;
  keyPem: string;
  messageBytes: number;
}

function message(size: number): Buffer {
  const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
  const head = Buffer.from('From: bench@upstream.test\r\nSubject: 25 MB\r\n\r\n');
  const out = Buffer.alloc(size, 'x');
  head.copy(out, 0);
  for (let at = head.length; at + line.length <= size; at += line.length) line.copy(out, at);
  out.write('\r\n', size - 2);
  return out;
}

function validXOAuth2(base64: string): boolean {
  const text = Buffer.from(base64, 'base64').toString('utf8');
  return /^user=[^\x01]+\x01auth=Bearer [^\x01]+\x01\x01$/.test(text);
}

/** Calls `onLine` for each CRLF line; the socket is the session's whole state. */
function lines(socket: TLSSocket, onLine: (line: string) => void): void {
  let pending = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let lf;
    while ((lf = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, lf).replace(/\r$/, '');
      pending = pending.slice(lf + 1);
      onLine(line);
    }
    if (pending.length > 64 * 1024) socket.destroy();
  });
  socket.on('error', () => undefined);
}

function imapSession(socket: TLSSocket, body: Buffer): void {
  let authed = false;
  let idleTag: string | null = null;
  socket.write('* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] fake upstream IMAP ready\r\n');
  lines(socket, (line) => {
    if (idleTag) {
      if (line.toUpperCase() === 'DONE') socket.write(`${idleTag} OK IDLE terminated\r\n`);
      idleTag = null;
      return;
    }
    const [tag = '*', name = '', ...args] = line.split(' ');
    switch (name.toUpperCase()) {
      case 'AUTHENTICATE':
        authed = args[0]?.toUpperCase() === 'XOAUTH2' && validXOAuth2(args[1] ?? '');
        return void socket.write(authed ? `${tag} OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] AUTHENTICATE completed\r\n` : `${tag} NO AUTHENTICATE failed.\r\n`);
      case 'CAPABILITY':
        return void socket.write(`* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n${tag} OK CAPABILITY completed\r\n`);
      case 'SELECT':
      case 'EXAMINE':
        return void socket.write(`* 1 EXISTS\r\n* FLAGS (\\Seen)\r\n${tag} OK [READ-WRITE] SELECT completed\r\n`);
      case 'FETCH':
        socket.write(`* 1 FETCH (BODY[] {${body.length}}\r\n`);
        socket.write(body);
        return void socket.write(`)\r\n${tag} OK FETCH completed\r\n`);
      case 'IDLE':
        idleTag = tag;
        return void socket.write('+ idling\r\n');
      case 'NOOP':
        return void socket.write(`${tag} OK NOOP completed\r\n`);
      case 'LOGOUT':
        return void socket.end(`* BYE bye\r\n${tag} OK LOGOUT completed\r\n`);
      default:
        return void socket.write(`${tag} BAD unknown\r\n`);
    }
  });
}

function pop3Session(socket: TLSSocket, body: Buffer): void {
  let awaitingXOAuth2 = false;
  socket.write('+OK fake upstream POP3 ready\r\n');
  lines(socket, (line) => {
    if (awaitingXOAuth2) {
      awaitingXOAuth2 = false;
      return void socket.write(validXOAuth2(line) ? '+OK User successfully authenticated.\r\n' : '-ERR Authentication failure: unknown user name or bad password.\r\n');
    }
    const [name = '', ...args] = line.split(' ');
    switch (name.toUpperCase()) {
      case 'AUTH':
        awaitingXOAuth2 = args[0]?.toUpperCase() === 'XOAUTH2';
        return void socket.write(awaitingXOAuth2 ? '+ \r\n' : '-ERR unsupported\r\n');
      case 'STAT':
        return void socket.write(`+OK 1 ${body.length}\r\n`);
      case 'RETR':
        socket.write(`+OK ${body.length} octets\r\n`);
        socket.write(body);
        return void socket.write('.\r\n');
      case 'NOOP':
        return void socket.write('+OK\r\n');
      case 'QUIT':
        return void socket.end('+OK bye\r\n');
      default:
        return void socket.write('-ERR unknown\r\n');
    }
  });
}

async function listen(start: Start, session: (socket: TLSSocket, body: Buffer) => void, body: Buffer): Promise<number> {
  const server = createServer({ cert: start.certPem, key: start.keyPem, minVersion: 'TLSv1.2' }, (socket) => {
    socket.setNoDelay(true);
    session(socket, body);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  return (server.address() as { port: number }).port;
}

process.on('message', (start: Start) => {
  const body = message(start.messageBytes);
  Promise.all([listen(start, imapSession, body), listen(start, pop3Session, body)])
    .then(([imapPort, pop3Port]) => process.send!({ imapPort, pop3Port }))
    .catch((err: unknown) => {
      process.stderr.write(`fake upstream: ${String(err)}\n`);
      process.exit(1);
    });
});
process.on('disconnect', () => process.exit(0));
