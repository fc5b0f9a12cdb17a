/**
 * What listeners report for metrics (open sessions, failed logins), as a narrow interface so protocol code
 * does not depend on prom-client; the admin's RelayMetrics implements it.
 */
export type ListenerProtocol = 'smtp' | 'imap' | 'pop3';

export interface ListenerMetrics {
  sessionOpened(protocol: ListenerProtocol): void;
  sessionClosed(protocol: ListenerProtocol): void;
  authFailed(protocol: ListenerProtocol): void;
}

export const noListenerMetrics: ListenerMetrics = {
  sessionOpened: () => undefined,
  sessionClosed: () => undefined,
  authFailed: () => undefined,
};
