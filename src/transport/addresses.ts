/**
 * Source-address rules. Uses node's BlockList, which matches IPv4, IPv6 and IPv4-mapped IPv6
 * (a dual-stack listener reports `::ffff:192.168.10.5`) without hand-written bit arithmetic.
 */
import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../config/schema.js';

/** True for 127.0.0.0/8, ::1 and `localhost`: the admin page may listen there without a password. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const family = isIP(host);
  if (family === 4) return host.startsWith('127.');
  if (family === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/** A set of CIDR ranges that answers "is this remote address inside?". */
export class AddressRanges {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(ranges: readonly string[]) {
    for (const text of ranges) {
      const cidr = parseCidr(text);
      if (!cidr) throw new TypeError(`not an address or CIDR range: ${text}`);
      this.list.addSubnet(cidr.address, cidr.prefix, cidr.family === 4 ? 'ipv4' : 'ipv6');
    }
    this.empty = ranges.length === 0;
  }

  /** `address` as a socket reports it (IPv4, IPv6 or IPv4-mapped IPv6). */
  contains(address: string): boolean {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return this.list.check(mapped[1]!, 'ipv4');
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}
