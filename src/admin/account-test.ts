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
export interface TestRun {
  at: string;
  report: TestReport | null;
  error: string | null;
}

export class AccountTests {
  private readonly runs = new Map<string, TestRun>();
  private readonly running = new Map<string, Promise<TestRun>>();

  constructor(
    private readonly tester: AccountTester,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs the checks (a second press while they run shares the run); never rejects. */
  run(account: string): Promise<TestRun> {
    const current = this.running.get(account);
    if (current) return current;
    const run = this.tester(account)
      .then((report): TestRun => ({ at: this.stamp(), report, error: null }))
      .catch((err: unknown): TestRun => ({ at: this.stamp(), report: null, error: err instanceof Error ? err.message : String(err) }))
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

  last(account: string): TestRun | null {
    return this.runs.get(account) ?? null;
  }

  private stamp(): string {
    return new Date(this.now()).toISOString();
  }
}
