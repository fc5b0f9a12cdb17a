/**
 * Open connections per source address, so one misbehaving device (or a scan of the LAN) cannot take every
 * socket. The count is exact: `open` returns a release function that must be called once on close.
 */
export class ConnectionLimits {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerAddress: number) {}

  /** A release function, or null when the address already has its maximum. */
  tryOpen(address: string): (() => void) | null {
    const n = this.open.get(address) ?? 0;
    if (n >= this.maxPerAddress) return null;
    this.open.set(address, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(address) ?? 1) - 1;
      if (left <= 0) this.open.delete(address);
      else this.open.set(address, left);
    };
  }

  count(address: string): number {
    return this.open.get(address) ?? 0;
  }
}
