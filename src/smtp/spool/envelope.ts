/**
 * What the spool keeps next to each message: the SMTP envelope as the device gave it (after the listener applied
 * the account's senderPolicy), and the delivery state. The JSON file holding it is the commit marker: a message
 * whose envelope file exists was acknowledged with `250` and must be delivered or dead-lettered, never lost.
 */
import type { ErrorCode } from '../../errors.js';

/** Where a message stands. The allowed moves between statuses are `statusTransitions` below. */
export type MessageStatus = 'queued' | 'deferred' | 'held' | 'dead';

export interface DeliveryState {
  status: MessageStatus;
  /** Delivery attempts that reached a verdict (held time does not count). */
  attempts: number;
  /** ISO time after which the worker may try again. */
  nextAttemptAt: string;
  /** Last reply seen from upstream (`451 4.7.0 …`), or null. */
  lastReply: string | null;
  /** What went wrong and what to do, for the operator (from the error catalogue), or null. */
  lastReason: string | null;
  /** Catalogue code of lastReason, for grouping on the admin page and in metrics. */
  lastCode: ErrorCode | null;
  /** ISO time this state was written (also breaks ties when a crash left a message both queued and dead). */
  updatedAt: string;
  /**
   * ISO start of the current delivery effort: receivedAt, or when an operator brought the message back from
   * dead/. `smtp.delivery.maxAgeHours` counts from here, so a resurrected message gets a full new period.
   */
  since: string;
}

export interface SpooledEnvelope {
  /** Time-sortable unique id (`<base36 ms>-<random hex>`); also the file name. */
  id: string;
  /** Device name from the configuration (logs, admin page). */
  device: string;
  /** Account (key under `accounts`) whose mailbox sends it. */
  account: string;
  /** Envelope sender (RFC 5321 reverse-path); '' for the null sender. */
  mailFrom: string;
  rcptTo: string[];
  /** ISO time the device's final `250` was earned. */
  receivedAt: string;
  remoteAddress: string;
  /** Bytes of the message file. */
  size: number;
  /** The device used SMTPUTF8 (RFC 6531) addresses. */
  smtpUtf8: boolean;
  state: DeliveryState;
  /** Set on a dead-letter copy made for the recipients a partly accepted message could not reach. */
  splitFrom?: string;
}

/** What the listener hands to `Spool.commit`; the spool fills in id, size, receivedAt (unless given) and state. */
export type NewEnvelope = Omit<SpooledEnvelope, 'id' | 'size' | 'state' | 'receivedAt' | 'splitFrom'> & { receivedAt?: string };

/** What happens to a message; the worker and the queue CLI speak in these events. */
export type MessageEvent =
  | 'delivered'
  | 'temporary-failure'
  | 'token-unavailable'
  | 'token-available'
  | 'permanent-failure'
  | 'expired'
  | 'operator-retry'
  | 'operator-drop';

/** `removed`: the message leaves the spool (delivered, or dropped by an operator). */
export type StatusTarget = MessageStatus | 'removed';

/**
 * The message life cycle as data. An event missing from a row is not allowed in that status
 * (e.g. a dead message is never delivered until an operator retries it).
 *
 * | status   | delivered | temporary-failure | token-unavailable | token-available | permanent-failure | expired | operator-retry | operator-drop |
 * |----------|-----------|-------------------|-------------------|-----------------|-------------------|---------|----------------|---------------|
 * | queued   | removed   | deferred          | held              |                 | dead              | dead    | queued         | removed       |
 * | deferred | removed   | deferred          | held              |                 | dead              | dead    | queued         | removed       |
 * | held     |           |                   | held              | queued          |                   | dead    | queued         | removed       |
 * | dead     |           |                   |                   |                 |                   |         | queued         | removed       |
 */
export const statusTransitions: Record<MessageStatus, Partial<Record<MessageEvent, StatusTarget>>> = {
  queued: { delivered: 'removed', 'temporary-failure': 'deferred', 'token-unavailable': 'held', 'permanent-failure': 'dead', expired: 'dead', 'operator-retry': 'queued', 'operator-drop': 'removed' },
  deferred: { delivered: 'removed', 'temporary-failure': 'deferred', 'token-unavailable': 'held', 'permanent-failure': 'dead', expired: 'dead', 'operator-retry': 'queued', 'operator-drop': 'removed' },
  held: { 'token-unavailable': 'held', 'token-available': 'queued', expired: 'dead', 'operator-retry': 'queued', 'operator-drop': 'removed' },
  dead: { 'operator-retry': 'queued', 'operator-drop': 'removed' },
};

/** The status an event leads to, or null when the event is not allowed in this status. */
export function nextStatus(current: MessageStatus, event: MessageEvent): StatusTarget | null {
  return statusTransitions[current][event] ?? null;
}

/** Statuses the worker picks up once `nextAttemptAt` has passed. */
export function isDeliverable(status: MessageStatus): boolean {
  return status === 'queued' || status === 'deferred';
}
