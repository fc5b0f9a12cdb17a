/**
 * Which device is talking: by user name and password (scrypt, with the verifier's success cache), or by
 * source address for devices that never authenticate (SMTP only). A device with `allowFrom` is refused
 * from any other address even with the right password.
 */
import type { DeviceConfig } from '../config/schema.js';
import { AddressRanges } from '../transport/addresses.js';
import { createPasswordVerifier, type PasswordVerifier } from './password-hash.js';

export interface Device {
  name: string;
  account: string;
  username: string | null;
}

interface Entry {
  config: DeviceConfig;
  ranges: AddressRanges;
}

export class DeviceDirectory {
  private readonly byUsername = new Map<string, Entry>();
  private readonly addressOnly: Entry[] = [];
  private readonly all: Entry[];

  constructor(devices: readonly DeviceConfig[], private readonly verifier: PasswordVerifier = createPasswordVerifier()) {
    this.all = devices.map((config) => ({ config, ranges: new AddressRanges(config.allowFrom) }));
    for (const entry of this.all) {
      if (entry.config.username !== null) this.byUsername.set(entry.config.username, entry);
      else this.addressOnly.push(entry);
    }
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

  /**
   * The device these credentials belong to, or null. Unknown user names cost the same scrypt as wrong
   * passwords, so response times do not reveal which user names exist.
   */
  async login(username: string, password: string, remoteAddress: string): Promise<Device | null> {
    const entry = this.byUsername.get(username);
    const ok = await this.verifier.verify(username, password, entry?.config.passwordHash ?? undefined);
    if (!ok || !entry) return null;
    if (!entry.ranges.empty && !entry.ranges.contains(remoteAddress)) return null;
    return toDevice(entry);
  }
}

function toDevice(entry: Entry): Device {
  return { name: entry.config.name, account: entry.config.account, username: entry.config.username };
}
