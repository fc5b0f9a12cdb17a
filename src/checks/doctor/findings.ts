/**
 * The doctor's report: one step per check, in the order a person fixes them. A failed step carries a catalogue
 * code; its cause and fix come from the one error catalogue (src/errors.ts, the DOCTOR_* and UPSTREAM_* rows)
 * with this account's names filled in, so the CLI, the JSON and the admin page print the same words.
 */
import { catalogue, type ErrorCode } from '../../errors.js';

export type StepStatus = 'pass' | 'fail' | 'skip';

export interface DoctorStep {
  /** token, claims, smtp-auth, send-as <sender>, message-size, imap, pop3, hve-recipients, send-to */
  check: string;
  status: StepStatus;
  /** What was checked and found (the server's reply when there is one). */
  detail: string;
  code?: ErrorCode;
  cause?: string;
  fix?: string;
}

export interface DoctorReport {
  account: string;
  mailbox: string;
  flow: string;
  ok: boolean;
  steps: DoctorStep[];
}

/** The names a cause or fix may mention: `<mailbox>`, `<sender>`, `<app>`, `<account>`, `<role>`, `<scope>`, … */
export type FindingNames = Partial<Record<'mailbox' | 'sender' | 'app' | 'account' | 'role' | 'scope' | 'user' | 'permission' | 'protocol', string>>;

function fill(text: string, names: FindingNames): string {
  return text.replace(/<(mailbox|sender|app|account|role|scope|user|permission|protocol)>/g, (whole, key: keyof FindingNames) => names[key] ?? whole);
}

export function passed(check: string, detail: string): DoctorStep {
  return { check, status: 'pass', detail };
}

export function skipped(check: string, detail: string): DoctorStep {
  return { check, status: 'skip', detail };
}

/** A failed step with the catalogue's cause and fix for `code`, names filled in. */
export function failed(check: string, code: ErrorCode, detail: string, names: FindingNames): DoctorStep {
  const entry: { message: string; cause?: string; fix?: string } = catalogue[code];
  return { check, status: 'fail', detail, code, cause: fill(entry.cause ?? entry.message, names), fix: fill(entry.fix ?? entry.message, names) };
}

/** The report as the CLI prints it: one line per step, cause and fix under a failure. */
export function formatReport(report: DoctorReport): string {
  const lines = [`${report.account} (${report.mailbox}, ${report.flow}): ${report.ok ? 'all checks pass' : 'needs fixing'}`];
  for (const step of report.steps) {
    const mark = step.status === 'pass' ? 'pass' : step.status === 'skip' ? 'skip' : 'FAIL';
    lines.push(`  ${mark}  ${step.check.padEnd(14)}  ${step.detail}`);
    if (step.cause) lines.push(`        cause: ${step.cause}`);
    if (step.fix) lines.push(`        fix:   ${step.fix}`);
  }
  return lines.join('\n');
}
