/**
 * One delivery attempt: on an authenticated connection kept from an earlier message of the same account (RSET
 * first), or on a new one. A new connection takes its token through the token services' one interface, and when
 * Exchange refuses the token (`535 5.7.3`), that interface's single forced refresh and one more login at once. A
 * second refusal is a temporary failure: whether the token is invalid is the token service's call (only the identity
 * platform's answers decide it), not the mail path's. No token is asked for per message: only per connection.
 */
import type { AccountTokens } from '../../auth/account-tokens.js';
import { RelayError, isRelayError } from '../../errors.js';
import { fingerprint, type Logger } from '../../log.js';
import type { SpooledEnvelope } from '../spool/envelope.js';
import { permanentFailureCode } from './exchange-replies.js';
import type { AuthenticatedConnection, MailboxConnections } from './mailbox-connections.js';
import { outcomeOfError, outcomeOfTokenError, withSendAsFix, type SendOutcome } from './send-outcome.js';
import type { UpstreamTarget } from './upstream-sender.js';

export interface AttemptContext {
  tokens: AccountTokens;
  connections: MailboxConnections;
  /** The pacing key of the account's mailbox (connections are limited and shared per key). */
  connectionKey: string;
  target: UpstreamTarget;
  mailbox: string;
  messagePath: string;
  log: Logger;
  /** Waits until the mailbox's rate window lets this message go, and counts it from then (MailboxPacing.restamp). */
  beforeSubmit?: () => Promise<void>;
  /** A token with less life left is refreshed before it is presented (High Volume Email refuses it: 501 5.5.127). */
  minTokenLifetimeMs?: number;
}

export async function deliverOnce(ctx: AttemptContext, envelope: SpooledEnvelope): Promise<SendOutcome> {
  const session = await authenticatedConnection(ctx, envelope);
  if ('kind' in session) return session;
  const { conn, reused } = session;
  try {
    await ctx.beforeSubmit?.();
  } catch (err) {
    ctx.connections.release(conn, false);
    throw err;
  }
  const { outcome, reusable } = await conn.connection.send({ mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: envelope.size, messagePath: ctx.messagePath });
  if (reused && outcome.kind === 'permanent' && outcome.code === 'UPSTREAM_NOT_AUTHENTICATED') {
    // `530 5.7.57` on a connection that did log in: the server forgot the login, the message is not at fault.
    ctx.connections.release(conn, false);
    return { kind: 'temporary', code: 'UPSTREAM_TEMPORARY', reply: outcome.reply };
  }
  ctx.connections.release(conn, reusable);
  return withSendAsFix(outcome, envelope, ctx.mailbox);
}

/** A connection kept from an earlier message, or a new one logged in; a SendOutcome when neither could be had. */
async function authenticatedConnection(ctx: AttemptContext, envelope: SpooledEnvelope): Promise<{ conn: AuthenticatedConnection; reused: boolean } | SendOutcome> {
  let lastRefusal = '';
  try {
    return await ctx.tokens.withAccessToken(envelope.account, async (token, attempt) => {
      const slot = await ctx.connections.acquire(ctx.connectionKey, envelope.account, ctx.target);
      if ('reused' in slot) return { conn: slot.reused, reused: true };
      const connection = slot.fresh;
      const generation = ctx.connections.generation(envelope.account);
      let accessToken: string;
      let expiresAt: Date;
      try {
        // The token before the connection: an account waiting for a sign-in opens nothing upstream.
        ({ token: accessToken, expiresAt } = await token());
      } catch (err) {
        connection.close();
        return outcomeOfTokenError(err);
      }
      if (attempt === 1 && ctx.minTokenLifetimeMs && expiresAt.getTime() - Date.now() < ctx.minTokenLifetimeMs) {
        // Through the one interface's refresh-once rule, so the refresh is shared with every other caller.
        connection.close();
        lastRefusal = 'the token expires too soon for High Volume Email (the relay refreshed it before use)';
        throw new RelayError('UPSTREAM_TOKEN_REJECTED', lastRefusal);
      }
      try {
        await connection.connect();
        await connection.login(ctx.mailbox, accessToken);
      } catch (err) {
        connection.close();
        const outcome = outcomeOfError(err);
        if (outcome.kind !== 'token-rejected') return outcome;
        lastRefusal = outcome.reply;
        if (attempt === 1) ctx.log.warn({ id: envelope.id, account: envelope.account, tokenFingerprint: fingerprint(accessToken), reply: outcome.reply }, 'upstream refused the access token: refreshing it once and trying again');
        throw new RelayError('UPSTREAM_TOKEN_REJECTED', outcome.reply);
      }
      ctx.log.debug({ account: envelope.account, tokenFingerprint: fingerprint(accessToken), tokenExpiresAt: expiresAt.toISOString() }, 'upstream connection authenticated');
      return { conn: { connection, key: ctx.connectionKey, account: envelope.account, tokenExpiresAt: expiresAt.getTime(), generation }, reused: false };
    });
  } catch (err) {
    if (isRelayError(err, 'UPSTREAM_TOKEN_REJECTED')) {
      const code = permanentFailureCode(lastRefusal) === 'UPSTREAM_TOKEN_EXPIRES_SOON' ? 'UPSTREAM_TOKEN_EXPIRES_SOON' : 'UPSTREAM_TOKEN_REJECTED';
      return { kind: 'temporary', code, reply: lastRefusal };
    }
    return outcomeOfTokenError(err);
  }
}
