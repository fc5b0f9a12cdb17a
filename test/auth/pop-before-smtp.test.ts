/**
 * POP-before-SMTP in the device directory, with an injected clock: a device's POP3/IMAP login admits its own
 * address for its configured minutes and nothing else; off by default; a reload can end or shorten a window but
 * never widen one; two devices on one address admit neither; the memory is bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceDirectory, type Device } from '../../src/auth/device-directory.js';
import { PopBeforeSmtp } from '../../src/auth/pop-before-smtp.js';
import { configSchema, type DeviceConfig } from '../../src/config/schema.js';

function devicesFrom(list: Array<Record<string, unknown>>): DeviceConfig[] {
  return configSchema.parse({
    accounts: { scanner: { mailbox: 'scanner@contoso.com', tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } },
    devices: list.map((d) => ({ account: 'scanner', passwordHash: null, ...d })),
  }).devices;
}

const xerox = { name: 'xerox', username: 'xerox', popBeforeSmtpMinutes: 10 };
const brother = { name: 'brother', username: 'brother', popBeforeSmtpMinutes: 5 };
const plain = { name: 'plain', username: 'plain' };

function world(list: Array<Record<string, unknown>>) {
  const clock = { ms: Date.parse('2026-12-06T08:00:00Z') };
  const directory = new DeviceDirectory(devicesFrom(list), undefined, { now: () => clock.ms });
  const device = (name: string): Device => ({ name, account: 'scanner', username: name, allowedSenders: [], allowedRecipientDomains: [] });
  return { clock, directory, device };
}

test('a login admits its own address for the configured minutes, not another address, not after the window', () => {
  const { clock, directory, device } = world([xerox]);
  assert.equal(directory.byMailboxLogin('192.0.2.10'), null, 'nothing before a login');
  directory.mailboxLoggedIn(device('xerox'), '192.0.2.10');
  assert.equal(directory.byMailboxLogin('192.0.2.10')?.name, 'xerox');
  assert.equal(directory.byMailboxLogin('192.0.2.11'), null, 'another address is never admitted');
  clock.ms += 10 * 60_000 - 1;
  assert.equal(directory.byMailboxLogin('192.0.2.10')?.name, 'xerox');
  clock.ms += 1;
  assert.equal(directory.byMailboxLogin('192.0.2.10'), null, 'the window has ended');
  assert.equal(directory.mailboxLogins.size, 0, 'the expired entry is gone');
});

test('off by default: a device without popBeforeSmtpMinutes records nothing', () => {
  const { directory, device } = world([plain]);
  assert.equal(devicesFrom([plain])[0]!.popBeforeSmtpMinutes, 0);
  directory.mailboxLoggedIn(device('plain'), '192.0.2.10');
  assert.equal(directory.byMailboxLogin('192.0.2.10'), null);
  assert.equal(directory.mailboxLogins.size, 0);
});

test('two devices with open windows on one address (NAT) admit neither', () => {
  const { clock, directory, device } = world([xerox, brother]);
  directory.mailboxLoggedIn(device('xerox'), '192.0.2.10');
  directory.mailboxLoggedIn(device('brother'), '192.0.2.10');
  assert.equal(directory.byMailboxLogin('192.0.2.10'), null);
  clock.ms += 5 * 60_000; // brother's window ends; xerox's is the only one left
  assert.equal(directory.byMailboxLogin('192.0.2.10')?.name, 'xerox');
});

test('a reload ends or shortens windows, never widens them', () => {
  const { clock, directory, device } = world([xerox, { ...brother, allowFrom: ['192.0.2.0/24'] }]);
  directory.mailboxLoggedIn(device('xerox'), '192.0.2.10');
  directory.mailboxLoggedIn(device('brother'), '192.0.2.20');
  directory.replace(devicesFrom([{ ...xerox, popBeforeSmtpMinutes: 60 }, { ...brother, allowFrom: ['198.51.100.0/24'] }]));
  assert.equal(directory.byMailboxLogin('192.0.2.20'), null, 'no longer allowed from that address');
  clock.ms += 10 * 60_000;
  assert.equal(directory.byMailboxLogin('192.0.2.10'), null, 'a longer window applies to new logins only');
  directory.mailboxLoggedIn(device('xerox'), '192.0.2.10');
  directory.replace(devicesFrom([{ ...xerox, popBeforeSmtpMinutes: 1 }]));
  clock.ms += 60_000;
  assert.equal(directory.byMailboxLogin('192.0.2.10'), null, 'shortened at once');
  directory.mailboxLoggedIn(device('xerox'), '192.0.2.10');
  directory.replace(devicesFrom([brother]));
  assert.equal(directory.byMailboxLogin('192.0.2.10'), null, 'a removed device admits nothing');
});

test('bounded: the oldest addresses and devices are forgotten first', () => {
  const memory = new PopBeforeSmtp({ maxAddresses: 3, maxDevicesPerAddress: 2, now: () => 0 });
  for (let i = 1; i <= 5; i++) memory.record(`192.0.2.${i}`, 'xerox', 10);
  assert.equal(memory.size, 3);
  assert.deepEqual(memory.live('192.0.2.1'), []);
  assert.equal(memory.live('192.0.2.5').length, 1);
  for (const name of ['a', 'b', 'c']) memory.record('192.0.2.9', name, 10);
  assert.deepEqual(memory.live('192.0.2.9').map((l) => l.device), ['b', 'c']);
});
