import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkConfigText } from '../../src/config/load.js';
import { renderConfigurationMarkdown, renderExampleYaml } from '../../src/config/docs.js';
import type { ConfigProblem } from '../../src/config/problems.js';

const root = new URL('../../', import.meta.url);
const base = `
accounts:
  scanner:
    mailbox: scanner@contoso.com
    tenantId: 11111111-2222-3333-4444-555555555555
    clientId: 66666666-7777-8888-9999-000000000000
`;

function problems(yaml: string): ConfigProblem[] {
  const result = checkConfigText(yaml, '/etc/xoauth2-relay/config.yaml', {});
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.problems;
}

function find(list: ConfigProblem[], path: string): ConfigProblem {
  const p = list.find((x) => x.path === path);
  assert.ok(p, `no problem reported at ${path}; got: ${list.map((x) => x.path).join(', ')}`);
  return p;
}

test('example config and configuration docs are what the schema generates (run `npm run gen:config-docs` after changing the schema)', () => {
  assert.equal(readFileSync(new URL('config/example.yaml', root), 'utf8'), renderExampleYaml());
  assert.equal(readFileSync(new URL('docs/configuration.md', root), 'utf8'), renderConfigurationMarkdown());
});

test('the example config is valid as it stands', () => {
  const result = checkConfigText(renderExampleYaml(), '/etc/xoauth2-relay/config.yaml', {});
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.problems, null, 2));
  assert.equal(result.loaded.config.smtp.upstream.host, 'smtp.office365.com');
  assert.ok(Object.isFrozen(result.loaded.config.accounts));
});

test('a minimal config gets every default', () => {
  const result = checkConfigText(base, '/etc/xoauth2-relay/config.yaml', {});
  assert.ok(result.ok);
  const c = result.loaded.config;
  assert.equal(c.accounts.scanner!.flow, 'device-code');
  assert.equal(c.identity.authorityHost, 'https://login.microsoftonline.com');
  assert.equal(c.identity.tokens.refreshBeforeExpirySeconds, 600);
  assert.deepEqual(c.smtp.listen, [{ host: '0.0.0.0', port: 2525, tls: 'none', loginBeforeTls: 'refuse' }]);
  assert.equal(c.imap.upstream.port, 993);
  assert.equal(c.admin.listen, '127.0.0.1:8025');
});

test('wrong values name the key, show the value and say how to fix it', () => {
  const list = problems(`
accounts:
  scanner:
    mailbox: not-an-address
    tenantId: "my tenant"
    clientId: 1234
    flow: password
`);
  assert.match(find(list, 'accounts.scanner.mailbox').hint ?? '', /full mailbox address/);
  assert.equal(find(list, 'accounts.scanner.mailbox').shown, '"not-an-address"');
  assert.match(find(list, 'accounts.scanner.tenantId').hint ?? '', /Directory \(tenant\) ID/);
  assert.match(find(list, 'accounts.scanner.clientId').message, /wrong type: expected string/);
  assert.match(find(list, 'accounts.scanner.flow').message, /"device-code", "browser", "client-credentials"/);
});

test('missing keys and misspelt keys are reported, with a suggestion', () => {
  const list = problems(`
accounts:
  scanner:
    mailbox: scanner@contoso.com
    tennantId: 11111111-2222-3333-4444-555555555555
    clientId: 66666666-7777-8888-9999-000000000000
smtpp: {}
`);
  assert.equal(find(list, 'accounts.scanner.tenantId').message, 'is required but missing');
  assert.match(find(list, 'accounts.scanner.tennantId').hint ?? '', /did you mean `tenantId`/);
  assert.match(find(list, 'smtpp').hint ?? '', /did you mean `smtp`/);
});

test('secrets are masked: a password written into the config never appears in a problem', () => {
  const list = problems(`${base}
devices:
  - { name: mfp, username: mfp2, password: "Hunter2-secret", account: scanner }
`);
  const p = find(list, 'devices[0].password');
  assert.match(p.shown ?? '', /\*\*\*\*/);
  assert.doesNotMatch(JSON.stringify(list), /Hunter2-secret/);
});

test('cross-field mistakes are found, all in one pass', () => {
  const list = problems(`
accounts:
  app:
    mailbox: scanner@contoso.com
    tenantId: contoso.com
    clientId: 66666666-7777-8888-9999-000000000000
    flow: client-credentials
  user:
    mailbox: fax@contoso.com
    tenantId: organizations
    clientId: 66666666-7777-8888-9999-000000000000
    clientSecretFile: /etc/xoauth2-relay/secret
devices:
  - { name: a, username: mfp, account: nobody }
  - { name: b, account: user }
  - { name: a, username: mfp, passwordHash: "scrypt$bad", account: user }
smtp: { listen: [{ port: 2525, tls: starttls }] }
imap: { listen: [{ port: 2525 }] }
admin: { listen: "0.0.0.0:8025" }
`);
  assert.match(find(list, 'accounts.app.flow').message, /needs a client secret or a certificate/);
  assert.match(find(list, 'accounts.user.clientSecretFile').message, /only applies to flow: client-credentials/);
  assert.match(find(list, 'devices[0].account').hint ?? '', /use one of: app, user/);
  assert.match(find(list, 'devices[0].passwordHash').hint ?? '', /hash-password/);
  assert.match(find(list, 'devices[1].allowFrom').message, /anyone could send/);
  assert.match(find(list, 'devices[2].name').message, /already used by devices\[0\]/);
  assert.match(find(list, 'devices[2].username').message, /already used by devices\[0\]/);
  assert.ok(find(list, 'devices[2].passwordHash'));
  assert.match(find(list, 'smtp.listen[0].tls').hint ?? '', /tls.certFile/);
  assert.match(find(list, 'imap.listen[0].port').message, /already used by smtp.listen\[0\]/);
  assert.match(find(list, 'admin.listen').hint ?? '', /passwordHash/);
  assert.ok(list.length >= 11, `expected every problem at once, got ${list.length}`);
});

test('files the config names must exist; env references must be set', () => {
  const list = problems(`
accounts:
  app:
    mailbox: scanner@contoso.com
    tenantId: 11111111-2222-3333-4444-555555555555
    clientId: 66666666-7777-8888-9999-000000000000
    flow: client-credentials
    clientSecretEnv: SCANNER_SECRET
identity: { extraCaFile: ./no-such-ca.pem }
`);
  assert.match(find(list, 'accounts.app.clientSecretEnv').hint ?? '', /set SCANNER_SECRET/);
  assert.match(find(list, 'identity.extraCaFile').message, /does not exist \(\/etc\/xoauth2-relay\/no-such-ca.pem\)/);
});

test('YAML syntax errors give the line', () => {
  const list = problems('accounts:\n  scanner: [unclosed\n');
  assert.equal(list.length, 1, 'one problem: the first syntax error');
  assert.match(list[0]?.path ?? '', /^\(syntax\) line \d+, column \d+$/);
});

test('bad CIDR ranges and ports are refused with a hint', () => {
  const list = problems(`${base}
devices:
  - { name: fax, account: scanner, allowFrom: [192.168.10.0/33, "10.0.0.1/8", nonsense] }
smtp: { listen: [{ port: 70000 }] }
`);
  assert.match(find(list, 'devices[0].allowFrom[0]').hint ?? '', /192\.168\.10\.0\/24/);
  assert.ok(find(list, 'devices[0].allowFrom[2]'));
  assert.throws(() => find(list, 'devices[0].allowFrom[1]'));
  assert.match(find(list, 'smtp.listen[0].port').message, /too big/);
});
