/**
 * Property-based fuzzing with fast-check, one shape for every target so the same property runs bounded inside
 * `npm test` (a couple of seconds per target) and long under `npm run fuzz` (inputs per second, totals, and the
 * seed and path of any failure, to replay with FUZZ_SEED / FUZZ_PATH).
 */
import fc from 'fast-check';

/** What a target builds once per run: an input generator, the property, and the checks around it. */
export interface FuzzWorld<T> {
  arbitrary: fc.Arbitrary<T>;
  /** Throws when the property does not hold for `input`. */
  check(input: T): Promise<void> | void;
  /** After all inputs: a legitimate client still works (throws otherwise). */
  afterwards?(): Promise<void>;
  stop(): Promise<void>;
}

export interface FuzzTarget<T = unknown> {
  name: string;
  setup(): Promise<FuzzWorld<T>>;
}

export interface FuzzBudget {
  timeLimitMs: number;
  maxRuns: number;
  seed?: number;
  /** fast-check's replay path of a failure (with its seed). */
  path?: string;
}

export interface FuzzReport {
  name: string;
  inputs: number;
  seconds: number;
  perSecond: number;
  failed: boolean;
  seed: number;
  /** fast-check's report: counterexample, seed and path. */
  report: string;
}

/** What `npm test` spends per target. */
export const boundedBudget: FuzzBudget = { timeLimitMs: 2500, maxRuns: 3000 };

/** Any rejection the runtime saw during a run: a fault that escaped every handler fails the property. */
const escaped: unknown[] = [];
const onEscaped = (err: unknown): void => void escaped.push(err);

/** Runs one target within the budget; never throws for a property failure (see `failed` and `report`). */
export async function runFuzz<T>(target: FuzzTarget<T>, budget: FuzzBudget): Promise<FuzzReport> {
  const world = await target.setup();
  process.on('unhandledRejection', onEscaped);
  process.on('uncaughtException', onEscaped);
  const started = performance.now();
  try {
    const property = fc.asyncProperty(world.arbitrary, async (input) => {
      await world.check(input);
      if (escaped.length > 0) throw new Error(`a fault escaped its handler: ${String(escaped.splice(0)[0])}`);
    });
    const details = await fc.check(property, {
      numRuns: budget.maxRuns,
      interruptAfterTimeLimit: budget.timeLimitMs,
      markInterruptAsFailure: false,
      ...(budget.seed !== undefined ? { seed: budget.seed } : {}),
      ...(budget.path !== undefined ? { path: budget.path } : {}),
    });
    const seconds = (performance.now() - started) / 1000;
    let failed = details.failed;
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance ?? '');
    let report = failed ? `${fc.defaultReportMessage(details) ?? 'failed'}\n${cause}` : '';
    if (!failed && world.afterwards) {
      try {
        await world.afterwards();
      } catch (err) {
        failed = true;
        report = `a legitimate client failed after the run (seed ${details.seed}): ${err instanceof Error ? err.stack : String(err)}`;
      }
    }
    return { name: target.name, inputs: details.numRuns, seconds, perSecond: details.numRuns / seconds, failed, seed: details.seed, report };
  } finally {
    process.off('unhandledRejection', onEscaped);
    process.off('uncaughtException', onEscaped);
    await world.stop();
  }
}

/** One line for the runner output (`# …` shows in the test report). */
export function describeReport(r: FuzzReport): string {
  return `fuzz ${r.name}: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${r.perSecond.toFixed(0)}/s), seed ${r.seed}${r.failed ? ', FAILED' : ''}`;
}
