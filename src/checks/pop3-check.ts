/** POP3 check: the relay's own upstream login (AUTH XOAUTH2, one forced refresh on refusal), then STAT and QUIT. */
import type { Logger } from '../log.js';
import { RelayError } from '../errors.js';
import { pop3UpstreamDialect } from '../pop3/pop3-upstream.js';
import { UpstreamConnection } from '../transport/upstream-connect.js';
import { openUpstreamSession, type TokenSource } from '../transport/upstream-login.js';

export interface Pop3CheckOptions {
  account: string;
  tokens: TokenSource;
  host: string;
  port: number;
  extraCaPem: string | null;
  logger: Logger;
}

export async function checkPop3(o: Pop3CheckOptions): Promise<string> {
  const target = { host: o.host, port: o.port, extraCaPem: o.extraCaPem, connectTimeoutMs: 15_000, replyTimeoutMs: 30_000 };
  const session = await openUpstreamSession({ account: o.account, tokens: o.tokens, target, dialect: pop3UpstreamDialect, log: o.logger });
  const conn = UpstreamConnection.adopt(session.socket, session.leftover, target, o.logger);
  try {
    conn.send('STAT');
    const stat = await conn.readLine();
    const m = /^\+OK (\d+) (\d+)/.exec(stat);
    if (!m) throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${o.host}:${o.port} answered STAT with: ${stat.slice(0, 200)}`);
    conn.send('QUIT');
    await conn.readLine().catch(() => '');
    return `${o.host}:${o.port} accepted AUTH XOAUTH2 for ${session.mailbox}; the maildrop has ${m[1]} message${m[1] === '1' ? '' : 's'} (${m[2]} bytes)`;
  } finally {
    conn.destroy();
  }
}
