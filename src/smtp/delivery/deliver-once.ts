/**
 * One delivery attempt: a token from the token service, one submission, and, when Exchange refuses the token
 * (`535 5.7.3`), one forced refresh through the token service and one more submission at once. A second
 * refusal is a temporary failure: whether the token is invalid is the token service's call (only
 * `invalid_grant` makes it so), not the mail path's.
 */
import { fingerprint, type Logger } from '../../log.js';
import type { SpooledEnvelope } from '../spool/envelope.js';
import type { DeliveryTokens } from './delivery-tokens.js';
import { outcomeOfTokenError, type SendOutcome } from './send-outcome.js';
import { submitToUpstream, type UpstreamTarget } from './upstream-sender.js';

export interface AttemptContext {
  tokens: DeliveryTokens;
  target: UpstreamTarget;
  mailbox: string;
  messagePath: string;
  log: Logger;
}

export async function deliverOnce(ctx: AttemptContext, envelope: SpooledEnvelope): Promise<SendOutcome> {
  let token: string;
  try {
    token = (await ctx.tokens.accessTokenFor(envelope.account)).token;
  } catch (err) {
    return outcomeOfTokenError(err);
  }
  const submit = (accessToken: string) =>
    submitToUpstream(ctx.target, { mailbox: ctx.mailbox, accessToken, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: envelope.size, messagePath: ctx.messagePath });

  const first = await submit(token);
  if (first.kind !== 'token-rejected') return first;

  ctx.log.warn({ id: envelope.id, account: envelope.account, tokenFingerprint: fingerprint(token), reply: first.reply }, 'upstream refused the access token: refreshing it once and trying again');
  try {
    token = (await ctx.tokens.tokenRejected(envelope.account, token)).token;
  } catch (err) {
    return outcomeOfTokenError(err);
  }
  const second = await submit(token);
  if (second.kind !== 'token-rejected') return second;
  return { kind: 'temporary', code: 'UPSTREAM_TOKEN_REJECTED', reply: second.reply };
}
