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
import { outcomeOfTokenError, type SendOutcome } from './send-outcome.js';
import { submitToUpstream, type UpstreamTarget } from './upstream-sender.js';

export interface AttemptContext {
  tokens: AccountTokens;
  target: UpstreamTarget;
  mailbox: string;
  messagePath: string;
  log: Logger;
}

export async function deliverOnce(ctx: AttemptContext, envelope: SpooledEnvelope): Promise<SendOutcome> {
  let lastRefusal = '';
  try {
    return await ctx.tokens.withAccessToken(envelope.account, async (token, attempt) => {
      let accessToken: string;
      try {
        accessToken = (await token()).token;
      } catch (err) {
        return outcomeOfTokenError(err);
      }
      const outcome = await submitToUpstream(ctx.target, { mailbox: ctx.mailbox, accessToken, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: envelope.size, messagePath: ctx.messagePath });
      if (outcome.kind !== 'token-rejected') return outcome;
      lastRefusal = outcome.reply;
      if (attempt === 1) ctx.log.warn({ id: envelope.id, account: envelope.account, tokenFingerprint: fingerprint(accessToken), reply: outcome.reply }, 'upstream refused the access token: refreshing it once and trying again');
      throw new RelayError('UPSTREAM_TOKEN_REJECTED', outcome.reply);
    });
  } catch (err) {
    if (isRelayError(err, 'UPSTREAM_TOKEN_REJECTED')) return { kind: 'temporary', code: 'UPSTREAM_TOKEN_REJECTED', reply: lastRefusal };
    return outcomeOfTokenError(err);
  }
}
