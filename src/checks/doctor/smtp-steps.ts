/**
 * The doctor's SMTP steps on one upstream session: SMTP AUTH with the account's token, the message size the
 * mailbox may submit, Send As for each sender the account's devices will send as (MAIL FROM then RSET: nothing is
 * sent), and with `--send-to` one real message per such sender with it in From (Exchange checks the header only
 * after the data). A refused token is refreshed once through `withAccessToken` and tried on a fresh session.
 */
import type { AccountTokens } from '../../auth/account-tokens.js';
import type { AccountConfig } from '../../config/schema.js';
import { RelayError, isRelayError } from '../../errors.js';
import { permanentFailureCode } from '../../smtp/delivery/exchange-replies.js';
import { SmtpProbe, replyLine, type SmtpProbeTarget, type SmtpReply } from '../smtp-probe.js';
import { failed, passed, skipped, type DoctorStep, type FindingNames } from './findings.js';
import { applicationRole } from './token-steps.js';

export interface SmtpStepInput {
  account: string;
  config: AccountConfig;
  kind: 'user' | 'app';
  tokens: AccountTokens;
  target: SmtpProbeTarget;
  hve: boolean;
  /** smtp.maxMessageBytes: what devices may hand the relay. */
  maxMessageBytes: number;
  /** Senders to try (addresses); `@domain` entries are reported as not checkable. */
  senders: string[];
  sendTo?: string;
}

/** Runs the SMTP steps; never throws. */
export async function smtpSteps(input: SmtpStepInput): Promise<DoctorStep[]> {
  const names: FindingNames = { account: input.account, mailbox: input.config.mailbox, app: input.config.clientId, role: applicationRole.smtp, scope: 'xoauth2-relay mailboxes' };
  let probe: SmtpProbe;
  let auth: SmtpReply;
  try {
    ({ probe, auth } = await input.tokens.withAccessToken(input.account, async (get) => {
      const opened = await SmtpProbe.open(input.target);
      const reply = await opened.authenticate(input.config.mailbox, (await get()).token).catch((err: unknown) => {
        opened.close();
        throw err;
      });
      if (reply.code === 535 && permanentFailureCode(replyLine(reply)) !== 'UPSTREAM_SMTP_AUTH_DISABLED') {
        opened.close();
        throw new RelayError('UPSTREAM_TOKEN_REJECTED', replyLine(reply)); // refreshed once by withAccessToken
      }
      return { probe: opened, auth: reply };
    }));
  } catch (err) {
    const detail = err instanceof Error && isRelayError(err) ? (err.detail ?? err.message) : String(err);
    if (isRelayError(err, 'UPSTREAM_TOKEN_REJECTED')) return [authRefusal(input, detail, names), ...skippedAfterAuth(input)];
    if (isRelayError(err, 'DOCTOR_SMTP_REFUSED')) return [failed('smtp-auth', 'DOCTOR_SMTP_REFUSED', `${where(input)} ${detail}`, names), ...skippedAfterAuth(input)];
    return [failed('smtp-auth', 'DOCTOR_SMTP_UNREACHABLE', detail, names), ...skippedAfterAuth(input)];
  }
  try {
    if (auth.code !== 235) return [authRefusal(input, replyLine(auth), names), ...skippedAfterAuth(input)];
    const steps = [passed('smtp-auth', `${where(input)} accepted AUTH XOAUTH2 for ${input.config.mailbox}`)];
    steps.push(await sizeStep(probe, input, names));
    steps.push(...(await senderSteps(probe, input, names)));
    return steps;
  } finally {
    probe.close();
  }
}

const where = (input: SmtpStepInput) => `${input.target.host}:${input.target.port}`;

function skippedAfterAuth(input: SmtpStepInput): DoctorStep[] {
  return [skipped('message-size', 'needs SMTP AUTH first'), ...input.senders.map((s) => skipped(`send-as ${s}`, 'needs SMTP AUTH first'))];
}

/** A refused AUTH: which setting refuses it. */
function authRefusal(input: SmtpStepInput, reply: string, names: FindingNames): DoctorStep {
  const detail = `${where(input)} answered: ${reply}`;
  if (/SmtpClientAuthentication is disabled for the Mailbox/i.test(reply)) return failed('smtp-auth', 'DOCTOR_SMTP_AUTH_DISABLED_MAILBOX', detail, names);
  if (permanentFailureCode(reply) === 'UPSTREAM_SMTP_AUTH_DISABLED') return failed('smtp-auth', 'DOCTOR_SMTP_AUTH_DISABLED_TENANT', detail, names);
  if (permanentFailureCode(reply) === 'UPSTREAM_TOKEN_EXPIRES_SOON') return failed('smtp-auth', 'UPSTREAM_TOKEN_EXPIRES_SOON', detail, names);
  if (/^535\b/.test(reply) && input.kind === 'app') return failed('smtp-auth', input.hve ? 'DOCTOR_HVE_NOT_ALLOWED' : 'DOCTOR_APP_ROLE_MISSING', detail, names);
  if (/^535\b/.test(reply)) return failed('smtp-auth', 'DOCTOR_SMTP_TOKEN_REJECTED', detail, names);
  return failed('smtp-auth', 'DOCTOR_SMTP_REFUSED', detail, names);
}

/** MAIL FROM with SIZE= the relay's own limit: does the mailbox take the largest scan a device may send? */
async function sizeStep(probe: SmtpProbe, input: SmtpStepInput, names: FindingNames): Promise<DoctorStep> {
  const announced = probe.announcedSize;
  const reply = await probe.command(`MAIL FROM:<${input.config.mailbox}> SIZE=${input.maxMessageBytes}`);
  await probe.command('RSET');
  const detail = `smtp.maxMessageBytes ${input.maxMessageBytes}; the server announces SIZE ${announced ?? '(none)'} and answered ${replyLine(reply)}`;
  if (reply.code !== 250 || (announced !== null && announced < input.maxMessageBytes)) return failed('message-size', 'DOCTOR_MESSAGE_SIZE', detail, names);
  return passed('message-size', `the mailbox takes messages of smtp.maxMessageBytes (${input.maxMessageBytes} bytes)`);
}

async function senderSteps(probe: SmtpProbe, input: SmtpStepInput, names: FindingNames): Promise<DoctorStep[]> {
  if (input.senders.length === 0) {
    const only = passed('send-as', `every device sends as ${input.config.mailbox} (senderPolicy auto, nothing in sendAsGranted): no Send As right needed`);
    return input.sendTo ? [only, await sendOne(probe, input, input.config.mailbox, names)] : [only];
  }
  const steps: DoctorStep[] = [];
  for (const sender of input.senders) {
    const check = `send-as ${sender}`;
    if (sender.startsWith('@')) {
      steps.push(skipped(check, `a whole domain cannot be tried at MAIL FROM; run with --send-to and an address of ${sender}, or list exact addresses in sendAsGranted`));
      continue;
    }
    const reply = await probe.command(`MAIL FROM:<${sender}>`);
    await probe.command('RSET');
    if (reply.code !== 250) {
      steps.push(failed(check, permanentFailureCode(replyLine(reply)) === 'UPSTREAM_SEND_AS_DENIED' ? 'DOCTOR_SEND_AS_DENIED' : 'DOCTOR_SMTP_REFUSED', `MAIL FROM:<${sender}> answered ${replyLine(reply)}`, { ...names, sender }));
      continue;
    }
    steps.push(passed(check, `MAIL FROM:<${sender}> accepted (nothing sent)`));
    if (input.sendTo) steps.push(await sendOne(probe, input, sender, names));
  }
  return steps;
}

/** One real message with `sender` in MAIL FROM and From: Exchange checks the From header only after the data. */
async function sendOne(probe: SmtpProbe, input: SmtpStepInput, sender: string, names: FindingNames): Promise<DoctorStep> {
  const check = `send-to ${input.sendTo}`;
  const steps = [`MAIL FROM:<${sender}>`, `RCPT TO:<${input.sendTo}>`];
  for (const line of steps) {
    const reply = await probe.command(line);
    if (reply.code !== 250) {
      await probe.command('RSET');
      return refusedMessage(check, `${line} answered ${replyLine(reply)}`, reply, input, { ...names, sender });
    }
  }
  const message = [
    `From: ${sender}`,
    `To: ${input.sendTo}`,
    `Subject: xoauth2-relay doctor: sending as ${sender}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <doctor.${Date.now()}@xoauth2-relay>`,
    '',
    `Sent by \`xoauth2-relay doctor ${input.account} --send-to ${input.sendTo}\` through ${where(input)} as ${sender}.`,
  ].join('\r\n');
  const reply = await probe.data(message);
  if (reply.code !== 250) return refusedMessage(check, `the message from ${sender} was refused after the data: ${replyLine(reply)}`, reply, input, { ...names, sender });
  return passed(check, `a test message from ${sender} was accepted: ${replyLine(reply)}`);
}

function refusedMessage(check: string, detail: string, reply: SmtpReply, input: SmtpStepInput, names: FindingNames): DoctorStep {
  const code = permanentFailureCode(replyLine(reply));
  if (code === 'UPSTREAM_SEND_AS_DENIED') return failed(check, 'DOCTOR_SEND_AS_DENIED', detail, names);
  if (code === 'UPSTREAM_EXTERNAL_RECIPIENT' || (input.hve && reply.code === 550)) return failed(check, 'DOCTOR_HVE_EXTERNAL', detail, names);
  return failed(check, 'DOCTOR_SMTP_REFUSED', detail, names);
}
