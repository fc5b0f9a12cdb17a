/**
 * A scripted upstream IMAP or POP3 server over implicit TLS (like outlook.office365.com:993 / :995), with a
 * certificate from a throw-away CA: the test decides how each XOAUTH2 attempt goes ('ok', Exchange's error
 * challenge then a refusal, or a plain refusal), and reads back every line and connection the server saw, so it
 * can assert what reached the upstream (and that nothing did). After a login the server answers a few commands:
 * IMAP `CAPABILITY`, `LOGOUT`, `BLOB n` (an n-byte literal), anything else echoed; POP3 `QUIT`, `BLOB n`
 * (n bytes then `.`), anything else echoed.
 */
import { createServer, type TLSSocket } from 'node:tls';
import type { IssuedCertificate } from '../../../src/sandbox/pki.js';

/** 'limit': refused for a reason that is not the token (IMAP `NO [LIMIT]`, POP3 `-ERR [IN-USE]`). */
export type AuthDecision = 'ok' | 'challenge' | 'no' | 'limit';

export interface AuthAttempt {
  user: string;
  token: string;
  n: number;
}

export interface ScriptedServerOptions {
  protocol: 'imap' | 'pop3';
  certificate: IssuedCertificate;
  /** How each XOAUTH2 attempt goes; default 'ok'. */
  auth?: (attempt: AuthAttempt) => AuthDecision;
  /** Replaces the greeting (e.g. `* BYE busy`); null: accept the connection and say nothing. */
  greeting?: string | null;
  /** IMAP: put the capabilities in the tagged OK (Dovecot) rather than answer a later CAPABILITY (Exchange). */
  capabilitiesInOk?: boolean;
}

export interface ScriptedServer {
  readonly port: number;
  /** Connections accepted so far (TLS handshake done). */
  readonly connections: number;
  /** Every line received, in order, per connection (secrets included: test use only). */
  readonly lines: string[][];
  readonly attempts: AuthAttempt[];
  /** Sockets still open. */
  readonly open: number;
  close(): Promise<void>;
}

export const upstreamCapabilities = 'IMAP4rev1 IDLE NAMESPACE UIDPLUS SCRIPTED-UPSTREAM';
const challengeJson = Buffer.from('{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/"}').toString('base64');

function parseXOAuth2(base64: string): { user: string; token: string } {
  const text = Buffer.from(base64, 'base64').toString('utf8');
  const user = /user=([^\x01]*)\x01/.exec(text)?.[1] ?? '';
  const token = /auth=Bearer ([^\x01]*)\x01/.exec(text)?.[1] ?? '';
  return { user, token };
}

/** Calls `onLine` for each CRLF line; the returned function stops the line mode (for the rest: raw). */
function readLines(socket: TLSSocket, onLine: (line: string) => void): void {
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let i: number;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i).replace(/\r$/, '');
      buffer = buffer.slice(i + 1);
      onLine(line);
    }
  });
}

function blob(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = 0x41 + (i % 26);
  return out;
}

export async function startScriptedServer(o: ScriptedServerOptions): Promise<ScriptedServer> {
  const lines: string[][] = [];
  const attempts: AuthAttempt[] = [];
  const sockets = new Set<TLSSocket>();
  let connections = 0;
  const decide = (a: AuthAttempt): AuthDecision => o.auth?.(a) ?? 'ok';

  const server = createServer({ cert: o.certificate.certPem, key: o.certificate.keyPem }, (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const seen: string[] = [];
    lines.push(seen);
    const send = (line: string) => socket.write(`${line}\r\n`);
    const session = o.protocol === 'imap' ? imapSession(send, socket, attempts, decide, o) : pop3Session(send, socket, attempts, decide);
    if (o.greeting === null) return;
    send(o.greeting ?? (o.protocol === 'imap' ? '* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] scripted upstream ready' : '+OK scripted upstream ready'));
    readLines(socket, (line) => {
      seen.push(line);
      session(line);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get connections() {
      return connections;
    },
    lines,
    attempts,
    get open() {
      return sockets.size;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

type Send = (line: string) => void;

function imapSession(send: Send, socket: TLSSocket, attempts: AuthAttempt[], decide: (a: AuthAttempt) => AuthDecision, o: ScriptedServerOptions): (line: string) => void {
  let loggedIn = false;
  let pendingTag: string | null = null;
  return (line) => {
    if (pendingTag !== null) {
      // The client's answer to the error challenge must be an empty line.
      send(line === '' ? `${pendingTag} NO [AUTHENTICATIONFAILED] Authentication failed.` : `${pendingTag} BAD Expected an empty response`);
      pendingTag = null;
      return;
    }
    const [tag = '', name = '', ...rest] = line.split(' ');
    const command = name.toUpperCase();
    if (!loggedIn && command === 'AUTHENTICATE' && rest[0]?.toUpperCase() === 'XOAUTH2' && rest[1]) {
      const attempt = { ...parseXOAuth2(rest[1]), n: attempts.length + 1 };
      attempts.push(attempt);
      const decision = decide(attempt);
      if (decision === 'ok') {
        loggedIn = true;
        send(o.capabilitiesInOk ? `${tag} OK [CAPABILITY ${upstreamCapabilities}] Logged in` : `${tag} OK AUTHENTICATE completed.`);
      } else if (decision === 'challenge') {
        pendingTag = tag;
        send(`+ ${challengeJson}`);
      } else if (decision === 'limit') {
        send(`${tag} NO [LIMIT] Maximum number of connections from user+IP exceeded`);
      } else {
        send(`${tag} NO AUTHENTICATE failed.`);
      }
    } else if (command === 'CAPABILITY') {
      send(`* CAPABILITY ${upstreamCapabilities}`);
      send(`${tag} OK CAPABILITY completed.`);
    } else if (!loggedIn) {
      send(`${tag} BAD Not logged in (scripted upstream)`);
    } else if (command === 'LOGOUT') {
      send('* BYE scripted upstream logging out');
      send(`${tag} OK LOGOUT completed.`);
      socket.end();
    } else if (command === 'BLOB') {
      const size = Number(rest[0]);
      socket.write(`* BLOB {${size}}\r\n`);
      socket.write(blob(size));
      send(`\r\n${tag} OK BLOB sent`);
    } else {
      send(`* ECHO ${line}`);
      send(`${tag} OK upstream`);
    }
  };
}

function pop3Session(send: Send, socket: TLSSocket, attempts: AuthAttempt[], decide: (a: AuthAttempt) => AuthDecision): (line: string) => void {
  let state: 'authorization' | 'waiting-xoauth2' | 'challenged' | 'transaction' = 'authorization';
  return (line) => {
    const command = line.split(' ')[0]!.toUpperCase();
    if (state === 'waiting-xoauth2') {
      const attempt = { ...parseXOAuth2(line), n: attempts.length + 1 };
      attempts.push(attempt);
      const decision = decide(attempt);
      if (decision === 'ok') {
        state = 'transaction';
        send('+OK User successfully authenticated.');
      } else if (decision === 'challenge') {
        state = 'challenged';
        send(`+ ${challengeJson}`);
      } else if (decision === 'limit') {
        state = 'authorization';
        send('-ERR [IN-USE] Mailbox is locked by another session');
      } else {
        state = 'authorization';
        send('-ERR Authentication failure: unknown user name or bad password.');
      }
    } else if (state === 'challenged') {
      state = 'authorization';
      send(line === '' ? '-ERR [AUTH] Authentication failed.' : '-ERR Expected an empty response');
    } else if (state === 'authorization') {
      if (line.toUpperCase() === 'AUTH XOAUTH2') {
        state = 'waiting-xoauth2';
        send('+ ');
      } else {
        send('-ERR Not logged in (scripted upstream)');
      }
    } else if (command === 'QUIT') {
      send('+OK scripted upstream signing off');
      socket.end();
    } else if (command === 'BLOB') {
      const size = Number(line.split(' ')[1]);
      socket.write('+OK blob follows\r\n');
      socket.write(blob(size));
      send('\r\n.');
    } else {
      send(`+OK echo ${line}`);
    }
  };
}
