/**
 * The token store on a shared Redis: the same sealed text as the encrypted file store (AES-256-GCM, the account
 * name as associated data), one key per account, so Redis never holds a token in clear and a dump of it is as
 * useless without the key as a copy of stateDir/tokens.
 */
import type { RedisConnection } from './redis-connection.js';
import { openTokenCache, sealTokenCache } from './token-file-format.js';
import { assertValidAccountName, type TokenStore } from './token-store.js';

export function createRedisTokenStore(redis: RedisConnection, key: Buffer): TokenStore {
  const sealKey = Buffer.from(key);
  const keyOf = (account: string) => {
    assertValidAccountName(account);
    return redis.key('token', account);
  };
  return {
    async load(account) {
      const text = await redis.run('read a token', (c) => c.get(keyOf(account)));
      return text === null ? null : openTokenCache(sealKey, account, text);
    },
    async save(account, serializedCache) {
      const sealed = sealTokenCache(sealKey, account, serializedCache);
      await redis.run('store a token', (c) => c.set(keyOf(account), sealed));
    },
    async remove(account) {
      await redis.run('delete a token', (c) => c.del(keyOf(account)));
    },
  };
}
