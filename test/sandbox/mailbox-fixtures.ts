/**
 * Shared set-up for the sandbox mailbox tests: a throw-away CA and server certificate, an RS256 key that
 * plays the identity simulator (tokens are signed here, so these tests do not depend on the simulator),
 * a running mailbox in a temp dir, and a byte-exact POP3 client over node:tls.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { SignJWT, exportSPKI, generateKeyPair, type CryptoKey } from 'jose';
import { createPki } from '../../src/sandbox/pki.js';
import { startSandboxMailbox, type SandboxMailbox, type SandboxMailboxOptions } from '../../src/sandbox/mailbox/mailbox.js';

export const TENANT = '11111111-2222-4333-8444-555555555555';
export const ISSUER = `https://sts.windows.net/${TENANT}/`;
export const DELEGATED_AUDIENCE = 'https://outlook.office.com';
export const APP_AUDIENCE = 'https://outlook.office365.com';
export const KID = 'sandbox-test-key';
export const ALL_SCOPES = 'SMTP.Send IMAP.AccessAsUser.All POP.AccessAsUser.All';

/** A signing key like the simulator's. */
export interface TestSigner {
  privateKey: CryptoKey;
  publicKeyPem: string;
}

export async function createSigner(): Promise<TestSigner> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, publicKeyPem: await exportSPKI(publicKey) };
}

export interface TokenShape {
  claims: Record<string, unknown>;
  /** Seconds from now; negative for an expired token. */
  expiresInSec?: number;
  kid?: string;
  signer?: TestSigner;
}

/** Signs an access token shaped like Entra's v1.0 tokens for Exchange Online. */
export async function signToken(defaultSigner: TestSigner, shape: TokenShape): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + (shape.expiresInSec ?? 3600);
  return new SignJWT({ iss: ISSUER, iat: Math.min(now, exp - 60), nbf: Math.min(now, exp - 60), exp, ver: '1.0', ...shape.claims })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: shape.kid ?? KID })
    .sign((shape.signer ?? defaultSigner).privateKey);
}

/** Claims of a delegated token for `upn`. */
export function userClaims(upn: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { aud: DELEGATED_AUDIENCE, idtyp: 'user', upn, preferred_username: upn, scp: ALL_SCOPES, ...extra };
}

/** Claims of an app-only token with `roles`. */
export function appClaims(roles: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { aud: APP_AUDIENCE, idtyp: 'app', appid: 'c11e4700-0000-4000-8000-000000000009', roles, ...extra };
}

export interface MailboxFixture {
  mailbox: SandboxMailbox;
  caCertPem: string;
  maildir: string;
  signer: TestSigner;
  /** A valid delegated token for `upn` (all three scopes). */
  userToken(upn: string, extra?: Record<string, unknown>): Promise<string>;
  token(shape: TokenShape): Promise<string>;
  /** PUT to the control API: one mailbox's emulated Exchange settings (`mailbox` = 'tenant' for the tenant's). */
  setRules(mailbox: string, rules: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A PUT to the sandbox mailbox's control API; throws with the API's words on a non-2xx answer. */
export async function setMailboxRules(controlUrl: string, mailbox: string, rules: Record<string, unknown>): Promise<Record<string, unknown>> {
  const url = mailbox === 'tenant' ? `${controlUrl}/tenant` : `${controlUrl}/mailboxes/${encodeURIComponent(mailbox)}`;
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`control API ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/** Starts a sandbox mailbox in a fresh temp dir. */
export async function startMailboxFixture(overrides: Partial<SandboxMailboxOptions> = {}): Promise<MailboxFixture> {
  const pki = await createPki('mailbox test CA');
  const tls = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
  const signer = await createSigner();
  const maildir = await mkdtemp(join(tmpdir(), 'sandbox-mailbox-'));
  const mailbox = await startSandboxMailbox({
    tls,
    tokens: { publicKeyPem: signer.publicKeyPem, kid: KID, issuers: [ISSUER], audiences: [DELEGATED_AUDIENCE, APP_AUDIENCE] },
    maildir,
    ...overrides,
  });
  return {
    mailbox,
    caCertPem: pki.caCertPem,
    maildir,
    signer,
    userToken: (upn, extra) => signToken(signer, { claims: userClaims(upn, extra) }),
    token: (shape) => signToken(signer, shape),
    setRules: (address, rules) => setMailboxRules(mailbox.controlUrl, address, rules),
    async close() {
      await mailbox.close();
      await rm(maildir, { recursive: true, force: true });
    },
  };
}

/**
 * A POP3 client over implicit TLS that keeps bytes as bytes: status lines as text, multi-line bodies as
 * Buffers with the dot-stuffing undone (RFC 1939 §3), so a RETR can be compared with the stored file.
 */
export class Pop3TestClient {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private closed = false;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, ca: string): Promise<Pop3TestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () => resolve(new Pop3TestClient(socket)));
      socket.once('error', reject);
    });
  }

  /** True once the server closed the connection and every byte was read. */
  get ended(): boolean {
    return this.closed && this.buffer.length === 0;
  }

  send(line: string | Buffer): void {
    this.socket.write(Buffer.concat([Buffer.from(line), Buffer.from('\r\n')]));
  }

  /** Sends a command and returns the status line. */
  async command(line: string): Promise<string> {
    this.send(line);
    return this.line();
  }

  /** The next line (without CRLF). */
  async line(timeoutMs = 10_000): Promise<string> {
    return (await this.until((b) => b.indexOf('\r\n'), 2, timeoutMs)).toString('latin1');
  }

  /** A multi-line body up to the terminating "." line, un-dot-stuffed. */
  async body(timeoutMs = 60_000): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.readBody((piece) => parts.push(piece), timeoutMs);
    return Buffer.concat(parts);
  }

  /**
   * Reads a multi-line body piece by piece, undoing the dot-stuffing (RFC 1939 §3), and hands each piece to
   * `sink` without keeping it: a 20 MB RETR costs this client no memory, so RSS measures the server.
   */
  async readBody(sink: (piece: Buffer) => void, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lineStart = true;
    for (;;) {
      while (this.buffer.length) {
        const lf = this.buffer.indexOf(0x0a);
        if (lf === -1) {
          // "." or ".\r" at a line start may still become the terminator: wait for the rest.
          if (lineStart && (this.buffer.equals(DOT) || this.buffer.equals(DOT_CR))) break;
          sink(lineStart && this.buffer[0] === 0x2e ? this.buffer.subarray(1) : this.buffer);
          this.buffer = Buffer.alloc(0);
          lineStart = false;
          break;
        }
        const line = this.buffer.subarray(0, lf + 1);
        this.buffer = this.buffer.subarray(lf + 1);
        if (lineStart && line.equals(TERMINATOR)) return;
        sink(lineStart && line[0] === 0x2e ? line.subarray(1) : line);
        lineStart = true;
      }
      if (this.closed) throw new Error('connection closed inside a multi-line response');
      if (Date.now() > deadline) throw new Error('timed out waiting for the end of a multi-line response');
      await this.wait(deadline - Date.now());
    }
  }

  /** Resolves when the server closes the connection. */
  async closedByServer(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('server kept the connection open');
      await this.wait(deadline - Date.now());
    }
  }

  close(): void {
    this.socket.destroy();
  }

  /** Takes bytes up to `find`'s index, dropping `skip` delimiter bytes after it. */
  private async until(find: (buffer: Buffer) => number, skip: number, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = find(this.buffer);
      if (at !== -1) {
        const taken = this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at + skip);
        return taken;
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer.toString('latin1').slice(0, 200))}`);
      if (Date.now() > deadline) throw new Error('timed out waiting for the server');
      await this.wait(deadline - Date.now());
    }
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiting = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }
}

const DOT = Buffer.from('.');
const DOT_CR = Buffer.from('.\r');
const TERMINATOR = Buffer.from('.\r\n');
