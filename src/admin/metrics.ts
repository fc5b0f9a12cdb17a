/**
 * Prometheus metrics (`/metrics` on the admin listener), in a registry of our own so that nothing else in the
 * process (a library registering on prom-client's global registry) can add to or break what we expose.
 *
 * Counters move on events: the spool's 'committed' (accepted), the delivery worker's outcomes, token state
 * changes. Gauges that describe the present (spool size, oldest message, token state) are read at scrape time,
 * so they are never stale and cost nothing between scrapes. Listeners report sessions and failed logins by
 * calling `sessionOpened` / `sessionClosed` / `authFailed` themselves.
 *
 * Label values are account names (from the configuration) and protocol names: a bounded set, never a mailbox
 * address typed by a device, so a hostile client cannot blow up the number of series.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TokenServices } from '../auth/token-services.js';
import { faultCount } from '../faults.js';
import type { TokenState, TokenStateName } from '../auth/token-state.js';
import type { DeliveryEvent, DeliveryWorker } from '../smtp/delivery/index.js';
import type { MessageStatus, Spool, SpooledEnvelope } from '../smtp/spool/index.js';

import type { MailboxSessionsView } from '../transport/mailbox-slots.js';
import type { ConnectionRefusal, ListenerMetrics, ListenerProtocol, LoginRefusal } from '../transport/listener-metrics.js';

export type { ListenerProtocol };

/** What the metrics follow; the daemon passes its own token services, spool and worker. */
export interface MetricSources {
  tokens: Pick<TokenServices, 'all' | 'on' | 'off' | 'storeStatus'>;
  spool: Pick<Spool, 'on' | 'off' | 'summary'>;
  delivery: Pick<DeliveryWorker, 'on' | 'off'>;
  /** The per-mailbox cap on upstream IMAP/POP3 sessions (absent: its series are not exposed). */
  mailboxSessions?: MailboxSessionsView;
}

export interface RelayMetricsOptions {
  /** Also expose Node's process metrics (memory, CPU, event-loop lag, open files); default true. */
  processMetrics?: boolean;
  now?: () => number;
}

const PREFIX = 'xoauth2_relay_';
const tokenStates: readonly TokenStateName[] = ['not-acquired', 'waiting-authorization', 'acquired', 'invalid'];
const spoolStatuses: readonly MessageStatus[] = ['queued', 'deferred', 'held', 'dead'];
/** From the device's 250 to Exchange's: seconds when all is well, hours when a token was missing. */
const latencyBuckets = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

/** Gauges of one scrape read the spool once. */
const SNAPSHOT_REUSE_MS = 100;

interface SpoolSnapshot {
  counts: Record<MessageStatus, number>;
  oldestAgeSeconds: number;
}

async function readSpoolSnapshot(spool: MetricSources['spool'], nowMs: number): Promise<SpoolSnapshot> {
  // The daemon's spool answers from its index: no envelope is read per scrape, whatever the queue length.
  const summary = await spool.summary(0);
  const first = summary.oldestReceivedAt === null ? NaN : Date.parse(summary.oldestReceivedAt);
  return { counts: summary.counts, oldestAgeSeconds: Number.isFinite(first) ? Math.max(0, (nowMs - first) / 1000) : 0 };
}

export class RelayMetrics implements ListenerMetrics {
  readonly registry = new Registry();
  private readonly now: () => number;
  private sources: MetricSources | null = null;
  private snapshot: { at: number; value: Promise<SpoolSnapshot | null> } | null = null;

  private readonly accepted = this.counter('messages_accepted_total', 'Messages accepted from devices (durably spooled, device answered 250)', ['account']);
  private readonly delivered = this.counter('messages_delivered_total', 'Messages delivered upstream', ['account']);
  private readonly deferred = this.counter('messages_deferred_total', 'Delivery attempts that ended in a temporary failure (retried later)', ['account']);
  private readonly held = this.counter('messages_held_total', 'Delivery attempts that found no usable token (held until the account has one)', ['account']);
  private readonly dead = this.counter('messages_dead_total', 'Messages (or recipients) moved to the dead letters', ['account']);
  private readonly latency = new Histogram({
    name: `${PREFIX}delivery_latency_seconds`,
    help: 'Time from the device\'s 250 to the upstream\'s acceptance',
    labelNames: ['account'] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  private readonly tokensObtained = this.counter('token_refreshes_total', 'Access tokens obtained (refreshes, and the first token after a sign-in)', ['account']);
  private readonly tokenFailures = this.counter('token_refresh_failures_total', 'Token refreshes that failed: kind=grant turned the account invalid, kind=transient kept the token and retries', ['account', 'kind']);
  private readonly sessions = new Gauge({ name: `${PREFIX}sessions_open`, help: 'Device sessions open now', labelNames: ['protocol'] as const, registers: [this.registry] });
  private readonly faults = new Counter({
    name: `${PREFIX}internal_faults_total`,
    help: 'Faults no handler caught (unhandled rejections, uncaught exceptions): logged as UNHANDLED_FAULT, the relay kept serving',
    registers: [this.registry],
    collect() {
      this.reset();
      this.inc(faultCount());
    },
  });
  private readonly authFailures = this.counter('auth_failures_total', 'Failed device logins (wrong user name or password, or refused source address)', ['protocol']);
  private readonly loginRefusals = this.counter('logins_refused_total', 'Device logins refused without a password check: reason=throttled (failed-login back-off), reason=busy (verification queue full)', ['protocol', 'reason']);
  private readonly connectionRefusals = this.counter('connections_refused_total', 'Device connections refused or ended before login: reason=listener-full, address-full, too-many-commands', ['protocol', 'reason']);
  private readonly tlsFailures = this.counter('tls_handshake_failures_total', 'Device TLS handshakes that failed, by listener (host:port), reason (version-too-old, no-shared-cipher, certificate-rejected, not-tls, timeout, closed, other) and the highest version the device offered (tls1.0 … tls1.3, ssl3, none, unknown); the log line says what to change', ['protocol', 'listener', 'reason', 'offered']);

  constructor(opts: RelayMetricsOptions = {}) {
    this.now = opts.now ?? Date.now;
    for (const protocol of ['smtp', 'imap', 'pop3'] as const) {
      this.sessions.set({ protocol }, 0);
      this.authFailures.inc({ protocol }, 0);
      for (const reason of ['throttled', 'busy'] as const) this.loginRefusals.inc({ protocol, reason }, 0);
      for (const reason of ['listener-full', 'address-full', 'too-many-commands'] as const) this.connectionRefusals.inc({ protocol, reason }, 0);
    }
    this.defineScrapeGauges();
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  /** Follows the spool, the worker and every account's token; returns the function that stops following. */
  observe(sources: MetricSources): () => void {
    this.sources = sources;
    const offs: Array<() => void> = [];
    const onCommitted = (e: SpooledEnvelope) => this.accepted.inc({ account: e.account });
    sources.spool.on('committed', onCommitted);
    offs.push(() => sources.spool.off('committed', onCommitted));
    const outcomes = { delivered: this.delivered, deferred: this.deferred, held: this.held, dead: this.dead } as const;
    for (const [name, counter] of Object.entries(outcomes) as Array<[keyof typeof outcomes, Counter<'account'>]>) {
      const listener = (event: DeliveryEvent) => {
        counter.inc({ account: event.account });
        if (name === 'delivered') this.latency.observe({ account: event.account }, Math.max(0, event.latencyMs) / 1000);
      };
      sources.delivery.on(name, listener);
      offs.push(() => sources.delivery.off(name, listener));
    }
    // Through the token services' own events, so accounts a reload adds are counted too.
    const lastRefresh = new Map<string, string | null>();
    for (const service of sources.tokens.all()) {
      this.tokensObtained.inc({ account: service.name }, 0);
      lastRefresh.set(service.name, service.state.state === 'acquired' ? service.state.lastRefresh : null);
    }
    const onState = (state: TokenState, account: string) => {
      const before = lastRefresh.get(account) ?? null;
      if (state.state === 'acquired' && state.lastRefresh && state.lastRefresh !== before) this.tokensObtained.inc({ account });
      if (state.state === 'invalid') this.tokenRefreshFailed(account, 'grant');
      if (state.state === 'acquired') lastRefresh.set(account, state.lastRefresh);
    };
    const onTransient = (account: string) => this.tokenRefreshFailed(account, 'transient');
    sources.tokens.on('state', onState);
    sources.tokens.on('refreshFailedTransient', onTransient);
    offs.push(() => {
      sources.tokens.off('state', onState);
      sources.tokens.off('refreshFailedTransient', onTransient);
    });
    return () => {
      offs.forEach((off) => off());
      if (this.sources === sources) this.sources = null;
    };
  }

  /** A device connected (listeners call this; pair it with `sessionClosed`). */
  sessionOpened(protocol: ListenerProtocol): void {
    this.sessions.inc({ protocol });
  }

  sessionClosed(protocol: ListenerProtocol): void {
    this.sessions.dec({ protocol });
  }

  /** A device login was refused (wrong credentials, or an address no device may use). */
  authFailed(protocol: ListenerProtocol): void {
    this.authFailures.inc({ protocol });
  }

  /** A device login was refused before its password was checked. */
  loginRefused(protocol: ListenerProtocol, reason: LoginRefusal): void {
    this.loginRefusals.inc({ protocol, reason });
  }

  /** A device connection was refused, or ended before login for sending too many commands. */
  connectionRefused(protocol: ListenerProtocol, reason: ConnectionRefusal): void {
    this.connectionRefusals.inc({ protocol, reason });
  }

  /** A device's TLS handshake failed (the listener logged why, once, at info). */
  tlsHandshakeFailed(protocol: ListenerProtocol, listener: string, reason: string, offered: string): void {
    this.tlsFailures.inc({ protocol, listener, reason, offered });
  }

  /** A refresh failed. Grant failures are counted from state changes already; transient ones need this call. */
  tokenRefreshFailed(account: string, kind: 'grant' | 'transient'): void {
    this.tokenFailures.inc({ account, kind });
  }

  /** The exposition text (format 0.0.4) and its content type, for `/metrics`. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return new Counter({ name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }

  /** Gauges read from the spool and the token services when Prometheus scrapes. */
  private defineScrapeGauges(): void {
    const metrics = this;
    new Gauge({
      name: `${PREFIX}token_store_up`,
      help: 'The token store answers (1) or not (0); kind=file is always 1, kind=redis follows the connection',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const status = metrics.sources?.tokens.storeStatus();
        if (status) this.set({ kind: status.kind }, status.reachable ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}token_state`,
      help: 'Token state per account: 1 for the current state, 0 for the others',
      labelNames: ['account', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const service of metrics.sources?.tokens.all() ?? []) {
          for (const state of tokenStates) this.set({ account: service.name, state }, service.state.state === state ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: `${PREFIX}upstream_sessions`,
      help: 'Upstream IMAP/POP3 sessions each mailbox holds now (capped by mailboxSessions.maxPerMailbox, IMAP and POP3 together)',
      labelNames: ['account', 'protocol'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const slots = metrics.sources?.mailboxSessions;
        if (!slots) return;
        const counts = new Map(slots.counts().map((c) => [c.account, c]));
        const accounts = new Set([...(metrics.sources?.tokens.all() ?? []).map((s) => s.name), ...counts.keys()]);
        for (const account of accounts) for (const protocol of ['imap', 'pop3'] as const) this.set({ account, protocol }, counts.get(account)?.held[protocol] ?? 0);
      },
    });
    new Counter({
      name: `${PREFIX}upstream_sessions_refused_total`,
      help: 'Device logins told to try again later because their mailbox held mailboxSessions.maxPerMailbox sessions: reason=wait-timeout (no slot came free in time), queue-full (too many logins waiting)',
      labelNames: ['account', 'protocol', 'reason'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of metrics.sources?.mailboxSessions?.refusedCounts() ?? []) this.inc({ account: r.account, protocol: r.protocol, reason: r.reason }, r.count);
      },
    });
    new Gauge({
      name: `${PREFIX}spool_messages`,
      help: 'Messages in the spool by status (dead: the dead letters)',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const spool = await metrics.spoolSnapshot();
        if (spool) for (const status of spoolStatuses) this.set({ status }, spool.counts[status]);
      },
    });
    new Gauge({
      name: `${PREFIX}spool_oldest_message_age_seconds`,
      help: 'Age of the oldest message waiting for delivery (queued, deferred or held); 0 when none',
      registers: [this.registry],
      async collect() {
        const spool = await metrics.spoolSnapshot();
        if (spool) this.set(spool.oldestAgeSeconds);
      },
    });
  }

  /**
   * One read of the spool shared by the gauges of one scrape. A spool that cannot be read keeps the last
   * values (null here); /readyz is where that shows.
   */
  private spoolSnapshot(): Promise<SpoolSnapshot | null> {
    const nowMs = this.now();
    if (this.snapshot && nowMs - this.snapshot.at < SNAPSHOT_REUSE_MS) return this.snapshot.value;
    const spool = this.sources?.spool;
    const value = spool ? readSpoolSnapshot(spool, nowMs).catch(() => null) : Promise.resolve(null);
    this.snapshot = { at: nowMs, value };
    return value;
  }
}
