/**
 * `xoauth2-relay queue list|retry|drop`: looks at and changes the spool of a running (or stopped) daemon.
 * Works on the files only, no network: a change leaves a marker in the spool's changed/ folder, which the
 * daemon's index reads at its next view or rescan (a few seconds). Never runs spool recovery: that is the
 * daemon's alone (see spool-recovery.ts).
 *
 * `list` answers fast whatever the queue length. It shows the oldest 100 (`--limit`, `--all`) and says how
 * many more there are. Its first source is the summary the daemon keeps in the spool (spool-snapshot.ts:
 * counts and the oldest 100 of each folder, at most a second behind the daemon, removed by any CLI change);
 * without one (the daemon never ran, or the CLI just changed something) one directory read (names sort by
 * arrival; ~150 ms at 100,000 messages) and only the envelopes of the page it prints. `--all` reads every
 * envelope, a few files at a time. Asking the running daemon's admin API instead would need its address and a
 * login (admin.passwordHash), and would not work while it is stopped, when the queue is most often looked at.
 */
import { Spool } from '../smtp/spool/spool.js';
import type { SpooledEnvelope } from '../smtp/spool/envelope.js';
import { commandContext, type GlobalOptions } from './context.js';
import { exitCodes } from './exit-codes.js';

export type QueueAction = 'list' | 'retry' | 'drop';

export interface QueueOptions extends GlobalOptions {
  /** Print JSON (list) instead of lines. */
  json?: boolean;
  /** list: the dead letters instead of the queue; retry/drop --all: act on the dead letters. */
  dead?: boolean;
  /** retry: every queued (or, with --dead, every dead) message; drop: every dead message (needs --dead); list: every message. */
  all?: boolean;
  /** list: how many of the oldest messages to show (default 100). */
  limit?: string | number;
}

/** What `queue list` shows without --all or --limit. */
const LIST_PAGE = 100;

/** One row of `queue list` (also the `--json` shape). */
export interface QueueRow {
  id: string;
  status: SpooledEnvelope['state']['status'];
  account: string;
  device: string;
  from: string;
  rcpt: number;
  size: number;
  ageSeconds: number;
  attempts: number;
  nextAttemptAt: string;
  lastReply: string | null;
  lastReason: string | null;
}

/** Runs a queue action; resolves the exit code (0 ok, 1 no such message, 64 wrong arguments). */
export async function queueCommand(action: QueueAction, id: string | undefined, opts: QueueOptions): Promise<number> {
  const { loaded } = commandContext(opts);
  const spool = await Spool.open(loaded.config.stateDir, { create: false });
  switch (action) {
    case 'list':
      return listMessages(spool, opts);
    case 'retry':
      return retryMessages(spool, id, opts);
    case 'drop':
      return dropMessages(spool, id, opts);
    default:
      return usage(`unknown queue action ${JSON.stringify(action)}: use list, retry or drop`);
  }
}

async function listMessages(spool: Spool, opts: QueueOptions): Promise<number> {
  const nowMs = Date.now();
  const limit = opts.all ? Infinity : opts.limit === undefined ? LIST_PAGE : Number(opts.limit);
  if (!(limit >= 0) || (Number.isFinite(limit) && !Number.isInteger(limit))) return usage('queue list --limit takes a whole number');
  const page = await spool.firstPage(opts.dead ? 'dead' : 'queue', limit);
  const rows = page.envelopes.map((e) => queueRow(e, nowMs));
  const more = page.total - rows.length;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  } else if (rows.length === 0 && more === 0) {
    process.stdout.write(opts.dead ? 'no dead letters\n' : 'queue is empty\n');
  } else if (rows.length > 0) {
    process.stdout.write(`${rows.map(line).join('\n')}\n`);
  }
  // On standard error, so `--json` output stays one JSON document.
  if (more > 0) process.stderr.write(`${more} more ${opts.dead ? 'dead letters' : 'queued messages'} not listed (${page.total} in all${page.asOf ? `, as the running daemon saw them at ${page.asOf}` : ''}): use --limit <n> or --all\n`);
  return exitCodes.ok;
}

async function retryMessages(spool: Spool, id: string | undefined, opts: QueueOptions): Promise<number> {
  if ((id === undefined) === !opts.all) return usage('queue retry takes a message id or --all (with --dead: every dead letter)');
  const ids = id !== undefined ? [id] : (opts.dead ? await spool.listDead() : await spool.list()).map((e) => e.id);
  for (const each of ids) {
    const result = await spool.retry(each);
    if (result === null) return notFound(each);
    process.stdout.write(`${each} ${result === 'resurrected' ? 'back from dead/, queued' : 'queued'} for delivery now\n`);
  }
  if (ids.length === 0) process.stdout.write('nothing to retry\n');
  return exitCodes.ok;
}

async function dropMessages(spool: Spool, id: string | undefined, opts: QueueOptions): Promise<number> {
  if (opts.all && !opts.dead) return usage('queue drop --all only empties the dead letters: add --dead (queued mail is dropped one id at a time)');
  if ((id === undefined) === !opts.all) return usage('queue drop takes a message id, or --all --dead');
  const ids = id !== undefined ? [id] : (await spool.listDead()).map((e) => e.id);
  for (const each of ids) {
    if (!(await spool.drop(each))) return notFound(each);
    process.stdout.write(`${each} dropped\n`);
  }
  if (ids.length === 0) process.stdout.write('nothing to drop\n');
  return exitCodes.ok;
}

export function queueRow(e: SpooledEnvelope, nowMs: number): QueueRow {
  return {
    id: e.id,
    status: e.state.status,
    account: e.account,
    device: e.device,
    from: e.mailFrom,
    rcpt: e.rcptTo.length,
    size: e.size,
    ageSeconds: Math.max(0, Math.round((nowMs - Date.parse(e.receivedAt)) / 1000)),
    attempts: e.state.attempts,
    nextAttemptAt: e.state.nextAttemptAt,
    lastReply: e.state.lastReply,
    lastReason: e.state.lastReason,
  };
}

function line(r: QueueRow): string {
  const from = r.from === '' ? '<>' : r.from;
  const reason = r.lastReason ?? '-';
  return `${r.id}  ${r.status.padEnd(8)} ${r.account.padEnd(12)} ${from.padEnd(28)} ${String(r.rcpt).padStart(3)} rcpt ${humanSize(r.size).padStart(8)} ${humanAge(r.ageSeconds).padStart(7)} ${String(r.attempts).padStart(3)} tries  ${reason}`;
}

function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function humanAge(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${Math.floor((seconds % 86_400) / 3600)}h`;
}

function notFound(id: string): number {
  process.stderr.write(`xoauth2-relay: no message ${JSON.stringify(id)} in the queue or the dead letters (see \`xoauth2-relay queue list\`)\n`);
  return exitCodes.failed;
}

function usage(message: string): number {
  process.stderr.write(`xoauth2-relay: ${message}\n`);
  return exitCodes.usage;
}
