/**
 * One writer per key, and no pile-up: operations for a key run one after another, and an
 * operation that is still waiting when a newer one arrives is replaced by it. Its caller is then
 * answered when the newer one finishes, because what it asked for ("store this or something
 * newer") is true only then. MSAL saves the whole cache after every token call, so a burst of
 * saves for one account costs at most two writes, and the last call always wins.
 */
export class LatestWinsQueue {
  private readonly lanes = new Map<string, Lane>();

  /** Runs `operation` after those already running for `key`, unless a later call replaces it first. */
  submit(key: string, operation: () => Promise<void>): Promise<void> {
    const lane = this.laneFor(key);
    if (lane.waiting) {
      lane.waiting.operation = operation;
      return lane.waiting.done;
    }
    const waiting = newWaiting(operation);
    lane.waiting = waiting;
    lane.queued += 1;
    lane.tail = lane.tail.then(async () => {
      // From here on a new call queues behind this one instead of replacing it.
      lane.waiting = undefined;
      try {
        await waiting.operation();
        waiting.resolve();
      } catch (err) {
        waiting.reject(err);
      } finally {
        lane.queued -= 1;
        if (lane.queued === 0) this.lanes.delete(key);
      }
    });
    return waiting.done;
  }

  /** Resolves once every operation submitted for `key` so far has finished (whatever its outcome). */
  settled(key: string): Promise<void> {
    return this.lanes.get(key)?.tail ?? Promise.resolve();
  }

  private laneFor(key: string): Lane {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { tail: Promise.resolve(), waiting: undefined, queued: 0 };
      this.lanes.set(key, lane);
    }
    return lane;
  }
}

interface Lane {
  /** Settles after the last queued operation; never rejects. */
  tail: Promise<void>;
  /** The operation that has not started yet, if any. */
  waiting: Waiting | undefined;
  queued: number;
}

interface Waiting {
  operation: () => Promise<void>;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function newWaiting(operation: () => Promise<void>): Waiting {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { operation, done, resolve, reject };
}
