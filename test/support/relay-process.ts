/**
 * The relay daemon as an operator runs it (`xoauth2-relay run`), in a child process: so a test can `kill -9`
 * it, restart it on the same state, and read its peak memory from /proc without the test's own buffers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface RelayProcess {
  child: ChildProcess;
  pid: number;
  ports: { smtp: number[]; imap: number[]; pop3: number[] };
  /** Every log line so far (JSON). */
  logText(): string;
  /** Resident memory now and at its peak (VmRSS, VmHWM), in bytes. */
  memory(): { rss: number; peak: number };
  /** Resolves with the parsed log line once one matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number>;
  /** SIGKILL (a crash at any moment) and wait for the process to be gone. */
  kill9(): Promise<void>;
}

export async function startRelay(configFile: string, env: NodeJS.ProcessEnv): Promise<RelayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'run', '--config', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    log += String(d);
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128))));

  const waitForLog = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new Error(`relay log never matched ${pattern}:\n${log.slice(-3000)}`));
      }, timeoutMs);
      const check = () => {
        const line = log.split('\n').find((l) => pattern.test(l));
        if (line) {
          clearTimeout(timer);
          remove();
          try {
            resolve(JSON.parse(line) as Record<string, unknown>);
          } catch {
            resolve({ line });
          }
        }
      };
      const remove = () => {
        const i = waiters.indexOf(check);
        if (i >= 0) waiters.splice(i, 1);
      };
      waiters.push(check);
      check();
      void exited.then(() => {
        if (waiters.includes(check)) {
          clearTimeout(timer);
          remove();
          reject(new Error(`relay exited before logging ${pattern}:\n${log.slice(-3000)}`));
        }
      });
    });

  const ready = await waitForLog(/"msg":"xoauth2-relay ready"/);
  const pid = child.pid!;
  return {
    child,
    pid,
    ports: ready.ports as RelayProcess['ports'],
    logText: () => log,
    memory() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
    waitForLog,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
