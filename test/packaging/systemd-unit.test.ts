/**
 * The systemd unit: `systemd-analyze verify` accepts it without a single warning, it has the hardening the
 * service relies on, and its sysusers.d file creates the service user (in a scratch root, not on this host).
 *
 * `verify` checks that ExecStart's program exists and is executable on the machine that runs the check. The
 * unit names /usr/local/bin/xoauth2-relay, where `npm install -g` puts it on a real host, not here: the test
 * verifies a copy whose ExecStart points at this checkout's bin/xoauth2-relay.js (same arguments, everything
 * else byte for byte), which tests the unit and not whether this machine has the relay installed globally.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const UNIT = resolve('systemd/xoauth2-relay.service');
const SYSUSERS = resolve('systemd/xoauth2-relay.sysusers');
const INSTALLED_BINARY = '/usr/local/bin/xoauth2-relay';
const CHECKOUT_BINARY = resolve('bin/xoauth2-relay.js');

function tool(name: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : null;
}

const analyze = tool('systemd-analyze');
const sysusers = tool('systemd-sysusers');
const skip = !analyze && !process.env.CI ? 'systemd-analyze not installed (apt-get install systemd; scripts/setup-debian.sh does)' : false;

let scratch: string;
let unitText: string;

before(async () => {
  if (skip) return;
  if (!analyze) throw new Error('CI must verify the unit: systemd-analyze is missing (scripts/setup-debian.sh installs systemd)');
  scratch = await mkdtemp(join(tmpdir(), 'xoauth2-relay-unit-'));
  unitText = await readFile(UNIT, 'utf8');
});
after(() => (scratch ? rm(scratch, { recursive: true, force: true }) : undefined));

/** Runs `systemd-analyze verify` on `text` saved as xoauth2-relay.service; resolves exit code and all output. */
async function verify(text: string): Promise<{ status: number | null; output: string }> {
  const dir = await mkdtemp(join(scratch, 'unit-'));
  const path = join(dir, 'xoauth2-relay.service');
  await writeFile(path, text);
  const run = spawnSync(analyze!, ['verify', '--man=no', path], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' } });
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

function forThisMachine(text: string): string {
  assert.ok(text.includes(`ExecStart=${INSTALLED_BINARY} `), `ExecStart runs ${INSTALLED_BINARY}`);
  return text.replace(`ExecStart=${INSTALLED_BINARY} `, `ExecStart=${CHECKOUT_BINARY} `);
}

/** `Key=value` settings of the [Service] section (last one wins, as in systemd). */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (section !== 'Service' || eq < 0) continue;
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

test('systemd-analyze verify passes on the unit, without warnings', { skip }, async () => {
  const { status, output } = await verify(forThisMachine(unitText));
  assert.equal(status, 0, output);
  assert.equal(output, '', 'no warnings either (an unknown key is only a warning to systemd)');
});

test('the check is strict: a misspelt key or a missing program makes it fail', { skip }, async () => {
  const misspelt = await verify(forThisMachine(unitText).replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
  assert.match(misspelt.output, /Unknown key( name)? 'NoNewPrivilege'/);
  const missing = await verify(unitText.replace(`ExecStart=${INSTALLED_BINARY} `, `ExecStart=${join(scratch, 'no-such-binary')} `));
  assert.notEqual(missing.status, 0);
  assert.match(missing.output, /is not executable/);
});

test('the unit runs the daemon unprivileged with state, credential, hardening and a restart policy', { skip }, () => {
  const s = serviceSettings(unitText);
  const one = (key: string) => s.get(key)?.at(-1);
  assert.match(one('ExecStart') ?? '', / run --config \/etc\/xoauth2-relay\/config\.yaml$/);
  assert.ok(one('User') === 'xoauth2-relay' || one('DynamicUser') === 'yes', 'a dedicated user');
  assert.equal(one('StateDirectory'), 'xoauth2-relay');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  assert.match(one('LoadCredential') ?? '', /^xoauth2-relay-key:\/etc\/xoauth2-relay\/token-store\.key$/, 'the credential name the relay looks for (store-key.ts)');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('RestartPreventExitStatus'), '78', 'a configuration error (exit 78) is not restarted in a loop');
  assert.equal(one('KillSignal'), 'SIGTERM');
  assert.ok(Number.parseInt(one('TimeoutStopSec') ?? '0', 10) > 20, 'longer than the daemon\'s 20 s drain');
  assert.equal(s.has('MemoryDenyWriteExecute'), false, 'V8 needs W+X memory');
  assert.ok(Number.parseInt(one('LimitNOFILE') ?? '0', 10) >= 2 * 10_000 + 1024, 'two descriptors per held IMAP/POP3 session: 10,000 sessions need more than 20,000');
});

test('the sysusers.d file creates the service user (in a scratch root)', { skip: skip || (!sysusers && !process.env.CI ? 'systemd-sysusers not installed' : false) }, async () => {
  const root = join(scratch, 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  const run = spawnSync(sysusers!, [`--root=${root}`, SYSUSERS], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
  assert.match(passwd, /^xoauth2-relay:x:\d+:\d+:[^:]*:\/var\/lib\/xoauth2-relay:\/usr\/sbin\/nologin$/m);
  assert.match(await readFile(join(root, 'etc/group'), 'utf8'), /^xoauth2-relay:x:\d+:/m);
});
