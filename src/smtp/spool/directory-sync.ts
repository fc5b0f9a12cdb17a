/**
 * Group commit for directory fsyncs. Each commit needs an fsync of its directory that STARTED after its own
 * rename (an fsync already running may have read the directory before the rename and proves nothing for it).
 * So a caller arriving while an fsync of the same directory runs joins the next one, which starts as soon as
 * the running one ends; every caller arriving meanwhile joins that same next fsync. Under load, k concurrent
 * commits cost about one directory fsync between them instead of k; alone, a commit waits for nothing extra.
 */
import { fsyncDirectory } from '../../auth/store/durable-file.js';

/** Counts the fsync(2) calls the spool makes (the bench prints fsyncs per message). */
export class FsyncCounter {
  files = 0;
  directories = 0;

  get total(): number {
    return this.files + this.directories;
  }
}

interface DirectoryState {
  /** The fsync in progress. */
  running: Promise<void> | null;
  /** The fsync that starts when `running` ends, shared by everyone who asked meanwhile. */
  next: Promise<void> | null;
}

export class DirectorySync {
  private readonly dirs = new Map<string, DirectoryState>();

  constructor(
    private readonly counter: FsyncCounter,
    private readonly fsync: (dir: string) => Promise<void> = fsyncDirectory,
  ) {}

  /** Resolves once an fsync of `dir` that started after this call has finished. */
  sync(dir: string): Promise<void> {
    let state = this.dirs.get(dir);
    if (!state) {
      state = { running: null, next: null };
      this.dirs.set(dir, state);
    }
    const running = state.running;
    if (!running) return this.start(dir, state);
    if (state.next) return state.next;
    const s = state;
    // Runs whether the current fsync worked or not: its failure belongs to its own callers.
    const next = running.then(
      () => this.startQueued(dir, s),
      () => this.startQueued(dir, s),
    );
    s.next = next;
    return next;
  }

  private startQueued(dir: string, state: DirectoryState): Promise<void> {
    state.next = null;
    return this.start(dir, state);
  }

  private start(dir: string, state: DirectoryState): Promise<void> {
    this.counter.directories += 1;
    const run = this.fsync(dir).finally(() => {
      if (state.running === run) state.running = null;
      if (!state.running && !state.next) this.dirs.delete(dir);
    });
    state.running = run;
    return run;
  }
}
