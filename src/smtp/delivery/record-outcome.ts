/**
 * Writes what an attempt came to into the spool, following the status table in spool/envelope.ts, and says
 * which events to publish. Partial deliveries: recipients Exchange accepted got the message; those refused
 * permanently (5xx at RCPT TO) go to dead/ as a copy of the message with only them as recipients (bytes shared
 * by a hard link); those refused temporarily (4xx) stay queued, deferred, as the message's only recipients.
 */
import type { ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { nextStatus, type DeliveryState, type MessageEvent, type MessageStatus, type SpooledEnvelope } from '../spool/envelope.js';
import type { DeadLetterVerdict, Spool } from '../spool/spool.js';
import { permanentFailureCode, reasonFor } from './exchange-replies.js';
import { retryDelayMs, type RetrySettings } from './retry-schedule.js';
import type { RecipientFailure, SendOutcome } from './send-outcome.js';

export type DeliveryEventName = 'delivered' | 'deferred' | 'held' | 'dead';

/** Published for the admin page and metrics. `reply` is Exchange's last reply (or the local error text). */
export interface DeliveryEvent {
  id: string;
  account: string;
  /** From the device's `250` to this outcome. */
  latencyMs: number;
  reply: string | null;
  /** Catalogue code of the failure (null when delivered). */
  code: ErrorCode | null;
  attempts: number;
}

export interface OutcomeContext {
  spool: Spool;
  settings: RetrySettings & { maxAgeHours: number };
  now: () => number;
  random?: () => number;
  log: Logger;
}

export interface RecordedOutcome {
  /** The message as it now stands in queue/, or null when it left the queue. */
  remaining: SpooledEnvelope | null;
  events: Array<{ name: DeliveryEventName; event: DeliveryEvent }>;
}

/** True when the message has been undeliverable for longer than maxAgeHours (counted from `state.since`). */
export function isExpired(envelope: SpooledEnvelope, nowMs: number, maxAgeHours: number): boolean {
  return nowMs - Date.parse(envelope.state.since) >= maxAgeHours * 3_600_000;
}

export async function recordOutcome(ctx: OutcomeContext, envelope: SpooledEnvelope, outcome: SendOutcome): Promise<RecordedOutcome> {
  const recorder = new Recorder(ctx, envelope);
  switch (outcome.kind) {
    case 'delivered':
      recorder.delivered(outcome.reply, outcome.rejected.length);
      await recorder.splitRefused(outcome.rejected, true);
      break;
    case 'recipients-refused':
      await recorder.splitRefused(outcome.rejected, false);
      break;
    case 'permanent':
      await recorder.bury('permanent-failure', { code: outcome.code, reason: outcome.reason ?? reasonFor(outcome.code), reply: outcome.reply });
      break;
    case 'temporary':
    case 'token-rejected':
      await recorder.retryLater('temporary-failure', outcome.kind === 'temporary' ? outcome.code : 'UPSTREAM_TOKEN_REJECTED', outcome.reply);
      break;
    case 'token-unavailable':
      await recorder.retryLater('token-unavailable', outcome.code, outcome.reply);
      break;
  }
  return { remaining: recorder.remaining, events: recorder.events };
}

/** Dead-letters a message that has waited longer than maxAgeHours. */
export async function recordExpiry(ctx: OutcomeContext, envelope: SpooledEnvelope): Promise<RecordedOutcome> {
  const recorder = new Recorder(ctx, envelope);
  await recorder.expire();
  return { remaining: recorder.remaining, events: recorder.events };
}

class Recorder {
  remaining: SpooledEnvelope | null;
  readonly events: RecordedOutcome['events'] = [];
  private readonly nowMs: number;

  constructor(private readonly ctx: OutcomeContext, private envelope: SpooledEnvelope) {
    this.remaining = envelope;
    this.nowMs = ctx.now();
  }

  delivered(reply: string, refused: number): void {
    this.publish('delivered', reply, null, this.envelope.state.attempts + 1);
    this.ctx.log.info({ ...this.fields(), attempts: this.envelope.state.attempts + 1, accepted: this.envelope.rcptTo.length - refused, reply }, 'delivered');
  }

  /** Recipients refused at RCPT TO: permanent ones to a dead copy, temporary ones stay queued. */
  async splitRefused(rejected: RecipientFailure[], someDelivered: boolean): Promise<void> {
    const permanent = rejected.filter((r) => r.permanent);
    const temporary = rejected.filter((r) => !r.permanent);
    const firstPermanent = permanent[0];
    const firstTemporary = temporary[0];
    if (!someDelivered && rejected.length === 0) {
      // Nobody got it and nobody was named as refused: never take that for done.
      await this.retryLater('temporary-failure', 'UPSTREAM_REJECTED', 'no recipient accepted');
      return;
    }
    if (!firstTemporary && !someDelivered && firstPermanent) {
      await this.bury('permanent-failure', this.recipientVerdict(firstPermanent));
      return;
    }
    if (firstPermanent) {
      const copyId = await this.ctx.spool.buryRecipients(this.envelope.id, permanent.map((r) => r.address), this.recipientVerdict(firstPermanent));
      if (copyId) this.publish('dead', firstPermanent.reply, permanentFailureCode(firstPermanent.reply), this.envelope.state.attempts + 1, copyId);
      this.ctx.log.error({ ...this.fields(), copyId, refused: permanent.length, reply: firstPermanent.reply }, 'recipients refused permanently: a copy of the message for them went to dead/');
    }
    if (firstTemporary) {
      await this.retryLater('temporary-failure', 'UPSTREAM_TEMPORARY', firstTemporary.reply, temporary.map((r) => r.address));
    } else {
      await this.ctx.spool.remove(this.envelope.id);
      this.remaining = null;
    }
  }

  /** Deferred (4xx, network) or held (no token); dead-lettered instead when maxAgeHours has passed. */
  async retryLater(event: 'temporary-failure' | 'token-unavailable', code: ErrorCode, reply: string, rcptTo?: string[]): Promise<void> {
    const held = event === 'token-unavailable';
    const attempts = this.envelope.state.attempts + (held ? 0 : 1); // waiting for a sign-in is not an attempt
    const failed: DeliveryState = { ...this.envelope.state, attempts, lastReply: reply, lastReason: reasonFor(code), lastCode: code };
    if (isExpired(this.envelope, this.nowMs, this.ctx.settings.maxAgeHours)) {
      // The dead letter names only the recipients still to do, not those a partial delivery reached.
      if (rcptTo) await this.ctx.spool.update(this.envelope.id, this.envelope.state, { rcptTo });
      this.envelope = { ...this.envelope, ...(rcptTo ? { rcptTo } : {}), state: failed };
      await this.expire();
      return;
    }
    const delay = held ? 0 : retryDelayMs(attempts, this.ctx.settings, this.ctx.random);
    const state = this.stateFor(event, { ...failed, nextAttemptAt: new Date(this.nowMs + delay).toISOString() });
    const written = await this.ctx.spool.update(this.envelope.id, state, rcptTo ? { rcptTo } : {});
    this.remaining = written ? { ...this.envelope, ...(rcptTo ? { rcptTo } : {}), state } : null;
    this.publish(held ? 'held' : 'deferred', reply, code, attempts);
    const line = held ? 'held until the account has a token' : `deferred, next attempt in ${(delay / 1000).toFixed(delay < 10_000 ? 1 : 0)} s`;
    this.ctx.log.warn({ ...this.fields(), attempts, errorCode: code, reply }, `${line}: ${reasonFor(code)}`);
  }

  async bury(event: 'permanent-failure' | 'expired', verdict: DeadLetterVerdict): Promise<void> {
    this.stateFor(event, this.envelope.state);
    await this.ctx.spool.bury(this.envelope.id, verdict);
    this.remaining = null;
    const attempts = event === 'expired' ? this.envelope.state.attempts : this.envelope.state.attempts + 1;
    this.publish('dead', verdict.reply, verdict.code, attempts);
    this.ctx.log.error({ ...this.fields(), attempts, errorCode: verdict.code, reply: verdict.reply }, `dead-lettered: ${verdict.reason}`);
  }

  async expire(): Promise<void> {
    const hours = Number(this.ctx.settings.maxAgeHours.toFixed(3));
    const last = this.envelope.state.lastReason ?? 'never attempted';
    await this.bury('expired', { code: 'DELIVERY_EXPIRED', reason: `undeliverable for ${hours} hours: ${last}`, reply: this.envelope.state.lastReply });
  }

  private publish(name: DeliveryEventName, reply: string | null, code: ErrorCode | null, attempts: number, id = this.envelope.id): void {
    const latencyMs = this.nowMs - Date.parse(this.envelope.receivedAt);
    this.events.push({ name, event: { id, account: this.envelope.account, latencyMs, reply, code, attempts } });
  }

  private recipientVerdict(failure: RecipientFailure): DeadLetterVerdict {
    const code = permanentFailureCode(failure.reply);
    return { code, reason: reasonFor(code), reply: failure.reply };
  }

  /** The status table decides; a move it does not allow is a bug, so it fails loudly. */
  private stateFor(event: MessageEvent, state: DeliveryState): DeliveryState {
    const target = nextStatus(this.envelope.state.status, event);
    if (target === null || target === 'removed') throw new Error(`status table: ${event} not allowed from ${this.envelope.state.status}`);
    return { ...state, status: target as MessageStatus, updatedAt: new Date(this.nowMs).toISOString() };
  }

  /** What every outcome line carries; never the message content, never a token ('code' is a redacted log key). */
  private fields() {
    const e = this.envelope;
    return { id: e.id, account: e.account, device: e.device, rcpt: e.rcptTo.length, size: e.size };
  }
}
