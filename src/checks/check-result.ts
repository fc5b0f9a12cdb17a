/** The outcome of checking one protocol of an account against its real upstream (CLI `test`, admin page Test). */
import { RelayError, isRelayError } from '../errors.js';

export type CheckedProtocol = 'smtp' | 'imap' | 'pop3';

export interface CheckResult {
  protocol: CheckedProtocol;
  ok: boolean;
  /** What was checked and found, in words (e.g. "INBOX has 3 messages"). */
  detail: string;
  /** When it failed: what to do (from the error catalogue). */
  fix: string | null;
  ms: number;
}

export interface AccountTestReport {
  account: string;
  mailbox: string;
  results: CheckResult[];
}

/** Runs one check, timing it and turning any failure into words and a fix; never throws. */
export async function timedCheck(protocol: CheckedProtocol, run: () => Promise<string>): Promise<CheckResult> {
  const started = performance.now();
  try {
    const detail = await run();
    return { protocol, ok: true, detail, fix: null, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const ms = Math.round(performance.now() - started);
    if (isRelayError(err)) return { protocol, ok: false, detail: err.detail ?? err.code, fix: new RelayError(err.code).message, ms };
    return { protocol, ok: false, detail: err instanceof Error ? err.message : String(err), fix: null, ms };
  }
}
