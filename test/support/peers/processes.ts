/**
 * Process plumbing for the daemons under test: run a start-up command with its output in a file (never a pipe:
 * Dovecot's daemonised master keeps the caller's stderr open, which would hold a test runner's pipe forever),
 * wait for ports, and find every process of a daemon through its session id (both masters call setsid()).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Runs `file args` to completion with stdout and stderr appended to `logFile`; rejects on a non-zero exit. */
export async function runLogged(file: string, args: string[], logFile: string, timeoutMs = 30_000): Promise<void> {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(file, args, { stdio: ['ignore', fd, fd], env: { ...process.env, LC_ALL: 'C' } });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${file} ${args.join(' ')} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (exitCode, signal) => {
        clearTimeout(timer);
        resolve(signal ? -1 : exitCode);
      });
    });
    if (code !== 0) {
      const output = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-15).join('\n');
      throw new Error(`${file} ${args.join(' ')} exited with ${code}; ${logFile} ends with:\n${output}`);
    }
  } finally {
    closeSync(fd);
  }
}

/** Resolves true when a TCP connection to 127.0.0.1:port is accepted, false when it is refused or fails. */
export function portAccepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until every port accepts connections (or throws after `timeoutMs`). */
export async function waitForPorts(ports: number[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await portAccepts(port))) {
      if (Date.now() > deadline) throw new Error(`127.0.0.1:${port} did not accept connections within ${timeoutMs} ms`);
      await sleep(25);
    }
  }
}

/** The pid written in a daemon's pid file (Postfix pads it with spaces), or undefined. */
export function readPidFile(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for a daemon's pid file: a forking daemon may write it after the starting process has exited. */
export async function waitForPidFile(path: string, timeoutMs = 10_000): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = readPidFile(path);
    if (pid !== undefined || Date.now() > deadline) return pid;
    await sleep(20);
  }
}

/**
 * Pids of the processes whose session id is `sid` (read from /proc, so no procps needed). Zombies are left out
 * unless asked for: a daemon's last children (Dovecot's log process) exit after their master and are reparented
 * to pid 1, which reaps them when it gets round to it.
 */
export function sessionPids(sid: number, includeZombies = false): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if ((includeZombies || fields[0] !== 'Z') && Number(fields[3]) === sid) pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}

/** Signals each pid (ignoring ones already gone). Only ever called with pids of daemons this harness started. */
export function signalPids(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Waits until no process of session `sid` is left; returns the pids still there after `timeoutMs`. */
export async function waitForSessionEnd(sid: number, timeoutMs: number, includeZombies = false): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = sessionPids(sid, includeZombies);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(25);
    left = sessionPids(sid, includeZombies); // re-read: a child may have been forked after the stop request
  }
  return left;
}

/**
 * Stops a daemon whose master leads session `sid`: runs `stopCommand` (falling back to SIGTERM to the master),
 * waits for the whole session to end, and SIGKILLs whatever is left after 10 s.
 */
export async function endSession(sid: number, stopCommand: () => Promise<void>): Promise<void> {
  if (sessionPids(sid).length === 0) return;
  await stopCommand().catch(() => signalPids([sid], 'SIGTERM'));
  const left = await waitForSessionEnd(sid, 10_000);
  if (left.length > 0) {
    signalPids(left, 'SIGKILL');
    const stuck = await waitForSessionEnd(sid, 2_000);
    if (stuck.length > 0) throw new Error(`processes ${stuck.join(', ')} survived SIGKILL`);
  }
  // Best effort: give pid 1 a moment to reap the zombies, so that `pgrep -s` finds nothing afterwards
  // (an init that reaps at once, like systemd, costs nothing here; one that polls costs up to this long).
  await waitForSessionEnd(sid, 2_000, true);
}
