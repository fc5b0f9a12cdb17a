/**
 * POP-before-SMTP memory (Fuji Xerox, Brother: the device "authenticates" by checking mail, then submits without
 * SMTP AUTH from the same address). Remembers, per source address, which devices logged in over POP3/IMAP there
 * and when. Only logins are recorded, so an address no device logged in from is never admitted: this never widens
 * what an unknown address can do.
 *
 * Bounded: at most `maxAddresses` addresses (the oldest login is forgotten first) and `maxDevicesPerAddress` devices
 * per address; expired entries are dropped as they are met. The clock is injectable for tests.
 */

export interface PopBeforeSmtpOptions {
  maxAddresses?: number;
  maxDevicesPerAddress?: number;
  now?: () => number;
}

/** One device's login from an address: when, and until when the window it had then lasts. */
export interface MailboxLogin {
  device: string;
  at: number;
  until: number;
}

export class PopBeforeSmtp {
  /** address → device name → its last login; Map order is login order, for the eviction. */
  private readonly byAddress = new Map<string, Map<string, MailboxLogin>>();
  private readonly maxAddresses: number;
  private readonly maxDevices: number;
  readonly now: () => number;

  constructor(opts: PopBeforeSmtpOptions = {}) {
    this.maxAddresses = opts.maxAddresses ?? 4096;
    this.maxDevices = opts.maxDevicesPerAddress ?? 8;
    this.now = opts.now ?? Date.now;
  }

  /** `device` logged in over POP3/IMAP from `address`: SMTP from there is admitted as it for `minutes`. */
  record(address: string, device: string, minutes: number): MailboxLogin {
    const at = this.now();
    const login = { device, at, until: at + minutes * 60_000 };
    const devices = this.byAddress.get(address) ?? new Map<string, MailboxLogin>();
    this.byAddress.delete(address); // re-inserted last: the most recent login is evicted last
    devices.delete(device);
    devices.set(device, login);
    while (devices.size > this.maxDevices) devices.delete(devices.keys().next().value!);
    this.byAddress.set(address, devices);
    while (this.byAddress.size > this.maxAddresses) this.byAddress.delete(this.byAddress.keys().next().value!);
    return login;
  }

  /** The logins from `address` whose window has not ended (as recorded; the caller may shorten it). */
  live(address: string): MailboxLogin[] {
    const devices = this.byAddress.get(address);
    if (!devices) return [];
    const now = this.now();
    for (const [name, login] of devices) if (login.until <= now) devices.delete(name);
    if (devices.size === 0) this.byAddress.delete(address);
    return [...devices.values()];
  }

  /** Addresses remembered (for tests and the bound). */
  get size(): number {
    return this.byAddress.size;
  }
}
