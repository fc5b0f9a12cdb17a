/**
 * Composition root: config → logger → token services → spool and delivery → admin (metrics, notices) →
 * listeners. Start in that order, stop in reverse: listeners stop accepting, open sessions and in-flight
 * deliveries get a bounded time to end, then tokens are flushed. Nothing here knows a protocol; each part is
 * built from the config it needs.
 */
import type { Config } from './config/schema.js';
import { startAdminServer, RelayMetrics, type AdminServer } from './admin/index.js';
import { testAccount } from './checks/account-check.js';
import { doctorAccount } from './checks/doctor/doctor.js';
import { DeviceDirectory } from './auth/device-directory.js';
import { FailureThrottle } from './auth/failure-throttle.js';
import { TokenServices } from './auth/token-services.js';
import { errorFields, type Logger } from './log.js';
import { followAccountStates, type AccountNotifier } from './notify/index.js';
import { DeliveryWorker } from './smtp/delivery/index.js';
import { deliveryTimeouts } from './smtp/delivery/upstream-sender.js';
import { createPasswordVerifier } from './auth/password-hash.js';
import { VerificationGate } from './auth/verification-gate.js';
import { ImapListener } from './imap/imap-listener.js';
import { Pop3Listener } from './pop3/pop3-listener.js';
import { SmtpListener } from './smtp/listener.js';
import { Spool } from './smtp/spool/index.js';
import { LoginQueue } from './transport/login-queue.js';
import { loadDeviceTlsMaterial, loadUpstreamExtraCa } from './transport/tls-options.js';
import { MailboxSlots } from './transport/mailbox-slots.js';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Passed to the delivery worker (tests shorten the rescan interval). */
  deliveryRescanMs?: number;
}

/** A listener of any protocol: it binds, and it closes (draining its sessions). */
interface Listener {
  listen(): Promise<number>;
  close(): Promise<unknown>;
}

export interface BoundPorts {
  smtp: number[];
  imap: number[];
  pop3: number[];
}

/** The operator surface; `accepting` is what /readyz reports for the listeners. */
interface OperatorSurface {
  metrics: RelayMetrics;
  admin: AdminServer;
  /** Replaced on reload when the notification settings change. */
  notifier: AccountNotifier;
  stopObserving: () => void;
  accepting: { value: boolean };
}

export class Daemon {
  private constructor(
    private readonly live: { config: Config },
    readonly tokens: TokenServices,
    readonly spool: Spool,
    readonly delivery: DeliveryWorker,
    private readonly listeners: Array<{ protocol: keyof BoundPorts; listener: Listener }>,
    readonly ports: BoundPorts,
    private readonly log: Logger,
    private readonly surface: OperatorSurface,
    private readonly devices: DeviceDirectory,
  ) {}

  /** The configuration in force (changes with `reload`). */
  get config(): Config {
    return this.live.config;
  }

  /** The relay's metrics: listeners report sessions and failed logins here. */
  get metrics(): RelayMetrics {
    return this.surface.metrics;
  }

  /** The admin listener (its `url` for the demo and the log). */
  get admin(): AdminServer {
    return this.surface.admin;
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { config } = opts;
    const log = opts.logger;
    const tokens = await TokenServices.create(config, log, opts.env);
    await tokens.start({ watch: true });
    for (const s of tokens.all()) log.info({ account: s.name, mailbox: s.mailbox, state: s.state.state }, 'account');

    const spool = await Spool.open(config.stateDir, { recover: true, maxMessageBytes: config.smtp.maxMessageBytes });
    if (spool.recovery && spool.recovery.tmpRemoved + spool.recovery.orphansRemoved + spool.recovery.duplicatesResolved > 0) {
      log.warn({ ...spool.recovery }, 'spool recovered after an unclean stop (only unacknowledged data removed)');
    }
    const upstreamCa = loadUpstreamExtraCa(config);
    const delivery = new DeliveryWorker({
      spool,
      tokens,
      upstream: { ...config.smtp.upstream, timeouts: deliveryTimeouts(config.smtp.upstream) },
      extraCaPem: upstreamCa,
      limits: config.smtp.delivery,
      mailboxOf: (account) => tokens.get(account).mailbox,
      logger: log.child({ component: 'delivery' }),
      ...(opts.deliveryRescanMs ? { rescanIntervalMs: opts.deliveryRescanMs } : {}),
    });
    const metrics = new RelayMetrics();
    // One cap for every IMAP and POP3 listener: Exchange counts a mailbox's sessions, not a listener's.
    const slots = new MailboxSlots(config.mailboxSessions);
    const proxied = config.imap.listen.length + config.pop3.listen.length > 0;
    const stopObserving = metrics.observe({ tokens, spool, delivery, ...(proxied ? { mailboxSessions: slots } : {}) });
    await delivery.start();

    const accepting = { value: false };
    const liveConfig = { config };
    let admin: AdminServer;
    try {
      admin = await startAdminServer({
        config, tokens, spool, delivery, logger: log, metrics,
        ...(proxied ? { mailboxSessions: slots } : {}),
        ready: () => accepting.value,
        testAccount: (account) => testAccount(account, { config, tokens, extraCaPem: upstreamCa, logger: log }),
        // The doctor with the configuration in force and the senders this relay's spool has seen for the account.
        doctorAccount: (account) =>
          doctorAccount(account, {
            config: liveConfig.config,
            tokens,
            account: (name) => tokens.get(name),
            extraCaPem: upstreamCa,
            logger: log,
            seenSenders: async (name) => [...new Set([...(await spool.list()), ...(await spool.listDead())].filter((e) => e.account === name && e.mailFrom !== '').map((e) => e.mailFrom))],
          }),
      });
    } catch (err) {
      stopObserving();
      await delivery.stop(1000);
      await tokens.stop();
      throw err;
    }
    const notifier = followAccountStates(tokens, notifierOptions(config, log, admin.url));
    const surface: OperatorSurface = { metrics, admin, notifier, stopObserving, accepting };

    const live = liveConfig;
    const gate = new VerificationGate({ concurrent: config.logins.maxConcurrentChecks, queued: config.logins.maxQueuedChecks });
    const devices = new DeviceDirectory(config.devices, createPasswordVerifier({ gate }));
    const throttle = new FailureThrottle();
    const tls = loadDeviceTlsMaterial(config);
    // One queue for both proxies: the bound is on the process's upstream handshakes, whatever the protocol.
    const upstreamLogins = new LoginQueue(config.logins.maxConcurrentUpstreamLogins, config.logins.maxQueuedUpstreamLogins);
    const proxy = { config, devices, throttle, tls, tokens, upstreamExtraCaPem: upstreamCa, upstreamLogins, logger: log, metrics, slots };
    const listeners: Array<{ protocol: keyof BoundPorts; listener: Listener }> = [
      ...config.smtp.listen.map((listen) => ({ protocol: 'smtp' as const, listener: new SmtpListener({ config, current: () => live.config, listen, devices, throttle, tls, sink: spool, logger: log, metrics }) })),
      ...config.imap.listen.map((listen) => ({ protocol: 'imap' as const, listener: new ImapListener({ ...proxy, listen }) })),
      ...config.pop3.listen.map((listen) => ({ protocol: 'pop3' as const, listener: new Pop3Listener({ ...proxy, listen }) })),
    ];
    const ports: BoundPorts = { smtp: [], imap: [], pop3: [] };
    try {
      for (const { protocol, listener } of listeners) ports[protocol].push(await listener.listen());
    } catch (err) {
      for (const { listener } of listeners) await listener.close().catch(() => undefined);
      await closeSurface(surface);
      await delivery.stop(1000);
      await tokens.stop();
      throw err;
    }
    accepting.value = true;
    log.info({ ports, admin: admin.url }, 'xoauth2-relay ready');
    return new Daemon(live, tokens, spool, delivery, listeners, ports, log, surface, devices);
  }

  /**
   * SIGHUP: a new configuration takes effect as a whole, or not at all. What can change without dropping a
   * connection (devices, accounts, notifications) is applied together: token services for added or changed accounts
   * are started before any device can name them, removed ones are retired (sessions that began with them finish);
   * SMTP sessions keep the configuration they began with. A change to anything else (listeners, TLS, upstreams,
   * the state directory, limits) refuses the whole reload, names those keys, and the running configuration stays.
   * A config with errors never gets here (run.ts checks it).
   */
  async reload(next: Config): Promise<{ applied: string[]; refused: string[] }> {
    const changed = changedKeys(this.live.config, next);
    const liveKey = (k: string) => ['devices', 'accounts', 'notify'].some((top) => k === top || k.startsWith(`${top}.`));
    const refused = changed.filter((k) => !liveKey(k));
    if (refused.length > 0) {
      this.log.error({ refused, code: 'CONFIG_RELOAD_REFUSED' }, `reload refused as a whole: ${refused.join(', ')} can change only with a restart (the running configuration stays; restart the service to apply, or undo those changes and reload again)`);
      return { applied: [], refused };
    }
    const applied: string[] = [];
    const accountsChanged = changed.some((k) => k === 'accounts' || k.startsWith('accounts.'));
    if (accountsChanged) {
      const result = await this.tokens.apply(next); // throws before changing anything when a new account cannot be built
      applied.push('accounts');
      this.log.info(result, 'accounts reloaded');
    }
    if (changed.some((k) => k === 'devices' || k.startsWith('devices.'))) {
      this.devices.replace(next.devices);
      applied.push('devices');
    }
    if (accountsChanged || changed.some((k) => k.startsWith('notify'))) {
      this.surface.notifier.stop();
      this.surface.notifier = followAccountStates(this.tokens, notifierOptions(next, this.log, this.surface.admin.url));
      if (changed.some((k) => k.startsWith('notify'))) applied.push('notify');
    }
    this.live.config = next;
    this.log.info({ applied }, applied.length > 0 ? `configuration reloaded: ${applied.join(', ')}` : 'configuration reloaded: nothing changed');
    return { applied, refused: [] };
  }

  /** Stops accepting, lets open sessions and deliveries finish within `graceMs`, then stops. */
  async stop(graceMs = 20_000): Promise<void> {
    this.log.info({ graceMs }, 'stopping: no new connections, finishing what is in flight');
    this.surface.accepting.value = false; // /readyz answers 503 while the relay drains
    await Promise.all(this.listeners.map(({ listener }) => listener.close().catch((err) => this.log.warn(errorFields(err), 'listener close failed'))));
    const finished = await this.delivery.stop(graceMs);
    if (!finished) this.log.warn('deliveries still running at shutdown: they stay in the spool and are retried at the next start');
    await this.spool.close();
    await closeSurface(this.surface);
    await this.tokens.stop();
    this.log.info('stopped');
  }
}

function notifierOptions(config: Config, logger: Logger, adminUrl: string) {
  const n = config.notify;
  return { logger, adminUrl, webhook: n.webhookUrl ? { url: n.webhookUrl, timeoutMs: n.webhookTimeoutSeconds * 1000 } : null };
}

/** Dotted keys (two levels deep) whose values differ between two configs. */
function changedKeys(a: Config, b: Config): string[] {
  const out: string[] = [];
  for (const key of Object.keys(b) as Array<keyof Config>) {
    const [x, y] = [a[key], b[key]];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    if (x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x)) {
      for (const sub of new Set([...Object.keys(x), ...Object.keys(y)])) {
        if (JSON.stringify((x as Record<string, unknown>)[sub]) !== JSON.stringify((y as Record<string, unknown>)[sub])) out.push(`${key}.${sub}`);
      }
    } else out.push(key);
  }
  return out;
}

async function closeSurface(surface: OperatorSurface): Promise<void> {
  surface.notifier.stop();
  await surface.notifier.idle();
  await surface.admin.close();
  surface.stopObserving();
}
