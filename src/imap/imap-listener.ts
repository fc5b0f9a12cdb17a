/**
 * The device-facing IMAP listener: `new ImapListener({ config, listen, devices, throttle, tls, tokens,
 * upstreamExtraCaPem, logger })`, `listen()` resolves the port, `close()` stops accepting and drains sessions.
 * Devices log in with their password; the relay logs in at `imap.upstream` with XOAUTH2 and splices.
 */
import type { ProtocolLimits, ProxyTimeouts } from '../transport/device-session.js';
import { ProxyListener, type ProxyListenerOptions, type ProxyProtocol } from '../transport/proxy-listener.js';
import { serveImap } from './imap-front.js';

export type ImapListenerOptions = ProxyListenerOptions;

export const imapDefaultTimeouts: ProxyTimeouts = {
  preAuthMs: 60_000,
  // RFC 9051 §5.4: an inactivity autologout timer of at least 30 minutes; IDLE clients re-issue within 29.
  idleMs: 31 * 60_000,
  upstreamConnectMs: 15_000,
  upstreamReplyMs: 30_000,
  lingerMs: 30_000,
};

export const imapDefaultLimits: ProtocolLimits = {
  maxLineBytes: 8 * 1024,
  maxLiteralBytes: 64 * 1024,
  maxErrors: 10,
};

const imapProtocol: ProxyProtocol = {
  name: 'imap',
  defaultTimeouts: imapDefaultTimeouts,
  defaultLimits: imapDefaultLimits,
  upstreamOf: (config) => config.imap.upstream,
  untagged: (reply) => `* ${reply}`,
  serve: serveImap,
};

/** A device-facing IMAP listener: the shared proxy listener with the IMAP front. */
export class ImapListener extends ProxyListener {
  constructor(options: ImapListenerOptions) {
    super(options, imapProtocol);
  }
}
