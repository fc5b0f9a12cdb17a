/**
 * The shared token store on a real redis-server: tokens sealed before they reach Redis, the account lock held by one
 * holder at a time across connections, the refresh lease, change announcements, and what a Redis outage does
 * (commands fail at once with STORE_UNREACHABLE, nothing hangs, the connection comes back by itself).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisAccountRecords } from '../../../src/auth/store/redis-account-records.js';
import { RedisConnection } from '../../../src/auth/store/redis-connection.js';
import { createRedisTokenStore } from '../../../src/auth/store/redis-token-store.js';
import { configSchema } from '../../../src/config/schema.js';
import { isRelayError } from '../../../src/errors.js';
import { memoryLogger } from '../../support/memory-logger.js';
import { redisAvailable, startTestRedis, type TestRedis } from '../../support/redis-server.js';
import { eventually } from '../../support/sandbox-env.js';

const availability = redisAvailable();
const skip = !availability.ok && !process.env.CI ? availability.reason : false;
let redis: TestRedis;
const connections: RedisConnection[] = [];
const { logger } = memoryLogger();

function settings(prefix = 'test:') {
  return configSchema.shape.tokenStore.parse({ kind: 'redis', url: redis.url, keyPrefix: prefix });
}

async function connection(prefix?: string): Promise<RedisConnection> {
  const c = new RedisConnection(settings(prefix), logger);
  connections.push(c);
  await c.connect();
  return c;
}

before(async () => {
  if (skip) return;
  if (!availability.ok) throw new Error(availability.reason);
  redis = await startTestRedis();
});
after(async () => {
  for (const c of connections) c.close();
  await redis?.close();
});

test('tokens are sealed before they reach Redis and open only with the key and the account they were sealed for', { skip }, async () => {
  const conn = await connection();
  const key = Buffer.alloc(32, 3);
  const store = createRedisTokenStore(conn, key);
  const secret = '{"RefreshToken":{"x":{"secret":"very-secret-refresh-token-0123456789"}}}';
  await store.save('scanner', secret);
  assert.equal(await store.load('scanner'), secret);
  const direct = new Redis(redis.url);
  const raw = await direct.get('test:token:scanner');
  await direct.quit();
  assert.ok(raw && !raw.includes('very-secret') && !raw.includes(Buffer.from('very-secret').toString('base64')), 'no token in clear in Redis');
  await assert.rejects(createRedisTokenStore(conn, Buffer.alloc(32, 4)).load('scanner'), (err) => isRelayError(err, 'STORE_DECRYPT_FAILED'));
  await store.remove('scanner');
  assert.equal(await store.load('scanner'), null);
});

test('the account lock has one holder at a time across instances; the refresh lease is refused while held', { skip }, async () => {
  const a = new RedisAccountRecords(await connection(), logger);
  const b = new RedisAccountRecords(await connection(), logger);
  let inside = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? a : b).withLock('scanner', async () => {
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside -= 1;
      }),
    ),
  );
  assert.equal(most, 1, 'never two holders');
  const lease = await a.tryLease('scanner', 5_000);
  assert.ok(lease);
  assert.equal(await b.tryLease('scanner', 5_000), null, 'another instance is refused the lease');
  await lease();
  const again = await b.tryLease('scanner', 5_000);
  assert.ok(again, 'free again after release');
  await again();
});

test('an update is announced to every instance, and records carry the generation', { skip }, async () => {
  const a = new RedisAccountRecords(await connection(), logger);
  const b = new RedisAccountRecords(await connection(), logger);
  const seen: string[] = [];
  const watching = await b.watch((account) => seen.push(account), () => undefined);
  await new Promise((r) => setTimeout(r, 100));
  await a.update('scanner', () => ({ token: { state: 'not-acquired' }, lastRefresh: null, generation: 7, updatedAt: '', writer: 0 }));
  await eventually(() => seen.includes('scanner'), 3000, 'the announcement');
  const record = await b.read('scanner');
  assert.equal(record?.generation, 7);
  assert.equal(record?.writer, a.self);
  assert.equal(await b.writerAlive(a.self), false, 'a writer without a heartbeat is gone');
  a.start();
  await eventually(() => b.writerAlive(a.self), 3000, 'the heartbeat');
  a.stop();
  watching.close();
});

test('Redis down: commands fail at once with STORE_UNREACHABLE; it comes back by itself', { skip }, async () => {
  const conn = await connection('outage:');
  const store = createRedisTokenStore(conn, Buffer.alloc(32, 5));
  await store.save('scanner', '{}');
  await redis.stop();
  await eventually(() => !conn.reachable, 5000, 'the connection notices');
  const t0 = performance.now();
  await assert.rejects(store.load('scanner'), (err) => isRelayError(err, 'STORE_UNREACHABLE'));
  assert.ok(performance.now() - t0 < 200, 'no hang behind a reconnect');
  await redis.start();
  await eventually(() => conn.reachable, 10_000, 'reconnected');
  assert.equal(await store.load('scanner'), '{}', 'the data survived the restart');
});
