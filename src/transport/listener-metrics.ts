/**
 * What listeners report for metrics (open sessions, failed logins), as a narrow interface so protocol code
 * does not depend on prom-client; the admin's RelayMetrics implements it.
 */
export type ListenerProtocol = 'smtp' | 'imap' | 'pop3';

/** Why a login was not checked: the back-off refused it, or the verification queue was full. */
export type LoginRefusal = 'throttled' | 'busy';
/** Why a connection was refused or ended before login. */
export type ConnectionRefusal = 'listener-full' | 'address-full' | 'too-many-commands';

export interface ListenerMetrics {
  sessionOpened(protocol: ListenerProtocol): void;
  sessionClosed(protocol: ListenerProtocol): void;
  authFailed(protocol: ListenerProtocol): void;
  loginRefused?(protocol: ListenerProtocol, reason: LoginRefusal): void;
  connectionRefused?(protocol: ListenerProtocol, reason: ConnectionRefusal): void;
  /** A device's TLS handshake failed; reason and offered are the small sets of tls-diagnosis.ts, listener is `host:port`. */
  tlsHandshakeFailed?(protocol: ListenerProtocol, listener: string, reason: string, offered: string): void;
}

export const noListenerMetrics: ListenerMetrics = {
  sessionOpened: () => undefined,
  sessionClosed: () => undefined,
  authFailed: () => undefined,
};
