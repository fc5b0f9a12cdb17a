/**
 * One delivery attempt through the token services' one interface: a token, one submission, and, when Exchange
 * refuses the token (`535 5.7.3`), the interface's single forced refresh and one more submission at once. A second
 * refusal is a temporary failure: whether the token is invalid is the token service's call (only the identity
 * platform's answers decide it), not the mail path's.
 */
import type { AccountTokens } from '../../auth/account-tokens.js';
import { RelayError, isRelayError } from '../../errors.js';
import { fingerprint, type Logger } from '../../log.js';
import type { SpooledEnvelope } from '../spool/envelope.js';
import { permanentFailureCode } from './exchange-replies.js';
import { outcomeOfTokenError, withSendAsFix, type SendOutcome } from './send-outcome.js';
import { submitToUpstream, type UpstreamTarget } from './upstream-sender.js';

export interface AttemptContext {
  tokens: AccountTokens;
  target: UpstreamTarget;
  mailbox: string;
  messagePath: string;
  log: Logger;
  /** A token with less life left is refreshed before it is presented (High Volume Email refuses it: 501 5.5.127). */
  minTokenLifetimeMs?: number;
}

export async function deliverOnce(ctx: AttemptContext, envelope: SpooledEnvelope): Promise<SendOutcome> {
  let lastRefusal = '';
  try {
    return await ctx.tokens.withAccessToken(envelope.account, async (token, attempt) => {
      let accessToken: string;
      let expiresAt: Date;
      try {
        ({ token: accessToken, expiresAt } = await token());
      } catch (err) {
        return outcomeOfTokenError(err);
      }
      if (attempt === 1 && ctx.minTokenLifetimeMs && expiresAt.getTime() - Date.now() < ctx.minTokenLifetimeMs) {
        // Through the one interface's refresh-once rule, so the refresh is shared with every other caller.
        lastRefusal = 'the token expires too soon for High Volume Email (the relay refreshed it before use)';
        throw new RelayError('UPSTREAM_TOKEN_REJECTED', lastRefusal);
      }
      const outcome = await submitToUpstream(ctx.target, { mailbox: ctx.mailbox, accessToken, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: envelope.size, messagePath: ctx.messagePath });
      if (outcome.kind !== 'token-rejected') return withSendAsFix(outcome, envelope, ctx.mailbox);
      lastRefusal = outcome.reply;
      if (attempt === 1) ctx.log.warn({ id: envelope.id, account: envelope.account, tokenFingerprint: fingerprint(accessToken), reply: outcome.reply }, 'upstream refused the access token: refreshing it once and trying again');
      throw new RelayError('UPSTREAM_TOKEN_REJECTED', outcome.reply);
    });
  } catch (err) {
    if (isRelayError(err, 'UPSTREAM_TOKEN_REJECTED')) {
      const code = permanentFailureCode(lastRefusal) === 'UPSTREAM_TOKEN_EXPIRES_SOON' ? 'UPSTREAM_TOKEN_EXPIRES_SOON' : 'UPSTREAM_TOKEN_REJECTED';
      return { kind: 'temporary', code, reply: lastRefusal };
    }
    return outcomeOfTokenError(err);
  }
}
