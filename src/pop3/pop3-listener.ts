/**
 * The device-facing POP3 listener: `new Pop3Listener({ config, listen, devices, throttle, tls, tokens,
 * upstreamExtraCaPem, logger })`, `listen()` resolves the port, `close()` stops accepting and drains sessions.
 * Devices log in with their password; the relay logs in at `pop3.upstream` with XOAUTH2 and splices.
 */
import type { ProtocolLimits, ProxyTimeouts } from '../transport/device-session.js';
import { ProxyListener, type ProxyListenerOptions, type ProxyProtocol } from '../transport/proxy-listener.js';
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

export const pop3DefaultLimits: ProtocolLimits = {
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

/** A device-facing POP3 listener: the shared proxy listener with the POP3 front. */
export class Pop3Listener extends ProxyListener {
  constructor(options: Pop3ListenerOptions) {
    super(options, pop3Protocol);
  }
}
