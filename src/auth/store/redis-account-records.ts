/**
 * Account records on a shared Redis, for several relay instances serving one set of accounts: the same record as
 * the file store (shown state, generation, writer) at `<prefix>record:<account>`, changed under a lock
 * (`SET NX PX`, released only by its holder), announced on `<prefix>changes` so every instance picks a change up at
 * once, and a refresh lease per account so a cluster makes one token request. An instance is alive while its
 * heartbeat key exists (a sign-in it polls for is real only then).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { RelayError } from '../../errors.js';
import { errorFields, type Logger } from '../../log.js';
import { parseAccountRecord, type AccountRecord, type AccountRecords, type RecordChange } from './account-records.js';
import type { RedisConnection } from './redis-connection.js';
import { assertValidAccountName } from './token-store.js';

const LOCK_MS = 10_000;
const LOCK_WAIT_MS = 15_000;
const HEARTBEAT_MS = 5_000;

// Deletes the key only when it still holds our token: a lock that expired and was taken by another holder stays theirs.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export class RedisAccountRecords implements AccountRecords {
  readonly self = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly local = new Map<string, Promise<unknown>>();

  constructor(private readonly redis: RedisConnection, private readonly log: Logger) {}

  /** Announces this instance (and keeps announcing it) so others know its sign-ins are live. */
  start(): void {
    const beat = () => {
      this.redis.run('heartbeat', (c) => c.set(this.redis.key('instance', this.self), '1', 'PX', HEARTBEAT_MS * 3)).catch(() => undefined); // absent while Redis is: nothing to do
    };
    beat();
    this.heartbeat = setInterval(beat, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  async writerAlive(writer: number | string): Promise<boolean> {
    if (writer === this.self) return true;
    try {
      return (await this.redis.run('check an instance', (c) => c.exists(this.redis.key('instance', String(writer))))) === 1;
    } catch {
      return true; // cannot tell while Redis is away: keep showing the sign-in until its code expires
    }
  }

  async read(account: string): Promise<AccountRecord | null> {
    assertValidAccountName(account);
    const text = await this.redis.run('read an account', (c) => c.get(this.redis.key('record', account)));
    return text === null ? null : parseAccountRecord(text);
  }

  async update(account: string, change: RecordChange): Promise<AccountRecord | null> {
    return this.withLock(account, async () => {
      const current = await this.read(account);
      const next = await change(current);
      if (!next) return current;
      const record: AccountRecord = { ...next, updatedAt: new Date().toISOString(), writer: this.self };
      await this.redis.run('write an account', (c) => c.set(this.redis.key('record', account), JSON.stringify(record)));
      await this.redis.run('announce a change', (c) => c.publish(this.redis.key('changes'), account)).catch((err: unknown) => this.log.warn(errorFields(err), 'could not announce an account change: other instances see it at their next read'));
      return record;
    });
  }

  withLock<T>(account: string, fn: () => Promise<T>): Promise<T> {
    assertValidAccountName(account);
    const before = this.local.get(account) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(async () => {
      const release = await this.acquire(this.redis.key('lock', account), LOCK_MS, LOCK_WAIT_MS);
      if (!release) throw new RelayError('STORE_LOCK_FAILED', `account ${account}: another instance has held the lock for ${LOCK_WAIT_MS / 1000} s`);
      try {
        return await fn();
      } finally {
        await release();
      }
    });
    this.local.set(account, run.catch(() => undefined));
    return run;
  }

  async tryLease(account: string, ms: number): Promise<(() => Promise<void>) | null> {
    assertValidAccountName(account);
    return this.acquire(this.redis.key('lease', account), ms, 0);
  }

  /** SET NX PX, retried until `waitMs`; the release deletes only our own token. */
  private async acquire(key: string, ms: number, waitMs: number): Promise<(() => Promise<void>) | null> {
    const token = randomBytes(12).toString('hex');
    const deadline = Date.now() + waitMs;
    for (;;) {
      const got = await this.redis.run('take a lock', (c) => c.set(key, token, 'PX', ms, 'NX'));
      if (got === 'OK') {
        return async () => {
          await this.redis.run('release a lock', (c) => c.eval(RELEASE, 1, key, token)).catch(() => undefined); // it expires by itself
        };
      }
      if (Date.now() >= deadline) return null;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 30));
    }
  }

  async watch(onChange: (account: string) => void, onError: (err: Error) => void): Promise<{ close(): void }> {
    const channel = this.redis.key('changes');
    const onMessage = (from: string, account: string) => {
      if (from === channel) onChange(account);
    };
    this.redis.subscriber.on('message', onMessage);
    // Subscribing fails while Redis is away; ioredis subscribes again by itself after every reconnect once it has
    // subscribed once, so the first success is retried until it happens.
    let subscribed = false;
    const subscribe = () => {
      if (subscribed) return;
      this.redis.subscriber.subscribe(channel).then(
        () => {
          subscribed = true;
        },
        (err: unknown) => onError(err instanceof Error ? err : new Error(String(err))),
      );
    };
    subscribe();
    this.redis.subscriber.on('ready', subscribe);
    return {
      close: () => {
        this.redis.subscriber.off('message', onMessage);
        this.redis.subscriber.off('ready', subscribe);
      },
    };
  }
}
