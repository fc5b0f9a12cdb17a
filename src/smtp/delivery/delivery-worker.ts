/**
 * Delivers spooled mail to Exchange Online: picks due messages oldest first, paces them per mailbox
 * (connections at once, messages per minute), runs one attempt each, and records the outcome in the spool.
 *
 * Scheduling is per event, not per queue: delivery-schedule.ts keeps the cached messages by due time, parked per
 * mailbox while that mailbox cannot start a send, and held per account, so a commit or a finished send costs
 * O(log n) at any queue length; one timer waits for the next due time, expiry or pacing window.
 *
 * It notices work three ways: the spool's 'committed' event (this process received a message), a rescan of the
 * spool on a timer (the queue CLI changed it from another process), and token state changes (a held message
 * goes when its account has a token again). The spool on disk is the truth; the worker's map is a cache of it,
 * and each attempt re-reads its message's envelope first, so a message dropped or retried from the CLI a
 * moment ago is seen as it is now.
 *
 * Messages of one mailbox share up to maxConnectionsPerMailbox authenticated connections (mailbox-connections.ts):
 * a backlog costs a TLS handshake and an AUTH per connection, not per message. Pacing still counts messages.
 *
 * Delivery is at-least-once: a connection lost after the final `.` (RFC 5321 §4.1.1.4) leaves the message
 * deferred, and the next attempt may duplicate it (docs/exchange-online.md §6).
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../../config/schema.js';
import { errorFields, type Logger } from '../../log.js';
import { isDeliverable, type SpooledEnvelope } from '../spool/envelope.js';
import type { Spool } from '../spool/spool.js';
import { deliverOnce } from './deliver-once.js';
import { HVE_MIN_TOKEN_LIFETIME_MS, isHighVolumeEmail } from '../high-volume-email.js';
import type { AccountTokens, TokenStates } from '../../auth/account-tokens.js';
import { MailboxConnections, type MailboxConnectionLimits } from './mailbox-connections.js';
import { MailboxPacing } from './mailbox-pacing.js';
import { DeliverySchedule } from './delivery-schedule.js';
import { recordExpiry, recordOutcome, type DeliveryEvent, type OutcomeContext, type RecordedOutcome } from './record-outcome.js';
import type { SendOutcome } from './send-outcome.js';
import type { UpstreamTarget } from './upstream-sender.js';

export interface DeliveryWorkerOptions {
  spool: Spool;
  /** Tokens (the refresh-once rule inside), and the states that hold and release mail. */
  tokens: AccountTokens & TokenStates;
  /** smtp.upstream, plus optional socket timeouts. */
  upstream: { host: string; port: number; hve?: boolean; timeouts?: UpstreamTarget['timeouts'] };
  /** upstreamTls.extraCaFile's content, or null. */
  extraCaPem: string | null;
  limits: Config['smtp']['delivery'];
  /** The mailbox of an account (XOAUTH2 `user=`, and the pacing key); throws for an unknown account. */
  mailboxOf(account: string): string;
  /** The delivery component's logger (the daemon passes `log.child({ component: 'delivery' })`). */
  logger: Logger;
  now?: () => number;
  /** How often the spool is re-read for changes other processes made; default 5 s. */
  rescanIntervalMs?: number;
  /** The window of maxMessagesPerMinute; 60 000 unless a test shortens it. */
  rateWindowMs?: number;
  /** Jitter source of the back-off (tests pin it). */
  random?: () => number;
  /** How long a connection is kept idle, and how much token life it must have left to be used (tests shorten them). */
  connections?: Pick<MailboxConnectionLimits, 'idleMs' | 'tokenMarginMs'>;
}

export type DeliveryEvents = { delivered: [DeliveryEvent]; deferred: [DeliveryEvent]; held: [DeliveryEvent]; dead: [DeliveryEvent] };

export class DeliveryWorker extends EventEmitter<DeliveryEvents> {
  /** The cache of the queue, ordered for scheduling. */
  private readonly schedule: DeliverySchedule;
  /** Mailboxes that may be able to start a send now (a message became due, a slot freed, a window opened). */
  private readonly ready = new Set<string>();
  /** Mailboxes whose per-minute window is full, and when it opens (a few entries: one per busy mailbox). */
  private readonly windowOpens = new Map<string, number>();
  /** Ids this process wrote while a rescan was reading: their in-memory state is newer than what it read. */
  private readonly writtenDuringScan = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly pacing: MailboxPacing;
  private readonly connections: MailboxConnections;
  /** Per account, how many times it became 'acquired': a hold that raced a sign-in is released at once. */
  private readonly acquiredCount = new Map<string, number>();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly outcomeContext: OutcomeContext;
  private stopped = true;
  private scanning: Promise<void> | null = null;
  private scanAgain = false;
  private rescanTimer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private unsubscribe: Array<() => void> = [];

  constructor(private readonly opts: DeliveryWorkerOptions) {
    super();
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    const { maxConnectionsPerMailbox, maxMessagesPerMinute } = opts.limits;
    this.pacing = new MailboxPacing({ maxConnections: maxConnectionsPerMailbox, maxPerWindow: maxMessagesPerMinute, windowMs: opts.rateWindowMs ?? 60_000 });
    this.connections = new MailboxConnections({ maxPerMailbox: maxConnectionsPerMailbox, ...opts.connections }, this.log);
    this.schedule = new DeliverySchedule(opts.limits.maxAgeHours * 3_600_000);
    this.outcomeContext = { spool: opts.spool, settings: opts.limits, now: this.now, random: opts.random, log: this.log };
  }

  /** Reads the spool, releases held messages whose account has a token, and starts delivering. */
  async start(): Promise<void> {
    this.stopped = false;
    this.connections.reopen();
    // A new message is added as it is, not by re-reading the spool: under a backlog (an outage, a revoked
    // token) a full rescan per accepted message would make every device's 250 cost O(queue length).
    const onCommitted = (envelope: SpooledEnvelope) => this.admit(envelope);
    this.opts.spool.on('committed', onCommitted);
    this.unsubscribe.push(() => this.opts.spool.off('committed', onCommitted));
    this.unsubscribe.push(
      this.opts.tokens.onStateChange((account, state) => {
        if (state !== 'acquired') return this.connections.forgetAccount(account);
        this.acquiredCount.set(account, (this.acquiredCount.get(account) ?? 0) + 1);
        this.releaseHeld(account).catch((err: unknown) => this.log.error({ ...errorFields(err), account }, 'cannot release held messages'));
      }),
    );
    await this.scan();
    await this.releaseHeld(null);
    this.rescanTimer = setInterval(() => this.notify(), this.opts.rescanIntervalMs ?? 5_000);
    this.rescanTimer.unref();
  }

  /** Something changed in the spool: rescan it now. */
  notify(): void {
    if (!this.stopped) this.scan().catch((err: unknown) => this.log.error(errorFields(err), 'spool rescan failed'));
  }

  /** A message this process just committed: cache it and start it if its mailbox has room. */
  private admit(envelope: SpooledEnvelope): void {
    if (this.stopped) return;
    this.remember(envelope.id, envelope);
    this.pump();
  }

  /** Sends in progress. */
  get inFlight(): number {
    return this.running.size;
  }

  /** Stops picking up messages and waits up to `timeoutMs` for sends in flight; true when all finished. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.rescanTimer = this.wakeTimer = null;
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.scanning) await this.scanning;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const drained = Promise.allSettled([...this.running.values()]).then(() => true as const);
    const finished = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    // Idle connections now; those still sending when they finish.
    this.connections.closeAll();
    if (!finished) this.log.warn({ inFlight: this.running.size }, 'stopped with sends still in flight: they are retried at the next start (at-least-once)');
    return finished;
  }

  /** Re-reads the spool (one scan at a time; a request during a scan runs one more after it). */
  private scan(): Promise<void> {
    if (this.scanning) {
      this.scanAgain = true;
      return this.scanning;
    }
    this.writtenDuringScan.clear();
    this.scanning = this.opts.spool
      .list()
      .then((listed) => this.reconcile(listed))
      .catch((err) => this.log.error(errorFields(err), 'cannot read the spool'))
      .finally(() => {
        this.scanning = null;
        if (this.scanAgain && !this.stopped) {
          this.scanAgain = false;
          this.scan().catch((err: unknown) => this.log.error(errorFields(err), 'spool rescan failed'));
        }
        this.pump();
      });
    return this.scanning;
  }

  /**
   * Starts every due message its mailbox has room for, and sets a timer for the next that will be. Only what
   * became due and the mailboxes in `ready` are looked at: O(log n) per message moved, not a walk of the queue.
   */
  private pump(): void {
    if (this.stopped) return;
    const nowMs = this.now();
    for (const envelope of this.schedule.takeExpired(nowMs)) {
      this.run(envelope.id, async () => void (await this.apply(envelope.id, recordExpiry(this.outcomeContext, envelope))));
    }
    for (const key of this.schedule.advance(nowMs)) this.ready.add(key);
    for (const [key, at] of this.windowOpens) {
      if (at > nowMs) continue;
      this.windowOpens.delete(key);
      this.ready.add(key);
    }
    for (const key of this.ready) this.startParked(key, nowMs);
    this.ready.clear();
    this.wakeUpAt(Math.min(this.schedule.nextWakeAt(), ...this.windowOpens.values()));
  }

  /** Starts the oldest due messages of one mailbox while its pacing allows; the rest stay parked until it does. */
  private startParked(mailbox: string, nowMs: number): void {
    while (this.schedule.hasParked(mailbox)) {
      if (!this.pacing.canStart(mailbox, nowMs)) {
        // Connections all busy: a finishing send marks the mailbox ready. Window full: the timer does.
        const opensAt = this.pacing.windowOpensAt(mailbox, nowMs);
        if (opensAt !== null) this.windowOpens.set(mailbox, opensAt);
        return;
      }
      const envelope = this.schedule.takeParked(mailbox);
      if (!envelope) return;
      this.pacing.start(mailbox, nowMs);
      // The mailbox's slot is free once the upstream part is over: the next message goes while this one's outcome
      // is written to the spool (a connection is back in the pool by then).
      let slotHeld = true;
      const freeSlot = () => {
        if (!slotHeld) return;
        slotHeld = false;
        this.pacing.finish(mailbox);
        this.ready.add(mailbox);
      };
      this.run(envelope.id, () => this.deliver(envelope.id, () => this.paceSubmit(mailbox, nowMs), freeSlot), freeSlot);
    }
  }

  private run(id: string, task: () => Promise<void>, after?: () => void): void {
    const done = task()
      .catch((err) => {
        this.log.error({ id, ...errorFields(err) }, 'could not record a delivery outcome (spool write failed?); the message stays queued');
        // Not due again at once: a broken disk must not turn into a tight loop of sends.
        const cached = this.schedule.get(id);
        const later = new Date(this.now() + this.opts.limits.retryInitialSeconds * 1000).toISOString();
        if (cached) this.remember(id, { ...cached, state: { ...cached.state, nextAttemptAt: later } });
      })
      .finally(() => {
        after?.();
        this.running.delete(id);
        this.schedule.finish(id);
        this.pump();
      });
    this.running.set(id, done);
  }

  /** Holds a send whose MAIL FROM would pass the mailbox's rate window, then counts it at its real time. */
  private async paceSubmit(mailbox: string, startedAt: number): Promise<void> {
    for (;;) {
      const nowMs = this.now();
      const at = this.pacing.sendableAt(mailbox, startedAt, nowMs);
      if (at <= nowMs) return this.pacing.restamp(mailbox, startedAt, nowMs);
      await new Promise((resolve) => setTimeout(resolve, at - nowMs).unref()); // a stopping daemon does not wait for it
    }
  }

  private async deliver(id: string, beforeSubmit: () => Promise<void>, upstreamDone: () => void): Promise<void> {
    // The envelope on disk, not the cached one: the queue CLI may have dropped, retried or re-timed it.
    const envelope = await this.opts.spool.get(id);
    if (!envelope || !isDeliverable(envelope.state.status) || Date.parse(envelope.state.nextAttemptAt) > this.now()) {
      this.remember(id, envelope && envelope.state.status !== 'dead' ? envelope : null);
      return;
    }
    const acquiredBefore = this.acquiredCount.get(envelope.account) ?? 0;
    const target: UpstreamTarget = { ...this.opts.upstream, extraCaPem: this.opts.extraCaPem };
    const mailbox = this.mailboxOrNull(envelope.account);
    const outcome: SendOutcome =
      mailbox === null
        ? { kind: 'token-unavailable', code: 'UNKNOWN_ACCOUNT', reply: `account ${envelope.account} is not in the configuration` }
        : await deliverOnce(
            {
              tokens: this.opts.tokens,
              connections: this.connections,
              connectionKey: this.pacingKey(envelope.account),
              target,
              mailbox,
              messagePath: this.opts.spool.messagePath(id),
              log: this.log,
              beforeSubmit,
              ...(isHighVolumeEmail(this.opts.upstream) ? { minTokenLifetimeMs: HVE_MIN_TOKEN_LIFETIME_MS } : {}),
            },
            envelope,
          );
    upstreamDone();
    this.pump();
    const recorded = await this.apply(id, recordOutcome(this.outcomeContext, envelope, outcome));
    // The account got its token while this attempt was finding it missing: do not wait for the next sign-in.
    if (recorded.remaining?.state.status === 'held' && (this.acquiredCount.get(envelope.account) ?? 0) !== acquiredBefore) {
      await this.releaseHeld(envelope.account);
    }
  }

  /** Caches where the message now stands and publishes the events (a dead copy of refused recipients has its own id). */
  private async apply(id: string, pending: Promise<RecordedOutcome>): Promise<RecordedOutcome> {
    const recorded = await pending;
    this.remember(id, recorded.remaining);
    for (const { name, event } of recorded.events) this.emit(name, event);
    return recorded;
  }

  /** Held messages of `account` (or of every account whose token state is 'acquired') go back to the queue. */
  private async releaseHeld(account: string | null): Promise<void> {
    const accounts = account === null ? this.schedule.heldAccounts().filter((a) => this.opts.tokens.stateOf(a) === 'acquired') : [account];
    const held = accounts.flatMap((a) => this.schedule.heldOf(a));
    for (const envelope of held) {
      const nowIso = new Date(this.now()).toISOString();
      const state = { ...envelope.state, status: 'queued' as const, nextAttemptAt: nowIso, updatedAt: nowIso };
      const written = await this.opts.spool.update(envelope.id, state).catch((err) => {
        this.log.error({ id: envelope.id, ...errorFields(err) }, 'cannot release a held message');
        return false;
      });
      this.remember(envelope.id, written ? { ...envelope, state } : null);
      if (written) this.log.info({ id: envelope.id, account: envelope.account }, 'released: the account has a token again');
    }
    this.pump();
  }

  /**
   * Brings the cache in step with a rescan: only messages whose state differs are rescheduled, so a rescan of an
   * unchanged queue costs one pass over it (per rescan interval, not per event) and no heap work. The pass yields
   * to other work every RECONCILE_CHUNK messages: at 100,000 queued it takes about 50 ms, which in one piece would
   * show in the 250 of every device sending meanwhile. What this process wrote while the rescan was reading or
   * reconciling (`writtenDuringScan`) is newer than what it read, and is kept.
   */
  private async reconcile(listed: SpooledEnvelope[]): Promise<void> {
    const seen = new Set<string>();
    for (let i = 0; i < listed.length; i += 1) {
      if (i > 0 && i % RECONCILE_CHUNK === 0) {
        await nextTurn();
        if (this.stopped) return; // the next start rescans
      }
      const envelope = listed[i]!;
      seen.add(envelope.id);
      if (this.writtenDuringScan.has(envelope.id)) continue;
      const mine = this.schedule.get(envelope.id);
      if (mine && sameState(mine, envelope)) continue;
      this.schedule.set(envelope, this.pacingKey(envelope.account));
    }
    let i = 0;
    for (const id of this.schedule.ids()) {
      if (++i % RECONCILE_CHUNK === 0) {
        await nextTurn();
        if (this.stopped) return;
      }
      if (!seen.has(id) && !this.writtenDuringScan.has(id)) this.schedule.delete(id); // deleting while iterating a Map is safe
    }
  }

  /** Keeps the cache in step with what this process wrote (null: gone from the queue). */
  private remember(id: string, envelope: SpooledEnvelope | null): void {
    if (envelope) this.schedule.set(envelope, this.pacingKey(envelope.account));
    else this.schedule.delete(id);
    if (this.scanning) this.writtenDuringScan.add(id);
  }

  private mailboxOrNull(account: string): string | null {
    try {
      return this.opts.mailboxOf(account);
    } catch {
      return null; // an account removed from the config: its messages wait (held) until it is back or they expire
    }
  }

  /** Pacing is per mailbox (what Exchange limits); an unknown account is paced on its own. */
  private pacingKey(account: string): string {
    return this.mailboxOrNull(account)?.toLowerCase() ?? `account:${account}`;
  }

  private wakeUpAt(at: number): void {
    if (!Number.isFinite(at) || (this.wakeTimer && this.wakeAt <= at)) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAt = Infinity;
      this.pump();
    }, Math.max(0, at - this.now()));
    this.wakeTimer.unref();
  }
}

/** Messages a rescan reconciles between two yields to the event loop (a few ms of work). */
const RECONCILE_CHUNK = 4096;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Same delivery state (every state change rewrites updatedAt; the rest guards against a clock set back). */
function sameState(a: SpooledEnvelope, b: SpooledEnvelope): boolean {
  return (
    a.state.updatedAt === b.state.updatedAt &&
    a.state.status === b.state.status &&
    a.state.nextAttemptAt === b.state.nextAttemptAt &&
    a.state.since === b.state.since &&
    a.rcptTo.length === b.rcptTo.length
  );
}
