/**
 * POSTs a JSON notice to the operator's webhook (a chat channel's incoming webhook, an alerting gateway).
 * Built to never make things worse: one attempt per notice with a timeout, no retries; the same notice is
 * not sent again within `repeatAfterMs`; at most `maxPerHour` notices an hour however many accounts flip; no
 * redirects followed. A failure is logged and that is all: the log line with the fix was written already.
 */
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';

export interface WebhookOptions {
  /** http(s) URL the notices are POSTed to. */
  url: string;
  logger: Logger;
  /** Give up on one POST after this long; default 5 s. */
  timeoutMs?: number;
  /** Do not repeat an identical notice (same key) within this; default 1 hour. */
  repeatAfterMs?: number;
  /** Notices sent in any hour, at most; default 30. */
  maxPerHour?: number;
  now?: () => number;
}

/** What the webhook receives: a JSON object, and a `key` (not sent) that says which notices are the same. */
export interface WebhookNotice {
  key: string;
  body: Record<string, unknown>;
}

export class Webhook {
  private readonly url: URL;
  private readonly timeoutMs: number;
  private readonly repeatAfterMs: number;
  private readonly maxPerHour: number;
  private readonly now: () => number;
  private readonly lastSent = new Map<string, number>();
  private readonly sentTimes: number[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private suppressedSinceWarning = 0;

  constructor(private readonly opts: WebhookOptions) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new RelayError('CONFIG_INVALID', 'notify.webhookUrl is not a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RelayError('CONFIG_INVALID', 'notify.webhookUrl must be an http:// or https:// URL');
    this.url = url;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.repeatAfterMs = opts.repeatAfterMs ?? 3_600_000;
    this.maxPerHour = opts.maxPerHour ?? 30;
    this.now = opts.now ?? Date.now;
  }

  /** Sends the notice unless it is a repeat or over the hourly cap; never rejects. */
  send(notice: WebhookNotice): void {
    const nowMs = this.now();
    const last = this.lastSent.get(notice.key);
    if (last !== undefined && nowMs - last < this.repeatAfterMs) return;
    while (this.sentTimes.length > 0 && nowMs - this.sentTimes[0]! >= 3_600_000) this.sentTimes.shift();
    if (this.sentTimes.length >= this.maxPerHour) {
      if (this.suppressedSinceWarning++ === 0) this.opts.logger.warn({ maxPerHour: this.maxPerHour }, 'webhook: too many notices this hour, further ones are only logged');
      return;
    }
    this.suppressedSinceWarning = 0;
    this.lastSent.set(notice.key, nowMs);
    this.sentTimes.push(nowMs);
    const post = this.post(notice).finally(() => this.inFlight.delete(post));
    this.inFlight.add(post);
  }

  /** Resolves when every POST under way has finished (shutdown, tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  private async post(notice: WebhookNotice): Promise<void> {
    const log = this.opts.logger;
    // The URL may carry a secret in its path or query (chat webhooks do): only the origin is logged.
    const target = this.url.origin;
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'xoauth2-relay' },
        body: JSON.stringify(notice.body),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) log.info({ target, event: notice.body.event, status: response.status }, 'webhook notice sent');
      else log.warn({ target, event: notice.body.event, status: response.status, errorCode: 'WEBHOOK_FAILED' }, new RelayError('WEBHOOK_FAILED', `HTTP ${response.status}`).message);
    } catch (err) {
      const why = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : err instanceof Error ? err.message : String(err);
      log.warn({ target, event: notice.body.event, errorCode: 'WEBHOOK_FAILED' }, new RelayError('WEBHOOK_FAILED', why).message);
    }
  }
}
