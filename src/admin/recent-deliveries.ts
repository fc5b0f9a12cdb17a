/**
 * The page's "recent deliveries and failures": the last delivery events in memory (a ring buffer). The spool
 * on disk is the truth about messages; this is only what happened lately, and a restart forgets it.
 */
import type { ErrorCode } from '../errors.js';
import { catalogue } from '../errors.js';
import type { DeliveryEvent, DeliveryEventName, DeliveryWorker } from '../smtp/delivery/index.js';

export interface RecentDelivery extends DeliveryEvent {
  outcome: DeliveryEventName;
  /** ISO time the outcome was recorded. */
  at: string;
  /** The catalogue's sentence for `code`: what it means and what to do. */
  reason: string | null;
}

const outcomes: readonly DeliveryEventName[] = ['delivered', 'deferred', 'held', 'dead'];

export class RecentDeliveries {
  private readonly items: RecentDelivery[] = [];

  constructor(
    private readonly capacity = 50,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records the worker's events from now on; returns the function that stops it. */
  follow(delivery: Pick<DeliveryWorker, 'on' | 'off'>): () => void {
    const listeners = outcomes.map((outcome) => {
      const listener = (event: DeliveryEvent) => this.record(outcome, event);
      delivery.on(outcome, listener);
      return () => delivery.off(outcome, listener);
    });
    return () => listeners.forEach((off) => off());
  }

  record(outcome: DeliveryEventName, event: DeliveryEvent): void {
    this.items.push({ ...event, outcome, at: new Date(this.now()).toISOString(), reason: reasonOf(event.code) });
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }

  /** Newest first. */
  list(): RecentDelivery[] {
    return [...this.items].reverse();
  }
}

function reasonOf(code: ErrorCode | null): string | null {
  return code ? catalogue[code].message : null;
}
