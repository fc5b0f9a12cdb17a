/**
 * The **Test** button: the admin page runs the account checks the daemon gives it (the same checks as
 * `xoauth2-relay test <account>`, src/checks/) and shows the outcome per protocol. The checks live with the
 * protocols; this file only keeps the last run per account for the page, one run at a time per account.
 */
import type { AccountTestReport } from '../checks/check-result.js';

export type { CheckResult, CheckedProtocol } from '../checks/check-result.js';

/** What `testAccount(account)` resolves: the `test` command's report. */
export type TestReport = AccountTestReport;

/** Runs the checks of one account (src/checks/account-check.ts `testAccount`, bound to the daemon's parts). */
export type AccountTester = (account: string) => Promise<TestReport>;

/** One press of the button: when it finished, and the report, or why the checks themselves could not run. */
export interface AccountRun<R> {
  at: string;
  report: R | null;
  error: string | null;
}

export type TestRun = AccountRun<TestReport>;

/**
 * The last run per account of one kind of check (Test, Doctor), one run at a time per account: a second press
 * while it runs shares the run.
 */
export class AccountRuns<R> {
  private readonly runs = new Map<string, AccountRun<R>>();
  private readonly running = new Map<string, Promise<AccountRun<R>>>();

  constructor(
    private readonly check: (account: string) => Promise<R>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs the checks; never rejects. */
  run(account: string): Promise<AccountRun<R>> {
    const current = this.running.get(account);
    if (current) return current;
    const run = this.check(account)
      .then((report): AccountRun<R> => ({ at: this.stamp(), report, error: null }))
      .catch((err: unknown): AccountRun<R> => ({ at: this.stamp(), report: null, error: err instanceof Error ? err.message : String(err) }))
      .then((done) => {
        this.runs.set(account, done);
        return done;
      })
      .finally(() => this.running.delete(account));
    this.running.set(account, run);
    return run;
  }

  isRunning(account: string): boolean {
    return this.running.has(account);
  }

  last(account: string): AccountRun<R> | null {
    return this.runs.get(account) ?? null;
  }

  private stamp(): string {
    return new Date(this.now()).toISOString();
  }
}

/** The Test button's runs. */
export class AccountTests extends AccountRuns<TestReport> {}
