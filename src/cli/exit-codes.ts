/**
 * Exit codes of every command (sysexits.h where one fits), so scripts and systemd can tell
 * "fix the config" from "try again later".
 */
export const exitCodes = {
  ok: 0,
  /** The operation ran and failed (sign-in declined, token invalid, check failed). */
  failed: 1,
  /** Wrong command line. */
  usage: 64,
  /** Identity platform or upstream unreachable: try again later. */
  unavailable: 69,
  /** Internal error (a bug, or the state directory cannot be written). */
  software: 70,
  /** Configuration error: run check-config. */
  config: 78,
} as const;

export const exitCodeHelp = `
Exit codes: 0 ok, 1 the operation failed, 64 wrong command line, 69 identity platform or
upstream unreachable (try again), 70 internal error, 78 configuration error (run check-config).`;
