import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStoreKeyText, resolveStoreKey, STORE_KEY_ENV } from '../../../src/auth/store/index.js';
import { isRelayError } from '../../../src/errors.js';

const posix = process.platform !== 'win32';

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-key-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a hex key in XOAUTH2_RELAY_KEY is used, with surrounding white space ignored', () =>
  withDir(async (stateDir) => {
    const key = randomBytes(32);
    const resolved = await resolveStoreKey({ stateDir, env: { [STORE_KEY_ENV]: `${key.toString('hex').toUpperCase()}\n` } });
    assert.deepEqual(resolved.key, key);
    assert.equal(resolved.source, 'env');
    assert.deepEqual(await readdir(stateDir), [], 'no key file is created');
  }));

test('a base64 key in XOAUTH2_RELAY_KEY is used (standard, URL-safe, unpadded)', () =>
  withDir(async (stateDir) => {
    const key = Buffer.from('fb'.repeat(32), 'hex'); // encodes with + and / in standard base64
    for (const text of [key.toString('base64'), key.toString('base64url'), key.toString('base64').replace(/=$/, '')]) {
      const resolved = await resolveStoreKey({ stateDir, env: { [STORE_KEY_ENV]: text } });
      assert.deepEqual(resolved.key, key, text);
      assert.equal(resolved.source, 'env');
    }
  }));

test('an invalid XOAUTH2_RELAY_KEY is refused, named, and not echoed; no fall-through to a key file', () =>
  withDir(async (stateDir) => {
    const secretish = 'hunter2-not-a-key-but-secret-anyway';
    const bad = [
      secretish,
      '',
      'ab'.repeat(31),
      'ab'.repeat(33),
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      `${randomBytes(32).toString('hex').slice(0, 63)}g`,
    ];
    for (const value of bad) {
      await assert.rejects(resolveStoreKey({ stateDir, env: { [STORE_KEY_ENV]: value } }), (err) => {
        assert.ok(isRelayError(err, 'STORE_KEY_INVALID'), String(err));
        assert.match(err.message, /XOAUTH2_RELAY_KEY/);
        assert.match(err.message, /64 hex digits or base64 of 32 bytes/);
        if (value) assert.ok(!err.message.includes(value));
        return true;
      });
    }
    assert.deepEqual(await readdir(stateDir), []);
  }));

test('parseStoreKeyText refuses base64 with stray bits or characters', () => {
  const text = randomBytes(32).toString('base64'); // 43 characters and one '='
  const lastChar = text[42]!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const withStrayBit = text.slice(0, 42) + alphabet[alphabet.indexOf(lastChar) ^ 1] + '=';
  assert.equal(parseStoreKeyText(withStrayBit), undefined);
  assert.equal(parseStoreKeyText(text.replace(/=$/, '==')), undefined);
  assert.equal(parseStoreKeyText(`${text.slice(0, 20)} ${text.slice(20)}`), undefined);
  const mixed = Buffer.from('fb'.repeat(32), 'hex').toString('base64'); // "+/v7+/v7…"
  assert.equal(parseStoreKeyText(mixed.replace(/\+/g, '-')), undefined, 'URL-safe and standard alphabets mixed');
});

test('a key file is created with 32 random bytes, mode 0600, and reused', () =>
  withDir(async (dir) => {
    const stateDir = join(dir, 'state', 'nested'); // missing: created too
    const first = await resolveStoreKey({ stateDir, env: {} });
    assert.equal(first.source, 'key-file');
    assert.equal(first.created, true);
    assert.equal(first.key.length, 32);
    const path = join(stateDir, 'token-store.key');
    assert.equal(first.location, path);
    assert.deepEqual(await readFile(path), first.key);
    if (posix) {
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
    }
    const second = await resolveStoreKey({ stateDir, env: {} });
    assert.deepEqual(second.key, first.key);
    assert.equal(second.created, false);
    assert.deepEqual(await readdir(stateDir), ['token-store.key'], 'no temp files left');
  }));

test('processes racing to create the key file all end up with the same key', () =>
  withDir(async (stateDir) => {
    const results = await Promise.all(Array.from({ length: 10 }, () => resolveStoreKey({ stateDir, env: {} })));
    const onDisk = await readFile(join(stateDir, 'token-store.key'));
    for (const result of results) assert.deepEqual(result.key, onDisk);
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.deepEqual(await readdir(stateDir), ['token-store.key']);
  }));

test('a key file in text form is accepted', () =>
  withDir(async (stateDir) => {
    const key = randomBytes(32);
    await writeFile(join(stateDir, 'token-store.key'), `${key.toString('hex')}\n`, { mode: 0o600 });
    assert.deepEqual((await resolveStoreKey({ stateDir, env: {} })).key, key);
  }));

test('a key file readable by group or others is refused with a chmod 600 hint', { skip: !posix }, () =>
  withDir(async (stateDir) => {
    const path = join(stateDir, 'token-store.key');
    const key = randomBytes(32);
    await writeFile(path, key);
    for (const mode of [0o640, 0o604, 0o660, 0o644]) {
      await chmod(path, mode);
      await assert.rejects(resolveStoreKey({ stateDir, env: {} }), (err) => {
        assert.ok(isRelayError(err, 'STORE_KEY_INSECURE'), String(err));
        assert.match(err.message, /chmod 600/);
        assert.ok(err.message.includes(path));
        return true;
      });
    }
    await chmod(path, 0o400);
    assert.deepEqual((await resolveStoreKey({ stateDir, env: {} })).key, key);
  }));

test('a key file with the wrong content is refused, not replaced', () =>
  withDir(async (stateDir) => {
    const path = join(stateDir, 'token-store.key');
    for (const content of [randomBytes(31), randomBytes(33), Buffer.from('not a key\n'), Buffer.alloc(0), randomBytes(5000)]) {
      await writeFile(path, content, { mode: 0o600 });
      await assert.rejects(resolveStoreKey({ stateDir, env: {} }), (err) => isRelayError(err, 'STORE_KEY_INVALID'));
      assert.deepEqual(await readFile(path), content);
    }
  }));

test('with createIfMissing false a missing key is STORE_KEY_MISSING and nothing is created', () =>
  withDir(async (stateDir) => {
    await assert.rejects(resolveStoreKey({ stateDir, env: {}, createIfMissing: false }), (err) =>
      isRelayError(err, 'STORE_KEY_MISSING'));
    assert.deepEqual(await readdir(stateDir), []);
  }));

test('a systemd credential is used before the key file, in raw or text form', () =>
  withDir(async (dir) => {
    const stateDir = join(dir, 'state');
    const credentials = join(dir, 'credentials');
    await mkdir(credentials);
    const raw = randomBytes(32);
    // systemd makes credentials 0400 or 0440 owned by root/the service; their mode is not judged.
    await writeFile(join(credentials, 'xoauth2-relay-key'), raw, { mode: 0o440 });
    const resolved = await resolveStoreKey({ stateDir, env: { CREDENTIALS_DIRECTORY: credentials } });
    assert.deepEqual(resolved.key, raw);
    assert.equal(resolved.source, 'systemd-credential');
    assert.equal(resolved.location, join(credentials, 'xoauth2-relay-key'));

    const text = randomBytes(32);
    await writeFile(join(credentials, 'xoauth2-relay-key'), `${text.toString('base64')}\n`);
    assert.deepEqual((await resolveStoreKey({ stateDir, env: { CREDENTIALS_DIRECTORY: credentials } })).key, text);

    // The environment still comes first.
    const fromEnv = randomBytes(32);
    const both = await resolveStoreKey({ stateDir, env: { CREDENTIALS_DIRECTORY: credentials, [STORE_KEY_ENV]: fromEnv.toString('hex') } });
    assert.deepEqual(both.key, fromEnv);
    assert.equal(both.source, 'env');

    await writeFile(join(credentials, 'xoauth2-relay-key'), 'garbage');
    await assert.rejects(resolveStoreKey({ stateDir, env: { CREDENTIALS_DIRECTORY: credentials } }), (err) =>
      isRelayError(err, 'STORE_KEY_INVALID'));
    await assert.rejects(stat(stateDir), 'no key file was created while a credential was present');
  }));

test('a credentials directory without our credential falls through to the key file', () =>
  withDir(async (dir) => {
    const credentials = join(dir, 'credentials');
    await mkdir(credentials);
    const resolved = await resolveStoreKey({ stateDir: join(dir, 'state'), env: { CREDENTIALS_DIRECTORY: credentials } });
    assert.equal(resolved.source, 'key-file');
    assert.equal(resolved.created, true);
  }));

test('no new key file when tokens sealed with another key already exist (a shell without the service credential)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-key-'));
  try {
    await mkdir(join(dir, 'tokens'), { recursive: true });
    await writeFile(join(dir, 'tokens', 'scanner.json.enc'), '{}');
    await assert.rejects(resolveStoreKey({ stateDir: dir, env: {} }), (err) => isRelayError(err, 'STORE_KEY_MISSING') && /sealed with a key this process does not have/.test((err as Error).message));
    await assert.rejects(stat(join(dir, 'token-store.key')), 'no key file was created');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
