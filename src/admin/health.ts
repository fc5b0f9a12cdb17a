/**
 * `/healthz` and `/readyz`. Health is "the process answers" (a container runtime restarts it otherwise);
 * readiness is "it can take mail now": the listeners are bound and the spool can be written.
 *
 * The spool check really writes: it creates, writes and deletes a file in each spool folder. Permission bits
 * alone would lie (root ignores them; a read-only remount, a full disk or a directory replaced by a file do
 * not show in a mode), and a device gets its 250 only after such a write succeeds.
 */
import { randomBytes } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreStatus } from '../auth/store/redis-connection.js';

export interface ReadinessReport {
  ready: boolean;
  checks: {
    listeners: { ok: boolean };
    spool: { ok: boolean; problem?: string };
    /** A shared token store (Redis) not reached since start: a load balancer should send devices elsewhere. */
    tokenStore: { ok: boolean; kind: string; reachable: boolean };
  };
}

/** A spool that does not answer within this is not ready (a hung NFS mount, a dying disk). */
const PROBE_TIMEOUT_MS = 3000;

/** The folders a commit writes to (spool/tmp, spool/queue) and where dead letters go (spool/dead). */
export function spoolFolders(spoolRoot: string): string[] {
  return ['tmp', 'queue', 'dead'].map((folder) => join(spoolRoot, folder));
}

/** Creates, writes and removes a probe file in `dir`; resolves null when that worked, else what failed. */
export async function probeWritable(dir: string): Promise<string | null> {
  // Starts with a dot: spool listings only take `<id>.json` / `<id>.eml`, so a leftover probe is never a message.
  const path = join(dir, `.readyz-${process.pid}-${randomBytes(4).toString('hex')}`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`${dir}: no answer within ${PROBE_TIMEOUT_MS} ms`), PROBE_TIMEOUT_MS);
  });
  const probe = (async () => {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile('ready?\n');
      } finally {
        await handle.close();
      }
      await unlink(path);
      return null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return `${dir} is not writable (${code})`;
    }
  })();
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Readiness now: `listenersBound()` from the daemon, and a write probe in every spool folder. */
export async function readiness(listenersBound: () => boolean, spoolRoot: string, store: () => StoreStatus): Promise<ReadinessReport> {
  const problems = (await Promise.all(spoolFolders(spoolRoot).map(probeWritable))).filter((p): p is string => p !== null);
  const listeners = { ok: safely(listenersBound) };
  const spool = problems.length === 0 ? { ok: true } : { ok: false, problem: problems.join('; ') };
  // Once reached, a later outage keeps the instance ready: it serves with the tokens it holds (docs/high-availability.md).
  const status = store();
  const tokenStore = { ok: status.everReachable, kind: status.kind, reachable: status.reachable };
  return { ready: listeners.ok && spool.ok && tokenStore.ok, checks: { listeners, spool, tokenStore } };
}

function safely(check: () => boolean): boolean {
  try {
    return check() === true;
  } catch {
    return false;
  }
}
