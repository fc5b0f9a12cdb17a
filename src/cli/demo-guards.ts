/**
 * What the demo checks before it writes anything: its state directory is new, empty, or one it made itself (a
 * marker file says so) and no other demo runs from it; and every fixed port it will listen on is free. Each
 * refusal says what is in the way and what to do, and nothing on disk has changed.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { portHolder, portIsFree } from './port-holder.js';

/** The file the demo leaves in its state directory: it may wipe a directory that holds it, and no other. */
export const DEMO_MARKER = '.xoauth2-relay-demo';

/** What a demo directory held before the marker existed: still the demo's own, so an earlier clone's is reused. */
const LEGACY_DEMO_ENTRIES = new Set(['config.yaml', 'sandbox-ca.pem', 'state', 'mailbox']);

export interface DemoMarker {
  pid: number;
  startedAt: string;
}

/** The marker's text for this process. */
export function demoMarkerText(): string {
  return `${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() } satisfies DemoMarker)}\n`;
}

/** Null when the demo may (re)use `dir`; otherwise the sentence that says why not. */
export async function stateDirProblem(dir: string): Promise<string | null> {
  const entries: string[] = await readdir(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
  if (entries.length === 0) return null;
  if (!entries.includes(DEMO_MARKER) && !entries.every((e) => LEGACY_DEMO_ENTRIES.has(e))) {
    return `--state-dir ${dir} is not empty and was not made by the demo (no ${DEMO_MARKER} in it): the demo wipes its state directory at start, so it refuses this one; name a new or empty directory`;
  }
  const marker = await readMarker(join(dir, DEMO_MARKER));
  if (marker && marker.pid !== process.pid && processIsAlive(marker.pid)) {
    return `another demo is running from ${dir} (pid ${marker.pid}, since ${marker.startedAt}): stop it with Ctrl-C where it runs (or kill ${marker.pid}), or give this one its own --state-dir`;
  }
  return null;
}

/** Null when every fixed port is free; otherwise one sentence per port in use, naming the holder when visible. */
export async function portsProblem(ports: Array<{ option: string; port: number }>): Promise<string | null> {
  const problems: string[] = [];
  for (const { option, port } of ports) {
    if (port === 0 || (await portIsFree(port))) continue;
    const holder = await portHolder(port);
    const who = holder ? `pid ${holder.pid} (${holder.shown})` : 'another program';
    const demo = holder && /(xoauth2-relay|cli\/main\.[jt]s)\S*\s.*\bdemo\b/.test(holder.command) ? ': another demo is running; stop it with Ctrl-C where it runs' : '';
    problems.push(`port ${port} (--${option}) on 127.0.0.1 is held by ${who}${demo}; or pass --${option} 0 for any free port`);
  }
  return problems.length === 0 ? null : problems.join('\n');
}

async function readMarker(path: string): Promise<DemoMarker | null> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<DemoMarker>;
    return typeof parsed.pid === 'number' ? { pid: parsed.pid, startedAt: String(parsed.startedAt ?? '?') } : null;
  } catch {
    return null;
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
