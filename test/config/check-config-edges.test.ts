/**
 * check-config where operators trip: sizes written as people write them (`35MB`, `35 MiB`: read, or refused with
 * the exact number to write), one YAML syntax error reported once with its line and column (not the cascade
 * that follows it), and a certificate whose private key does not match it (swapped files) refused by name.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigText } from '../../src/config/load.js';
import { formatProblem, type ConfigProblem } from '../../src/config/problems.js';
import { createPki } from '../../src/sandbox/pki.js';
import { runCli } from '../support/run-cli.js';

const account = `
accounts:
  scanner:
    mailbox: scanner@contoso.com
    tenantId: 11111111-2222-3333-4444-555555555555
    clientId: 66666666-7777-8888-9999-000000000000
`;

function check(yaml: string) {
  return checkConfigText(yaml, '/etc/xoauth2-relay/config.yaml', {});
}

function refused(yaml: string): ConfigProblem[] {
  const result = check(yaml);
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.problems;
}

const withSize = (size: string) => `${account}smtp:\n  maxMessageBytes: ${size}\n`;

test('byte sizes: a number, SI units (MB = 10^6) and IEC units (MiB = 2^20) are read; 35MiB is Exchange Online\'s "35 MB"', () => {
  const read = (size: string) => {
    const result = check(withSize(size));
    assert.ok(result.ok, result.ok ? '' : result.problems.map(formatProblem).join('\n'));
    return result.loaded.config.smtp.maxMessageBytes;
  };
  assert.equal(read('36700160'), 36_700_160);
  assert.equal(read('35MB'), 35_000_000);
  assert.equal(read('35 MB'), 35_000_000);
  assert.equal(read('35 MiB'), 36_700_160);
  assert.equal(read('35mib'), 36_700_160);
  assert.equal(read('512 KiB'), 524_288);
  assert.equal(read('1GB'), 1_000_000_000);
  const defaults = check(account);
  assert.equal(defaults.ok ? defaults.loaded.config.smtp.maxMessageBytes : 0, 36_700_160, 'the default is 35 MiB');
});

test('byte sizes: an ambiguous or unknown unit is refused with the exact numbers to write, once', () => {
  const [ambiguous, ...rest] = refused(withSize('35M'));
  assert.equal(rest.length, 0);
  assert.equal(ambiguous!.path, 'smtp.maxMessageBytes');
  assert.equal(ambiguous!.shown, '"35M"');
  assert.match(ambiguous!.hint ?? '', /write 36700160 \(35 MiB.*\) or 35000000 \(35 MB\)/);
  assert.match(refused(withSize('35 parsecs'))[0]!.hint ?? '', /write a number of bytes, e\.g\. 35/);
  assert.match(refused(withSize('1000'))[0]!.message, /too small \(minimum 1024\)/, 'units do not hide the minimum');
});

test('a YAML syntax error is one problem with its line, column and text, and a fix for the mistake', () => {
  const tab = `${account.replace('    mailbox:', '\tmailbox:')}smtp:\n  maxMessageBytes: 35MB\n`;
  const list = refused(tab);
  assert.equal(list.length, 1, list.map(formatProblem).join('\n'));
  const [problem] = list;
  assert.equal(problem!.path, '(syntax) line 4, column 1');
  assert.equal(problem!.shown, JSON.stringify('\tmailbox: scanner@contoso.com'));
  assert.match(problem!.message, /^Tabs are not allowed as indentation/);
  assert.match(problem!.hint ?? '', /indent with spaces, never tabs/);

  const [unclosed] = refused(`${account}smtp:\n  upstream: { host: smtp.office365.com\n`);
  assert.match(unclosed!.path, /^\(syntax\) line \d+, column \d+$/);
});

let scratch = '';
let files: { cert: string; key: string; otherKey: string; notPem: string };

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'xoauth2-relay-keypair-'));
  const pki = await createPki('check-config test CA');
  const one = await pki.issueServerCertificate(['relay.example']);
  const two = await pki.issueServerCertificate(['other.example']);
  files = { cert: join(scratch, 'relay.crt'), key: join(scratch, 'relay.key'), otherKey: join(scratch, 'other.key'), notPem: join(scratch, 'notes.txt') };
  await writeFile(files.cert, one.certPem);
  await writeFile(files.key, one.keyPem);
  await writeFile(files.otherKey, two.keyPem);
  await writeFile(files.notPem, 'not a key');
});

after(() => rm(scratch, { recursive: true, force: true }));

const tls = (cert: string, key: string) => `${account}tls:\n  certFile: ${cert}\n  keyFile: ${key}\n`;

test('a certificate and its own key pass; a key from another certificate, swapped files and a non-PEM file are refused', () => {
  assert.ok(check(tls(files.cert, files.key)).ok);

  const [mismatch, ...rest] = refused(tls(files.cert, files.otherKey));
  assert.equal(rest.length, 0);
  assert.equal(mismatch!.path, 'tls.keyFile');
  assert.match(mismatch!.message, /is not the private key of tls\.certFile \(.*CN=relay\.example/);
  assert.match(mismatch!.hint ?? '', /swapped/);

  const [swapped] = refused(tls(files.key, files.cert));
  assert.equal(swapped!.path, 'tls.certFile');
  assert.match(swapped!.message, /is not a PEM certificate/);

  const [garbage] = refused(tls(files.cert, files.notPem));
  assert.equal(garbage!.path, 'tls.keyFile');
  assert.match(garbage!.message, /is not an unencrypted PEM private key/);

  const app = `${account}    flow: client-credentials\n    certificateFile: ${files.cert}\n    privateKeyFile: ${files.otherKey}\n`;
  assert.equal(refused(app)[0]!.path, 'accounts.scanner.privateKeyFile');
});

test('the check-config command prints the mismatch and exits 78', async () => {
  const config = join(scratch, 'config.yaml');
  await writeFile(config, tls(files.cert, files.otherKey));
  const r = await runCli(['--config', config, 'check-config']);
  assert.equal(r.code, 78);
  assert.match(r.stderr, /1 problem\n {2}tls\.keyFile = ".*other\.key": is not the private key of tls\.certFile/);
});
