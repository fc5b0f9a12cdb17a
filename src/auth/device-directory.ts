/**
 * Which device is talking: by user name and password (scrypt, with the verifier's success cache), or by
 * source address for devices that never authenticate (SMTP only). A device with `allowFrom` is refused
 * from any other address even with the right password.
 */
import type { DeviceConfig } from '../config/schema.js';
import { AddressRanges } from '../transport/addresses.js';
import { PopBeforeSmtp, type PopBeforeSmtpOptions } from './pop-before-smtp.js';
import { createPasswordVerifier, decoyPasswordHash, parsePasswordHash, type PasswordVerifier, type ScryptParams } from './password-hash.js';

export interface Device {
  name: string;
  account: string;
  username: string | null;
  /** SMTP: envelope senders it may use (addresses or @domain); empty: any. */
  allowedSenders: readonly string[];
  /** SMTP: recipient domains it may send to; empty: any. */
  allowedRecipientDomains: readonly string[];
}

interface Entry {
  config: DeviceConfig;
  ranges: AddressRanges;
}

export class DeviceDirectory {
  private byUsername = new Map<string, Entry>();
  private byName = new Map<string, Entry>();
  private addressOnly: Entry[] = [];
  private all: Entry[] = [];
  /** What an unknown user name is checked against: the scrypt cost of the configured hashes. */
  private decoy = decoyPasswordHash();

  /** POP-before-SMTP logins; kept across reloads (see `byMailboxLogin` for how a reload applies to them). */
  readonly mailboxLogins: PopBeforeSmtp;

  constructor(devices: readonly DeviceConfig[], private readonly verifier: PasswordVerifier = createPasswordVerifier(), popBeforeSmtp: PopBeforeSmtpOptions = {}) {
    this.mailboxLogins = new PopBeforeSmtp(popBeforeSmtp);
    this.replace(devices);
  }

  /**
   * Takes a new device list (SIGHUP reload). Sessions already logged in keep the device they logged in as;
   * every new login and address check uses the new list.
   */
  replace(devices: readonly DeviceConfig[]): void {
    const all = devices.map((config) => ({ config, ranges: new AddressRanges(config.allowFrom) }));
    const byUsername = new Map<string, Entry>();
    const addressOnly: Entry[] = [];
    for (const entry of all) {
      if (entry.config.username !== null) byUsername.set(entry.config.username, entry);
      else addressOnly.push(entry);
    }
    [this.all, this.byUsername, this.addressOnly] = [all, byUsername, addressOnly];
    this.byName = new Map(all.map((e) => [e.config.name, e]));
    this.decoy = decoyPasswordHash(commonParams(devices));
  }

  get size(): number {
    return this.all.length;
  }

  /** True when some device may connect from this address (devices with a password and no allowFrom: any address). */
  mayConnect(remoteAddress: string): boolean {
    return this.all.some((e) => e.ranges.empty || e.ranges.contains(remoteAddress));
  }

  /** The device admitted by address alone (no credentials), if any. */
  byAddress(remoteAddress: string): Device | null {
    const entry = this.addressOnly.find((e) => e.ranges.contains(remoteAddress));
    return entry ? toDevice(entry) : null;
  }

  /** A device logged in over POP3 or IMAP from `remoteAddress`: remembered when it has POP-before-SMTP on. */
  mailboxLoggedIn(device: Device, remoteAddress: string): void {
    const minutes = this.byName.get(device.name)?.config.popBeforeSmtpMinutes ?? 0;
    if (minutes > 0) this.mailboxLogins.record(remoteAddress, device.name, minutes);
  }

  /**
   * SMTP without AUTH: the device whose recent POP3/IMAP login from this address admits it (POP-before-SMTP), or
   * null. Judged by the device list in force now, so a reload can end or shorten a window but never widen one: a
   * device removed, turned off (popBeforeSmtpMinutes: 0) or no longer allowed from the address admits nothing, and
   * the window is the shorter of the one recorded and login time + the minutes configured now. Two devices with
   * open windows on one address (devices behind NAT) admit neither: the relay could not tell whose mailbox to use.
   */
  byMailboxLogin(remoteAddress: string): Device | null {
    const now = this.mailboxLogins.now();
    const admitted = this.mailboxLogins.live(remoteAddress).flatMap((login) => {
      const entry = this.byName.get(login.device);
      if (!entry || entry.config.username === null) return [];
      if (!entry.ranges.empty && !entry.ranges.contains(remoteAddress)) return [];
      const until = Math.min(login.until, login.at + entry.config.popBeforeSmtpMinutes * 60_000);
      return until > now ? [entry] : [];
    });
    return admitted.length === 1 ? toDevice(admitted[0]!) : null;
  }

  /**
   * The device these credentials belong to, or null. Unknown user names are checked against a decoy hash with
   * the configured hashes' scrypt parameters, through the same verifier (cache, queue, bound), so response
   * times do not reveal which user names exist. Throws RelayError AUTH_BUSY when the verification queue is full.
   */
  async login(username: string, password: string, remoteAddress: string): Promise<Device | null> {
    const entry = this.byUsername.get(username);
    const ok = await this.verifier.verify(username, password, entry?.config.passwordHash ?? this.decoy);
    if (!ok || !entry) return null;
    if (!entry.ranges.empty && !entry.ranges.contains(remoteAddress)) return null;
    return toDevice(entry);
  }
}

/** The scrypt parameters most configured hashes use (the default when none parses). */
function commonParams(devices: readonly DeviceConfig[]): ScryptParams | undefined {
  const counts = new Map<string, { params: ScryptParams; n: number }>();
  for (const d of devices) {
    if (!d.passwordHash) continue;
    try {
      const { N, r, p } = parsePasswordHash(d.passwordHash);
      const key = `${N}$${r}$${p}`;
      const seen = counts.get(key) ?? { params: { N, r, p }, n: 0 };
      seen.n += 1;
      counts.set(key, seen);
    } catch {
      // check-config refuses a malformed hash; here it only does not count
    }
  }
  return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.params;
}

function toDevice(entry: Entry): Device {
  const c = entry.config;
  return { name: c.name, account: c.account, username: c.username, allowedSenders: c.allowedSenders, allowedRecipientDomains: c.allowedRecipientDomains };
}
