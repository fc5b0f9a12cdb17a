/**
 * The relay's connections to a shared Redis (tokenStore.kind: redis): one for commands, one for subscriptions.
 * Commands never queue while Redis is away (enableOfflineQueue: false): a token request must fail at once and fall
 * back to the tokens in memory, not hang behind a reconnect. ioredis reconnects by itself, forever, with a capped
 * delay; `reachable` says whether commands can run now and `everReachable` whether this process ever got there
 * (readiness: an instance that never reached its store at start is not ready for devices).
 */
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../../config/schema.js';
import { RelayError } from '../../errors.js';
import { errorFields, type Logger } from '../../log.js';

export interface StoreStatus {
  kind: 'file' | 'redis';
  reachable: boolean;
  everReachable: boolean;
  /** Where (host:port), for the admin page and the log; never the password. */
  where: string;
}

/** 'reachable' / 'unreachable' when that changes. */
export class RedisConnection extends EventEmitter<{ reachable: []; unreachable: [] }> {
  readonly client: Redis;
  readonly subscriber: Redis;
  readonly prefix: string;
  readonly where: string;
  private up = false;
  private everUp = false;

  constructor(settings: Config['tokenStore'], private readonly log: Logger) {
    super();
    const url = new URL(settings.url!);
    this.where = `${url.hostname}:${url.port || 6379}`;
    this.prefix = settings.keyPrefix;
    const options: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 5_000,
      commandTimeout: 5_000,
      retryStrategy: (times) => Math.min(200 * times, 2_000),
      ...(settings.passwordFile ? { password: readFileSync(settings.passwordFile, 'utf8').trim() } : {}),
      ...(url.protocol === 'rediss:' ? { tls: { servername: url.hostname, ...(settings.caFile ? { ca: readFileSync(settings.caFile, 'utf8') } : {}) } } : {}),
    };
    this.client = new Redis(settings.url!, options);
    this.subscriber = new Redis(settings.url!, { ...options, commandTimeout: undefined });
    // An 'error' event nobody listens to would end the process: every failure is logged once per outage instead.
    for (const c of [this.client, this.subscriber]) c.on('error', (err) => this.onError(err));
    this.client.on('ready', () => this.setUp(true));
    this.client.on('close', () => this.setUp(false));
  }

  get reachable(): boolean {
    return this.up;
  }

  get everReachable(): boolean {
    return this.everUp;
  }

  /** Starts connecting (once); resolves when connected or after the first failure (the relay starts either way). */
  connect(): Promise<void> {
    this.connecting ??= this.firstConnect();
    return this.connecting;
  }

  private connecting: Promise<void> | null = null;

  private async firstConnect(): Promise<void> {
    await Promise.all(
      [this.client, this.subscriber].map((c) =>
        c.connect().catch((err: unknown) => this.log.warn({ ...errorFields(err), store: this.where }, 'the token store (Redis) cannot be reached yet: retrying; not ready until it answers')),
      ),
    );
  }

  key(...parts: string[]): string {
    return `${this.prefix}${parts.join(':')}`;
  }

  /** Runs a command; a connection problem becomes STORE_UNREACHABLE (the caller falls back), never a hang. */
  async run<T>(what: string, command: (c: Redis) => Promise<T>): Promise<T> {
    try {
      return await command(this.client);
    } catch (err) {
      throw new RelayError('STORE_UNREACHABLE', `${this.where}: ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  close(): void {
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (up) {
      this.everUp = true;
      this.log.info({ store: this.where }, 'token store (Redis) reachable');
      this.emit('reachable');
    } else {
      this.log.warn({ store: this.where }, 'token store (Redis) unreachable: serving with the tokens held in memory, retrying');
      this.emit('unreachable');
    }
  }

  private lastError = '';
  private onError(err: Error): void {
    if (err.message === this.lastError) return;
    this.lastError = err.message;
    this.log.debug({ ...errorFields(err), store: this.where }, 'token store connection error');
  }
}
