/**
 * The device-facing POP3 listener: `new Pop3Listener({ config, listen, devices, throttle, tls, tokens,
 * upstreamExtraCaPem, logger })`, `listen()` resolves the port, `close()` stops accepting and drains sessions.
 * Devices log in with their password; the relay logs in at `pop3.upstream` with XOAUTH2 and splices.
 */
import type { ProxyLimits, ProxyTimeouts } from '../transport/device-session.js';
import { ProxyListener, type ProxyListenerOptions, type ProxyProtocol } from '../transport/proxy-listener.js';
import type { DrainResult, SessionRegistry } from '../transport/session-registry.js';
import { servePop3 } from './pop3-front.js';

export type Pop3ListenerOptions = ProxyListenerOptions;

export const pop3DefaultTimeouts: ProxyTimeouts = {
  preAuthMs: 60_000,
  // RFC 1939 §3: an inactivity autologout timer of at least 10 minutes.
  idleMs: 10 * 60_000,
  upstreamConnectMs: 15_000,
  upstreamReplyMs: 30_000,
  lingerMs: 30_000,
};

export const pop3DefaultLimits: Omit<ProxyLimits, 'maxConnectionsPerAddress'> = {
  maxLineBytes: 8 * 1024,
  maxLiteralBytes: 0, // POP3 has no literals
  maxErrors: 10,
};

const pop3Protocol: ProxyProtocol = {
  name: 'pop3',
  defaultTimeouts: pop3DefaultTimeouts,
  defaultLimits: pop3DefaultLimits,
  upstreamOf: (config) => config.pop3.upstream,
  untagged: (reply) => reply,
  serve: servePop3,
};

export class Pop3Listener {
  private readonly proxy: ProxyListener;

  constructor(options: Pop3ListenerOptions) {
    this.proxy = new ProxyListener(options, pop3Protocol);
  }

  /** The open sessions (shared with other listeners when the options passed a registry). */
  get registry(): SessionRegistry {
    return this.proxy.registry;
  }

  listen(): Promise<number> {
    return this.proxy.listen();
  }

  /** Stops accepting; ends pre-login sessions now and spliced ones after `drainMs` at the latest. */
  async close(): Promise<void> {
    await this.proxy.close();
  }

  /** Like close(), reporting how many sessions ended by themselves and how many were cut. */
  closeAndReport(): Promise<DrainResult> {
    return this.proxy.close();
  }
}
