/**
 * Where delivery sends to, and how long it waits: smtp.upstream's host and port, the extra CA, and the socket
 * timeouts. The connection itself is upstream-connection.ts; which connection a message takes is
 * mailbox-connections.ts.
 */
export interface UpstreamTarget {
  host: string;
  port: number;
  /** Extra CA (PEM) trusted besides the system roots (upstreamTls.extraCaFile): tests, private peers. */
  extraCaPem: string | null;
  /**
   * Socket timeouts in ms; `defaultDeliveryTimeouts` where absent. Never nodemailer's own (2 min connect, 10 min
   * idle): a server that stops answering mid-DATA (no FIN, no RST) held all of a mailbox's slots for 10 minutes.
   */
  timeouts?: { connectionMs?: number; greetingMs?: number; socketMs?: number };
}

/** smtp.upstream's defaults: connect 30 s; greeting, each reply and progress while sending 60 s. */
export const defaultDeliveryTimeouts = { connectionMs: 30_000, greetingMs: 60_000, socketMs: 60_000 } as const;

/**
 * The timeouts of smtp.upstream: `socketMs` is the socket's inactivity limit, which covers a silent reply and
 * a stalled DATA alike (a server that stops reading stops the writes, and so all activity).
 */
export function deliveryTimeouts(upstream: { connectTimeoutSeconds: number; stallTimeoutSeconds: number }): Required<NonNullable<UpstreamTarget['timeouts']>> {
  const stallMs = upstream.stallTimeoutSeconds * 1000;
  return { connectionMs: upstream.connectTimeoutSeconds * 1000, greetingMs: stallMs, socketMs: stallMs };
}
