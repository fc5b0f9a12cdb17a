/**
 * The configuration loader under generated files: raw text, YAML of random values, and a valid configuration
 * with random values put at random key paths (known keys and made-up ones). Properties: it never throws, it
 * answers either a frozen configuration or at least one problem with a key path and a message, and a secret's
 * value (a device passwordHash, a webhook URL, the admin password hash) never appears in a problem.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { checkConfigText } from '../../../src/config/load.js';
import type { FuzzTarget } from '../fuzz-target.js';

const SECRET = 'SECRET-9f2c1e';
const base = (): Record<string, unknown> => ({
  stateDir: '/var/lib/xoauth2-relay',
  accounts: { scanner: { mailbox: 'scanner@contoso.com', tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } },
  devices: [{ name: 'fax', account: 'scanner', allowFrom: ['192.168.10.0/24'] }],
  smtp: { listen: [{ host: '0.0.0.0', port: 2525, tls: 'none' }] },
  admin: { listen: '127.0.0.1:8025' },
});
const key = fc.constantFrom('stateDir', 'accounts', 'devices', 'smtp', 'imap', 'pop3', 'tls', 'admin', 'notify', 'logins', 'listen', 'port', 'host', 'tls', 'maxMessageBytes', 'passwordHash', 'webhookUrl', 'allowPlainHttp', 'enabled', 'certFile', '0', 'scanner', 'mailbox', 'flow', 'x-unknown');
const secretSpot = fc.constantFrom(['devices', 0, 'passwordHash'], ['notify', 'webhookUrl'], ['admin', 'passwordHash']);
const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(SECRET), fc.constantFrom('35MiB', '35M', '0.0.0.0:8025', 'starttls', -1, 1e309, 'scrypt$1$1$1$a$b'));
type Mutation = { path: ReadonlyArray<string | number>; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ path: fc.array(key, { minLength: 1, maxLength: 4 }), value }),
  secretSpot.map((path) => ({ path, value: `${SECRET}-${path.join('.')}` })),
);
const input = fc.oneof(
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => stringify(v)) },
  { weight: 4, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 5 }).map((ms) => stringify(ms.reduce(apply, base()))) },
);

function apply(config: Record<string, unknown>, m: Mutation): Record<string, unknown> {
  let node: Record<string | number, unknown> = config;
  for (const k of m.path.slice(0, -1)) {
    const next = node[k];
    if (next === null || typeof next !== 'object') node[k] = typeof k === 'number' ? [] : {};
    node = node[k] as Record<string | number, unknown>;
  }
  node[m.path.at(-1)!] = m.value;
  return config;
}

function checkOne(text: string): void {
  const result = checkConfigText(text, '/etc/xoauth2-relay/config.yaml', {});
  if (result.ok) {
    assert.ok(Object.isFrozen(result.loaded.config));
    return;
  }
  assert.ok(result.problems.length > 0, 'refused without a problem');
  for (const p of result.problems) {
    assert.equal(typeof p.path, 'string');
    assert.ok(p.message.length > 0, `a problem without a message at ${p.path}`);
  }
  const shown = JSON.stringify(result.problems);
  for (const spot of ['devices.0.passwordHash', 'notify.webhookUrl', 'admin.passwordHash']) {
    assert.ok(!shown.includes(`${SECRET}-${spot}`), `the secret at ${spot} was shown in a problem`);
  }
}

export const configLoaderTarget: FuzzTarget<string> = {
  name: 'config-loader',
  async setup() {
    return { arbitrary: input, check: checkOne, stop: async () => undefined };
  },
};
