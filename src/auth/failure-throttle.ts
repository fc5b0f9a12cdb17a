/**
 * Back-off after failed logins, so a device with a wrong password (or a password guesser) cannot hammer scrypt:
 * after `freeFailures` failures each further failure doubles the time the key is refused, up to `maxBlockMs`.
 *
 * A device login is tracked three ways, because each catches a guesser the others miss:
 * - per source address (spraying many user names from one host),
 * - per user name (one user guessed from many addresses; unknown names alike, so refusals reveal nothing),
 * - per (user name, address) pair, short: it is the one that applies to a pair that logged in successfully
 *   before. A guesser behind a shared NAT address therefore only slows the device it shares the address with
 *   (by at most `perPair.maxBlockMs`), it cannot lock it out; everyone else from that address is held back by
 *   the address and user name rules. All blocks are short (a minute by default), never the 15 minutes that used
 *   to refuse a correct password after a guessing burst.
 * Memory is bounded: records expire, and each table keeps at most `maxTracked` keys.
 */
export interface BackoffRule {
  freeFailures?: number;
  baseBlockMs?: number;
  maxBlockMs?: number;
}

export interface FailureThrottleOptions extends BackoffRule {
  /** Records idle this long are forgotten. */
  forgetAfterMs?: number;
  maxTracked?: number;
  now?: () => number;
  /** Per user name; default 10 free, 1 s doubling to 60 s. */
  perUser?: BackoffRule;
  /** Per (user name, address); default 5 free, 1 s doubling to 30 s. */
  perPair?: BackoffRule;
  /** How long a pair that logged in stays exempt from the address and user name rules; default 7 days. */
  knownGoodMs?: number;
}

interface Record {
  failures: number;
  blockedUntil: number;
  lastFailure: number;
}

type Rule = Required<BackoffRule> & { forgetAfterMs: number; maxTracked: number };

/** One back-off table: failures and block times per key. */
class BackoffTable {
  private readonly records = new Map<string, Record>();

  constructor(
    private readonly rule: Rule,
    private readonly now: () => number,
  ) {}

  blockedFor(key: string): number {
    const r = this.records.get(key);
    if (!r) return 0;
    const now = this.now();
    if (now - r.lastFailure > this.rule.forgetAfterMs) {
      this.records.delete(key);
      return 0;
    }
    return Math.max(0, r.blockedUntil - now);
  }

  failed(key: string): void {
    const now = this.now();
    const r = this.records.get(key) ?? { failures: 0, blockedUntil: 0, lastFailure: now };
    r.failures += 1;
    r.lastFailure = now;
    const over = r.failures - this.rule.freeFailures;
    if (over > 0) r.blockedUntil = now + Math.min(this.rule.maxBlockMs, this.rule.baseBlockMs * 2 ** Math.min(over - 1, 20));
    this.records.delete(key); // re-insert: Map order doubles as least-recently-failed order
    this.records.set(key, r);
    if (this.records.size > this.rule.maxTracked) this.records.delete(this.records.keys().next().value!);
  }

  forget(key: string): void {
    this.records.delete(key);
  }
}

export class FailureThrottle {
  private readonly byAddress: BackoffTable;
  private readonly byUser: BackoffTable;
  private readonly byPair: BackoffTable;
  /** Pairs that logged in, with when that stops counting; least recently used first. */
  private readonly knownGood = new Map<string, number>();
  private readonly now: () => number;
  private readonly knownGoodMs: number;
  private readonly maxTracked: number;

  constructor(opts: FailureThrottleOptions = {}) {
    this.now = opts.now ?? Date.now;
    const common = { forgetAfterMs: opts.forgetAfterMs ?? 60 * 60_000, maxTracked: opts.maxTracked ?? 10_000 };
    const rule = (r: BackoffRule | undefined, d: Required<BackoffRule>): Rule => ({ ...d, ...r, ...common });
    this.byAddress = new BackoffTable(rule(opts, { freeFailures: 10, baseBlockMs: 1000, maxBlockMs: 60_000 }), this.now);
    this.byUser = new BackoffTable(rule(opts.perUser, { freeFailures: 10, baseBlockMs: 1000, maxBlockMs: 60_000 }), this.now);
    this.byPair = new BackoffTable(rule(opts.perPair, { freeFailures: 5, baseBlockMs: 1000, maxBlockMs: 30_000 }), this.now);
    this.knownGoodMs = opts.knownGoodMs ?? 7 * 24 * 60 * 60_000;
    this.maxTracked = common.maxTracked;
  }

  /**
   * Milliseconds this login must still wait, 0 when it may try. Without a user name (the admin page, or before
   * one is known) only the address counts.
   */
  blockedFor(address: string, username?: string): number {
    if (username === undefined) return this.byAddress.blockedFor(address);
    const pair = pairKey(username, address);
    const pairWait = this.byPair.blockedFor(pair);
    if (this.isKnownGood(pair)) return pairWait;
    return Math.max(pairWait, this.byAddress.blockedFor(address), this.byUser.blockedFor(username));
  }

  failed(address: string, username?: string): void {
    this.byAddress.failed(address);
    if (username === undefined) return;
    this.byUser.failed(username);
    this.byPair.failed(pairKey(username, address));
  }

  succeeded(address: string, username?: string): void {
    this.byAddress.forget(address);
    if (username === undefined) return;
    const pair = pairKey(username, address);
    this.byPair.forget(pair);
    this.knownGood.delete(pair);
    this.knownGood.set(pair, this.now() + this.knownGoodMs);
    if (this.knownGood.size > this.maxTracked) this.knownGood.delete(this.knownGood.keys().next().value!);
  }

  private isKnownGood(pair: string): boolean {
    const until = this.knownGood.get(pair);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.knownGood.delete(pair);
    return false;
  }
}

/** A length prefix, not a separator: a user name cannot forge another pair by containing one. */
function pairKey(username: string, address: string): string {
  return `${username.length}:${username}\n${address}`;
}
