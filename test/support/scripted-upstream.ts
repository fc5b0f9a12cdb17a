/**
 * A stand-in for Exchange Online's SMTP submission endpoint: a real SMTP server (smtp-server) on 127.0.0.1,
 * STARTTLS with a certificate from a throw-away CA, AUTH XOAUTH2 only and only after STARTTLS (like
 * smtp.office365.com:587). A test scripts its answers: which tokens authenticate, what each MAIL FROM, RCPT TO
 * and DATA gets. Messages are streamed to files (never held in memory) with their sha256, and the server
 * counts open connections so tests can check per-mailbox pacing.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { createPki } from '../../src/sandbox/pki.js';

/** An SMTP reply a script returns, e.g. `{ code: 451, message: '4.7.0 Temporary server error' }`. */
export interface Reply {
  code: number;
  message: string;
}

/** What the upstream answers; every hook is optional and may be swapped while a test runs. */
export interface UpstreamScript {
  /**
   * AUTH XOAUTH2: 'ok' accepts; 'challenge' answers like Exchange (334 with base64 JSON, then 535 after the
   * client's empty line); a Reply refuses at once. Default: accept any token. `n` counts auth attempts from 1.
   */
  auth?(attempt: { user: string; token: string; n: number }): 'ok' | 'challenge' | Reply;
  /** Reply to MAIL FROM (undefined: 250). */
  mailFrom?(address: string, n: number): Reply | undefined;
  /** Reply to each RCPT TO (undefined: 250). */
  rcptTo?(address: string): Reply | undefined;
  /** Reply after the final dot (undefined: 250); may take its time (a slow upstream). `n` counts DATA transfers from 1. */
  data?(message: { from: string; to: string[]; size: number }, n: number): Reply | undefined | Promise<Reply | undefined>;
}

export interface ReceivedMessage {
  from: string;
  to: string[];
  /** XOAUTH2 user and token of the session that sent it. */
  user: string;
  token: string;
  path: string;
  size: number;
  sha256: string;
}

export interface UpstreamTls {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

export interface ScriptedUpstream {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly caCertPem: string;
  script: UpstreamScript;
  /** Messages accepted with a 2xx after DATA, in order. */
  readonly received: ReceivedMessage[];
  readonly authAttempts: Array<{ user: string; token: string; accepted: boolean }>;
  /** Open connections now, the most open at once, all connections so far, and when each one opened (ms). */
  readonly connections: { open: number; maxOpen: number; total: number; openedAt: number[] };
  /** Every command a client sent (its verb only, e.g. RSET, MAIL), with the id of its connection and when (ms). */
  readonly commands: Array<{ connection: string; command: string; at: number }>;
  /** Destroys every open client socket at once (a network drop; no reply, no FIN first); returns how many. */
  dropConnections(): number;
  /** Resolves once `count` messages were accepted; rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  stop(): Promise<void>;
}

/** A CA and a server certificate for 127.0.0.1 and localhost (RSA key generation: make one per test file). */
export async function createUpstreamTls(): Promise<UpstreamTls> {
  const pki = await createPki('scripted upstream test CA');
  const { certPem, keyPem } = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
  return { caCertPem: pki.caCertPem, certPem, keyPem };
}

interface SessionAuth {
  user: string;
  token: string;
}

function smtpError(reply: Reply): Error {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}

/** Starts the upstream; `port` 0 (default) picks a free one, a fixed port brings one back after `stop()`. */
export async function startScriptedUpstream(opts: { dir: string; tls: UpstreamTls; port?: number; script?: UpstreamScript }): Promise<ScriptedUpstream> {
  const received: ReceivedMessage[] = [];
  const authAttempts: ScriptedUpstream['authAttempts'] = [];
  const connections = { open: 0, maxOpen: 0, total: 0, openedAt: [] as number[] };
  const commands: ScriptedUpstream['commands'] = [];
  // smtp-server reports each command it reads to its logger (debug, tnx 'command'); nothing else is kept.
  const ignore = () => undefined;
  const commandLog = {
    trace: ignore, info: ignore, warn: ignore, error: ignore, fatal: ignore,
    debug(entry: { tnx?: string; cid?: string; command?: string }) {
      if (entry.tnx === 'command' && entry.cid && entry.command) commands.push({ connection: entry.cid, command: entry.command, at: Date.now() });
    },
  };
  const sessionAuth = new Map<string, SessionAuth>();
  let mailFromCount = 0;
  let dataCount = 0;
  const state = { script: opts.script ?? {} };

  const server = new SMTPServer({
    secure: false,
    key: opts.tls.keyPem,
    cert: opts.tls.certPem,
    authMethods: ['XOAUTH2'],
    allowInsecureAuth: false,
    size: 512 * 1024 * 1024,
    logger: commandLog as unknown as SMTPServerOptions['logger'],
    disableReverseLookup: true,
    banner: 'scripted upstream ready',
    onConnect(_session, callback) {
      connections.open += 1;
      connections.total += 1;
      connections.openedAt.push(Date.now());
      connections.maxOpen = Math.max(connections.maxOpen, connections.open);
      callback();
    },
    onClose(session) {
      connections.open -= 1;
      sessionAuth.delete(session.id);
    },
    onAuth(auth, session, callback) {
      const user = auth.username ?? '';
      const token = auth.accessToken ?? '';
      const verdict = state.script.auth?.({ user, token, n: authAttempts.length + 1 }) ?? 'ok';
      authAttempts.push({ user, token, accepted: verdict === 'ok' });
      if (verdict === 'ok') {
        sessionAuth.set(session.id, { user, token });
        callback(null, { user });
      } else if (verdict === 'challenge') {
        callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://outlook.office.com/SMTP.Send' } });
      } else {
        callback(smtpError(verdict));
      }
    },
    onMailFrom(address, _session, callback) {
      mailFromCount += 1;
      const reply = state.script.mailFrom?.(address.address, mailFromCount);
      callback(reply && reply.code >= 400 ? smtpError(reply) : null);
    },
    onRcptTo(address, _session, callback) {
      const reply = state.script.rcptTo?.(address.address);
      callback(reply && reply.code >= 400 ? smtpError(reply) : null);
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      dataCount += 1;
      const n = dataCount;
      const path = join(opts.dir, `upstream-${Date.now()}-${n}.eml`);
      const hash = createHash('sha256');
      let size = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const to = session.envelope.rcptTo.map((r) => r.address);
      pipeline(stream, tap, createWriteStream(path)).then(
        async () => {
          const reply = await state.script.data?.({ from, to, size }, n);
          if (reply && reply.code >= 400) return callback(smtpError(reply));
          const auth = sessionAuth.get(session.id) ?? { user: '', token: '' };
          received.push({ from, to, user: auth.user, token: auth.token, path, size, sha256: hash.digest('hex') });
          callback(null, reply?.message ?? '2.0.0 OK queued as scripted');
        },
        (err: Error) => callback(err),
      );
    },
  });
  server.on('error', () => undefined); // a client resetting the socket is part of some tests

  const port = await new Promise<number>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const address = server.server.address();
      if (address && typeof address === 'object') resolve(address.port);
      else reject(new Error('scripted upstream has no port'));
    });
  });

  return {
    host: '127.0.0.1',
    port,
    caCertPem: opts.tls.caCertPem,
    get script() {
      return state.script;
    },
    set script(next: UpstreamScript) {
      state.script = next;
    },
    received,
    authAttempts,
    connections,
    commands,
    dropConnections() {
      for (const connection of server.connections) connection._socket.destroy();
      return server.connections.size;
    },
    async waitForMessages(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`scripted upstream: ${received.length} of ${count} messages after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return received.slice(0, count);
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
