/**
 * High Volume Email (HVE) as the SMTP upstream (docs/high-volume-email.md, docs/exchange-online.md §7): internal
 * recipients only, and tokens close to expiry refused with `501 5.5.127`. Microsoft does not publish how close is
 * too close; the relay presents no token with less than ten minutes left (its own refresh margin's minimum).
 */
export const HVE_HOSTS: readonly string[] = ['smtp.hve.mx.microsoft', 'smtp-hve.office365.com'];

/** The least life a token must have left to be presented to HVE. */
export const HVE_MIN_TOKEN_LIFETIME_MS = 10 * 60_000;

/** True when the SMTP upstream is HVE: configured so, or one of its host names. */
export function isHighVolumeEmail(upstream: { host: string; hve?: boolean }): boolean {
  return upstream.hve === true || HVE_HOSTS.includes(upstream.host.toLowerCase());
}
