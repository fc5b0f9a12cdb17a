/**
 * The delivery worker's view of the queue, ordered for scheduling, so that each event (a commit, a finished send,
 * a timer) costs O(log n) however many messages wait: with 100,000 deferred messages a sort of the whole queue per
 * commit cost 37–55 ms and showed in every device's 250 (bench/spool.ts).
 *
 * Every message not being sent is in exactly one place:
 * - waiting: deliverable but not due yet, in a heap by (next attempt, id);
 * - parked: due, waiting for its mailbox (pacing: connections or the per-minute window), in a heap per mailbox by
 *   id, so the oldest goes first as before; the worker takes from a mailbox's heap only when that mailbox can start
 *   a send (a slot freed, its window opened), never rescanning the others;
 * - held: waiting for its account's token, in a set per account, released when that account's state changes.
 * All of them are also in an expiry heap by (since + maxAgeHours, id): a message expires on time wherever it waits.
 *
 * Removal is lazy: changing or removing an entry gives it a new version, and heap nodes of an older version are
 * skipped when they reach the top (and compacted away when they outnumber the live ones).
 */
import { isDeliverable, type SpooledEnvelope } from '../spool/envelope.js';
import { MinHeap } from './min-heap.js';

interface Node {
  at: number;
  id: string;
  version: number;
}

type Place = 'waiting' | 'parked' | 'held';

interface Entry {
  envelope: SpooledEnvelope;
  /** The pacing key (the mailbox, lower-cased). */
  key: string;
  version: number;
  place: Place | null;
}

const byTimeThenId = (a: Node, b: Node) => a.at < b.at || (a.at === b.at && a.id < b.id);
const byId = (a: Node, b: Node) => a.id < b.id;
/** Stale nodes tolerated before a heap is compacted, beyond twice its live ones. */
const SLACK = 1024;

export class DeliverySchedule {
  private readonly entries = new Map<string, Entry>();
  /** Ids being sent or expired right now: not scheduled again until `finish`. */
  private readonly running = new Set<string>();
  private readonly waiting = new MinHeap<Node>(byTimeThenId);
  private readonly expiry = new MinHeap<Node>(byTimeThenId);
  private readonly parked = new Map<string, { heap: MinHeap<Node>; live: number }>();
  private readonly held = new Map<string, Set<string>>();
  private waitingLive = 0;
  private nextVersion = 1;

  /** `maxAgeMs`: smtp.delivery.maxAgeHours in ms, counted from the envelope's `state.since`. */
  constructor(private readonly maxAgeMs: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(id: string): SpooledEnvelope | undefined {
    return this.entries.get(id)?.envelope;
  }

  ids(): IterableIterator<string> {
    return this.entries.keys();
  }

  /** Records where a message stands (a dead one leaves the schedule); one being sent is placed when it finishes. */
  set(envelope: SpooledEnvelope, key: string): void {
    if (envelope.state.status === 'dead') return this.delete(envelope.id);
    const before = this.entries.get(envelope.id);
    if (before) this.unplace(before);
    const entry: Entry = { envelope, key, version: this.nextVersion++, place: null };
    this.entries.set(envelope.id, entry);
    if (!this.running.has(envelope.id)) this.place(entry);
  }

  delete(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.unplace(entry);
    this.entries.delete(id);
  }

  /** Messages whose maxAgeHours ran out by `nowMs`, now counted as running (the caller dead-letters them). */
  takeExpired(nowMs: number): SpooledEnvelope[] {
    const out: SpooledEnvelope[] = [];
    for (let top = this.validTop(this.expiry); top && top.at <= nowMs; top = this.validTop(this.expiry)) {
      this.expiry.pop();
      out.push(this.begin(this.entries.get(top.id)!));
    }
    return out;
  }

  /** Moves the messages due by `nowMs` to their mailbox's parked heap; returns the mailboxes that got some. */
  advance(nowMs: number): Set<string> {
    const keys = new Set<string>();
    for (let top = this.validTop(this.waiting); top && top.at <= nowMs; top = this.validTop(this.waiting)) {
      this.waiting.pop();
      this.waitingLive -= 1;
      const entry = this.entries.get(top.id)!;
      entry.place = 'parked';
      const parked = this.parkedOf(entry.key);
      parked.heap.push({ at: 0, id: entry.envelope.id, version: entry.version });
      parked.live += 1;
      if (parked.heap.size > 2 * parked.live + SLACK) parked.heap.compact((node) => this.isLive(node));
      keys.add(entry.key);
    }
    return keys;
  }

  hasParked(key: string): boolean {
    return (this.parked.get(key)?.live ?? 0) > 0;
  }

  /** The oldest due message of mailbox `key`, now counted as running; null when none is parked. */
  takeParked(key: string): SpooledEnvelope | null {
    const parked = this.parked.get(key);
    if (!parked) return null;
    for (let node = parked.heap.pop(); node; node = parked.heap.pop()) {
      const entry = this.entries.get(node.id);
      if (entry?.version === node.version && entry.place === 'parked') return this.begin(entry);
    }
    this.parked.delete(key); // empty: a mailbox seen once keeps no heap
    return null;
  }

  /** A send or expiry of `id` is over: its entry (as last `set`, if still there) is scheduled again. */
  finish(id: string): void {
    if (!this.running.delete(id)) return;
    const entry = this.entries.get(id);
    if (entry) this.place(entry);
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /** Accounts that have held messages. */
  heldAccounts(): string[] {
    return [...this.held.keys()];
  }

  /** The held messages of `account` (none of them running). */
  heldOf(account: string): SpooledEnvelope[] {
    return [...(this.held.get(account) ?? [])].map((id) => this.entries.get(id)!.envelope);
  }

  /** When the next message becomes due or expires (Infinity: nothing waits on time). */
  nextWakeAt(): number {
    return Math.min(this.validTop(this.waiting)?.at ?? Infinity, this.validTop(this.expiry)?.at ?? Infinity);
  }

  private begin(entry: Entry): SpooledEnvelope {
    this.unplace(entry); // a new version: its other heap nodes are stale now
    this.running.add(entry.envelope.id);
    return entry.envelope;
  }

  private place(entry: Entry): void {
    const { envelope } = entry;
    const node = (at: number): Node => ({ at, id: envelope.id, version: entry.version });
    // An unreadable date, as the old per-event walk read it: never expires, due at once.
    this.expiry.push(node(timeOr(envelope.state.since, Infinity) + this.maxAgeMs));
    if (envelope.state.status === 'held') {
      entry.place = 'held';
      let ids = this.held.get(envelope.account);
      if (!ids) this.held.set(envelope.account, (ids = new Set()));
      ids.add(envelope.id);
    } else if (isDeliverable(envelope.state.status)) {
      entry.place = 'waiting';
      this.waiting.push(node(timeOr(envelope.state.nextAttemptAt, -Infinity)));
      this.waitingLive += 1;
    }
    this.compactIfStale();
  }

  /** Takes the entry out of its place; its heap nodes go stale with the next version. */
  private unplace(entry: Entry): void {
    entry.version = this.nextVersion++;
    if (entry.place === 'waiting') this.waitingLive -= 1;
    else if (entry.place === 'parked') this.parkedOf(entry.key).live -= 1;
    else if (entry.place === 'held') {
      const ids = this.held.get(entry.envelope.account);
      ids?.delete(entry.envelope.id);
      if (ids?.size === 0) this.held.delete(entry.envelope.account);
    }
    entry.place = null;
  }

  private parkedOf(key: string): { heap: MinHeap<Node>; live: number } {
    let parked = this.parked.get(key);
    if (!parked) this.parked.set(key, (parked = { heap: new MinHeap(byId), live: 0 }));
    return parked;
  }

  private isLive(node: Node): boolean {
    return this.entries.get(node.id)?.version === node.version;
  }

  /** The heap's top after dropping stale nodes from it. */
  private validTop(heap: MinHeap<Node>): Node | undefined {
    let top = heap.peek();
    while (top && !this.isLive(top)) {
      heap.pop();
      top = heap.peek();
    }
    return top;
  }

  private compactIfStale(): void {
    const live = (node: Node) => this.isLive(node);
    if (this.waiting.size > 2 * this.waitingLive + SLACK) this.waiting.compact(live);
    if (this.expiry.size > 2 * this.entries.size + SLACK) this.expiry.compact(live);
  }
}

function timeOr(iso: string, fallback: number): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? fallback : ms;
}
