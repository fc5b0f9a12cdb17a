import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEncryptedFileStore, tokenFilePath } from '../../../src/auth/store/index.js';
import { isRelayError } from '../../../src/errors.js';

const FAKE_ACCESS_TOKEN = 'eyFAKEACCESS.TokenForTheStoreTest.1234567890abcdef';
const FAKE_REFRESH_TOKEN = 'M.C512_FAKE_REFRESH!token-for-the-store-test-0987654321';

/** A serialized MSAL-shaped cache holding recognisable fake tokens. */
function fakeMsalCache(marker = 'v1'): string {
  return JSON.stringify({
    Account: { 'uid.utid-login.microsoftonline.com-tid': { username: 'scanner@contoso.example', marker } },
    AccessToken: { at: { secret: FAKE_ACCESS_TOKEN, expires_on: '1999999999' } },
    RefreshToken: { rt: { secret: FAKE_REFRESH_TOKEN } },
  });
}

async function withStateDir(run: (stateDir: string) => Promise<void>): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-store-'));
  try {
    await run(stateDir);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

test('a saved cache loads back unchanged; an unknown account loads as null', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    assert.equal(await store.load('scanner'), null);
    await store.save('scanner', fakeMsalCache());
    assert.equal(await store.load('scanner'), fakeMsalCache());
    // A second store with the same key (a restart) reads it too.
    const key = randomBytes(32);
    await createEncryptedFileStore({ stateDir, key }).save('mfp-2.floor_3', 'grüße ✓');
    assert.equal(await createEncryptedFileStore({ stateDir, key }).load('mfp-2.floor_3'), 'grüße ✓');
  }));

test('the file is versioned JSON, private, and never holds the tokens in any readable form', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    await store.save('scanner', fakeMsalCache());
    const path = tokenFilePath(stateDir, 'scanner');
    assert.equal(path, join(stateDir, 'tokens', 'scanner.json.enc'));
    const raw = await readFile(path);
    const forms = [FAKE_ACCESS_TOKEN, FAKE_REFRESH_TOKEN, 'RefreshToken', 'scanner@contoso'];
    for (const secret of forms) {
      for (const encoding of ['utf8', 'base64', 'base64url', 'hex'] as const) {
        const needle = Buffer.from(secret).toString(encoding).slice(0, 24);
        assert.equal(raw.includes(needle), false, `file contains ${encoding} of a secret`);
      }
    }
    const file = JSON.parse(raw.toString('utf8'));
    assert.deepEqual(Object.keys(file).sort(), ['alg', 'data', 'iv', 'tag', 'v']);
    assert.equal(file.v, 1);
    assert.equal(file.alg, 'A256GCM');
    assert.equal(Buffer.from(file.iv, 'base64').length, 12);
    assert.equal(Buffer.from(file.tag, 'base64').length, 16);
    if (process.platform !== 'win32') {
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.equal((await stat(join(stateDir, 'tokens'))).mode & 0o777, 0o700);
    }
  }));

test('every write uses a fresh IV', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    const ivs = new Set<string>();
    for (let i = 0; i < 5; i++) {
      await store.save('scanner', fakeMsalCache());
      ivs.add(JSON.parse(await readFile(tokenFilePath(stateDir, 'scanner'), 'utf8')).iv);
    }
    assert.equal(ivs.size, 5);
  }));

test('a tampered file fails with STORE_DECRYPT_FAILED and the message holds no token material', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    await store.save('scanner', fakeMsalCache());
    const path = tokenFilePath(stateDir, 'scanner');
    const original = JSON.parse(await readFile(path, 'utf8'));
    const data = Buffer.from(original.data, 'base64');
    data[10] = data[10]! ^ 0x01;
    const tampered = [
      { ...original, data: data.toString('base64') },
      { ...original, tag: Buffer.alloc(16).toString('base64') },
      { ...original, iv: Buffer.alloc(12).toString('base64') },
      { ...original, v: 2 },
      { ...original, alg: 'none' },
      { ...original, iv: 'not base64!' },
    ];
    for (const file of tampered) {
      await writeFile(path, JSON.stringify(file));
      await assert.rejects(store.load('scanner'), (err) => {
        assert.ok(isRelayError(err, 'STORE_DECRYPT_FAILED'), String(err));
        assert.ok(!err.message.includes(FAKE_REFRESH_TOKEN) && !err.message.includes(original.data));
        return true;
      });
    }
    for (const garbage of ['', 'null', '[]', '{"v":1', 'plain text']) {
      await writeFile(path, garbage);
      await assert.rejects(store.load('scanner'), (err) => isRelayError(err, 'STORE_DECRYPT_FAILED'));
    }
  }));

test('a wrong key fails with STORE_DECRYPT_FAILED', () =>
  withStateDir(async (stateDir) => {
    await createEncryptedFileStore({ stateDir, key: randomBytes(32) }).save('scanner', fakeMsalCache());
    const other = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    await assert.rejects(other.load('scanner'), (err) => isRelayError(err, 'STORE_DECRYPT_FAILED'));
  }));

test('a file renamed to another account fails to decrypt', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    await store.save('scanner', fakeMsalCache());
    await store.load('other'); // nothing there yet
    await rename(tokenFilePath(stateDir, 'scanner'), tokenFilePath(stateDir, 'other'));
    await assert.rejects(store.load('other'), (err) => isRelayError(err, 'STORE_DECRYPT_FAILED'));
  }));

test('50 concurrent saves leave the last value and no temp files', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    const saves = Array.from({ length: 50 }, (_, i) => store.save('scanner', fakeMsalCache(`v${i}`)));
    // Another account written at the same time is not held up or mixed in.
    saves.push(store.save('printer', 'printer cache'));
    await Promise.all(saves);
    assert.equal(await store.load('scanner'), fakeMsalCache('v49'));
    assert.equal(await store.load('printer'), 'printer cache');
    assert.deepEqual((await readdir(join(stateDir, 'tokens'))).sort(), ['printer.json.enc', 'scanner.json.enc']);
  }));

test('a load started right after a save sees it', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    const saving = store.save('scanner', 'first');
    assert.equal(await store.load('scanner'), 'first');
    await saving;
  }));

test('remove deletes the file and is idempotent', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    await store.remove('scanner'); // never saved, tokens dir does not even exist
    await store.save('scanner', fakeMsalCache());
    await store.remove('scanner');
    await store.remove('scanner');
    assert.equal(await store.load('scanner'), null);
    assert.deepEqual(await readdir(join(stateDir, 'tokens')), []);
    // A remove queued after a save wins, as the later call.
    const save = store.save('scanner', 'again');
    await Promise.all([save, store.remove('scanner')]);
    assert.equal(await store.load('scanner'), null);
  }));

test('account names that could escape the tokens directory are refused', () =>
  withStateDir(async (stateDir) => {
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    for (const name of ['', '..', '../x', 'a/b', '.hidden', '-x', 'a b', 'a\nb', 'x'.repeat(65), 'ä']) {
      await assert.rejects(store.save(name, 'x'), (err) => isRelayError(err, 'ACCOUNT_NAME_INVALID'), name);
      await assert.rejects(store.load(name), (err) => isRelayError(err, 'ACCOUNT_NAME_INVALID'), name);
      await assert.rejects(store.remove(name), (err) => isRelayError(err, 'ACCOUNT_NAME_INVALID'), name);
    }
    await store.save('x'.repeat(64), 'ok');
  }));

test('a key that is not 32 bytes is refused', () => {
  assert.throws(() => createEncryptedFileStore({ stateDir: tmpdir(), key: randomBytes(16) }), (err) =>
    isRelayError(err, 'STORE_KEY_INVALID'));
});

test('a store that cannot write says STORE_WRITE_FAILED', () =>
  withStateDir(async (stateDir) => {
    // A file where the tokens directory should be: fails even for root, unlike a read-only directory.
    await writeFile(join(stateDir, 'tokens'), 'not a directory');
    const store = createEncryptedFileStore({ stateDir, key: randomBytes(32) });
    await assert.rejects(store.save('scanner', fakeMsalCache()), (err) => {
      assert.ok(isRelayError(err, 'STORE_WRITE_FAILED'), String(err));
      assert.ok(!err.message.includes(FAKE_REFRESH_TOKEN));
      return true;
    });
    // The failure is reported to that save only; the next one tries again.
    await rm(join(stateDir, 'tokens'));
    await store.save('scanner', 'recovered');
    assert.equal(await store.load('scanner'), 'recovered');
  }));

test('two stores on one directory (two processes) racing leave one whole file and no temp files', () =>
  withStateDir(async (stateDir) => {
    const key = randomBytes(32);
    const [a, b] = [createEncryptedFileStore({ stateDir, key }), createEncryptedFileStore({ stateDir, key })];
    const saves: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) saves.push(a.save('scanner', `a${i}`), b.save('scanner', `b${i}`));
    await Promise.all(saves);
    assert.ok(['a19', 'b19'].includes((await a.load('scanner'))!));
    assert.deepEqual(await readdir(join(stateDir, 'tokens')), ['scanner.json.enc']);
  }));
