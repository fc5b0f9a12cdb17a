/**
 * Open connections per listener and per source address, so neither one misbehaving device nor a crowd of
 * addresses (a LAN scan, a botnet behind the firewall) can take every socket and descriptor. The count is exact:
 * `tryOpen` returns a release function that must be called once on close.
 */
export type ConnectionAdmission =
  | { admitted: true; release: () => void }
  /** `listener`: the listener holds its maximum; `address`: this address does. */
  | { admitted: false; full: 'listener' | 'address'; open: number };

export class ConnectionLimits {
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxPerAddress: number,
    private readonly maxPerListener = Number.POSITIVE_INFINITY,
  ) {}

  /** Admits one more connection from `address`, or says which limit is reached. */
  tryOpen(address: string): ConnectionAdmission {
    if (this.total >= this.maxPerListener) return { admitted: false, full: 'listener', open: this.total };
    const n = this.open.get(address) ?? 0;
    if (n >= this.maxPerAddress) return { admitted: false, full: 'address', open: n };
    this.open.set(address, n + 1);
    this.total += 1;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.total -= 1;
      const left = (this.open.get(address) ?? 1) - 1;
      if (left <= 0) this.open.delete(address);
      else this.open.set(address, left);
    };
    return { admitted: true, release };
  }

  count(address: string): number {
    return this.open.get(address) ?? 0;
  }

  /** Connections open on the listener. */
  get size(): number {
    return this.total;
  }
}
