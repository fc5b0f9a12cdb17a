/**
 * SMTP acceptance and spool-view benchmark (issue 14): what a device waits for, next to a baseline measured in
 * the same run. "direct" is the same raw-socket load generator talking STARTTLS + XOAUTH2 to the sandbox
 * mailbox's submission server (an Exchange look-alike, no disk sync); "relay" is the device path (plain SMTP,
 * address-admitted device) into the relay, whose 250 waits for the spool's fsyncs.
 *
 *   npx tsx bench/spool.ts                       (defaults: 3 s per load, 25 MB, 100,000 queued)
 *   npx tsx bench/spool.ts --seconds 2 --queued 20000 --large-mb 10
 *
 * Figures: sessions/s at 1 and 32 clients (1 KB, a new connection per message) with p50/p99 of the 250 (from
 * the end of DATA to the 250) and errors; fsyncs per message; MB/s for one 25 MB message (DATA to 250); spool
 * view latency (admin status JSON, /metrics, `queue list`) at a large queue, and acceptance with that queue.
 * Other work on the machine skews them: they are indicative, compare the two columns of one run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { queueCommand } from '../src/cli/queue.js';
import type { Config } from '../src/config/schema.js';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { buildXOAuth2 } from '../src/sasl/xoauth2.js';
import { SANDBOX_MAILBOX } from '../src/sandbox/sandbox-config.js';
import { startSandboxWorld } from '../src/sandbox/sandbox-world.js';
import { newMessageId } from '../src/smtp/spool/message-id.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    'large-mb': { type: 'string', default: '25' },
    queued: { type: 'string', default: '100000' },
  },
});
const SECONDS = Number(values.seconds);
const LARGE_BYTES = Number(values['large-mb']) * 1024 * 1024;
const QUEUED = Number(values.queued);

// ── a raw SMTP client ───────────────────────────────────────────────────────────────────────────────────────
class Wire {
  private buffer = '';
  private waiting: ((line: string) => void) | null = null;
  private failed: ((err: Error) => void) | null = null;
  private readonly lines: string[] = [];

  constructor(private socket: Socket) {
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, nl).replace(/\r$/, '');
        this.buffer = this.buffer.slice(nl + 1);
        if (!/^\d{3} /.test(line)) continue; // continuation lines of a multi-line reply
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(line);
        } else this.lines.push(line);
      }
    });
    socket.on('error', (err) => this.failed?.(err));
    socket.on('close', () => this.failed?.(new Error(`connection closed (${this.buffer.slice(-120)})`)));
  }

  reply(): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
    });
  }

  async command(text: string, expect: number): Promise<string> {
    this.socket.write(`${text}\r\n`);
    return this.expect(expect);
  }

  async expect(code: number): Promise<string> {
    const line = await this.reply();
    if (!line.startsWith(String(code))) throw new Error(`expected ${code}, got ${line}`);
    return line;
  }

  write(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  async drain(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.once('drain', resolve));
  }

  async startTls(ca: string): Promise<void> {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('error');
    const secure = tlsConnect({ socket: this.socket, ca: [ca], servername: 'localhost' });
    secure.setNoDelay(true); // the final dot is a small write after the body: no Nagle wait for an ACK
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.on('error', () => undefined);
    this.socket.end();
  }
}

interface Target {
  port: number;
  /** STARTTLS + XOAUTH2 (the direct baseline); else plain, address-admitted. */
  xoauth2?: { token: string; ca: string };
}

/** One session, one message; resolves the ms from the end of DATA to the 250, and from the first body byte. */
async function session(target: Target, message: Buffer): Promise<{ ack: number; data: number }> {
  const socket = netConnect({ host: '127.0.0.1', port: target.port, noDelay: true });
  const wire = new Wire(socket);
  try {
    await wire.expect(220);
    await wire.command('EHLO bench.local', 250);
    if (target.xoauth2) {
      await wire.command('STARTTLS', 220);
      await wire.startTls(target.xoauth2.ca);
      await wire.command('EHLO bench.local', 250);
      await wire.command(`AUTH XOAUTH2 ${buildXOAuth2(SANDBOX_MAILBOX, target.xoauth2.token)}`, 235);
    }
    await wire.command(`MAIL FROM:<${SANDBOX_MAILBOX}>`, 250);
    await wire.command(`RCPT TO:<${SANDBOX_MAILBOX}>`, 250);
    await wire.command('DATA', 354);
    const t0 = performance.now();
    for (let at = 0; at < message.length; at += 1024 * 1024) {
      if (!wire.write(message.subarray(at, at + 1024 * 1024))) await wire.drain();
    }
    const t = performance.now();
    wire.write('.\r\n');
    await wire.expect(250);
    const done = performance.now();
    wire.write('QUIT\r\n');
    return { ack: done - t, data: done - t0 };
  } finally {
    wire.close();
  }
}

interface LoadResult {
  sessions: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  latencies: number[];
  dataMs: number[];
}

/** `clients` loops of new-connection sessions for `seconds`. */
async function load(target: Target, clients: number, seconds: number, message: Buffer): Promise<LoadResult> {
  const until = performance.now() + seconds * 1000;
  const result: LoadResult = { sessions: 0, errors: 0, firstError: null, seconds, latencies: [], dataMs: [] };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        try {
          const { ack, data } = await session(target, message);
          result.latencies.push(ack);
          result.dataMs.push(data);
          result.sessions += 1;
        } catch (err) {
          result.errors += 1;
          result.firstError ??= (err as Error).message;
        }
      }
    }),
  );
  result.seconds = (performance.now() - t0) / 1000;
  result.latencies.sort((a, b) => a - b);
  return result;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function message(bodyBytes: number, tag: string): Buffer {
  const body = Buffer.alloc(Math.ceil((bodyBytes * 3) / 4), 0x5a).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(`From: ${SANDBOX_MAILBOX}\r\nTo: ${SANDBOX_MAILBOX}\r\nSubject: bench ${tag}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${body}\r\n`);
}

// ── the table ───────────────────────────────────────────────────────────────────────────────────────────────
const rows: string[][] = [['figure', 'direct', 'relay', 'relay/direct', 'notes']];
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
function row(figure: string, direct: number | null, relay: number, notes: string, digits = 1): void {
  rows.push([figure, direct === null ? '-' : fmt(direct, digits), fmt(relay, digits), direct === null ? '-' : `${fmt(relay / direct, 2)}×`, notes]);
}
function printTable(): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const [i, r] of rows.entries()) {
    process.stdout.write(`${r.map((c, j) => (j === 0 || j === 4 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  ')}\n`);
    if (i === 0) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  }
}

function rssMb(): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
}

function fsyncsOf(daemon: Daemon): number | null {
  const counter = (daemon.spool as unknown as { fsyncs?: { total: number } }).fsyncs;
  return counter ? counter.total : null;
}

/** Writes `count` deferred messages straight into `stateDir`'s spool (setup only: not what is measured). */
async function fillSpool(stateDir: string, count: number): Promise<void> {
  const queue = join(stateDir, 'spool', 'queue');
  await mkdir(queue, { recursive: true, mode: 0o700 });
  const eml = message(1024, 'backlog');
  const later = new Date(Date.now() + 86_400_000).toISOString();
  const start = Date.now() - count;
  // Synchronous writes: ten times faster than 64 async writers through libuv's four threads, and only setup.
  for (let i = 0; i < count; i += 1) {
    const at = new Date(start + i).toISOString();
    const id = newMessageId(start + i);
    const envelope = {
      id, device: 'demo-scanner', account: 'scanner', mailFrom: SANDBOX_MAILBOX, rcptTo: [SANDBOX_MAILBOX], receivedAt: at, remoteAddress: '127.0.0.1', size: eml.length, smtpUtf8: false,
      state: { status: 'deferred', attempts: 1, nextAttemptAt: later, lastReply: '451 4.7.0 bench backlog', lastReason: null, lastCode: null, updatedAt: at, since: at },
    };
    writeFileSync(join(queue, `${id}.eml`), eml);
    writeFileSync(join(queue, `${id}.json`), `${JSON.stringify(envelope, null, 1)}\n`);
  }
}

/** p50 of `times` runs, or the first failure's message. */
async function timed(run: () => Promise<unknown>, times = 5): Promise<{ p50: number; first: number; failed: string | null }> {
  const ms: number[] = [];
  try {
    for (let i = 0; i < times; i += 1) {
      const t = performance.now();
      await run();
      ms.push(performance.now() - t);
    }
  } catch (err) {
    return { p50: NaN, first: NaN, failed: String((err as Error).message ?? err).replace(/\s+/g, ' ').slice(0, 90) };
  }
  return { p50: pct([...ms].sort((a, b) => a - b), 50), first: ms[0]!, failed: null };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-bench-spool-'));
  const logger = createLogger({ level: 'warn', destination: pino.destination({ dest: join(dir, 'relay.log'), sync: false }) });
  const world = await startSandboxWorld({ dir: join(dir, 'world'), smtpPort: 0, pop3Port: null, devicePassword: 'bench', logger });
  const base = world.loaded.config;
  // The per-address cap (20 by default) would refuse the 32-client load: lifted, like the pacing to Exchange.
  const config: Config = {
    ...base,
    smtp: { ...base.smtp, maxConnectionsPerAddress: 1000, delivery: { ...base.smtp.delivery, maxMessagesPerMinute: 1_000_000 } },
  };
  // The mailbox allows 3 sessions like Exchange; the direct baseline runs 32 clients.
  await fetch(`${world.mailbox.controlUrl}/mailboxes/${SANDBOX_MAILBOX}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ maxSmtpConnections: 64 }) });
  let daemon = await Daemon.start({ config, logger, deliveryRescanMs: 1000 });
  const prompt = await daemon.tokens.get('scanner').startDeviceCode();
  world.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await prompt.done;
  const token = (await daemon.tokens.accessTokenFor('scanner')).token;
  const ca = readFileSync(base.upstreamTls.extraCaFile!, 'utf8');
  const direct: Target = { port: world.mailbox.smtpPort, xoauth2: { token, ca } };
  const relay = (): Target => ({ port: daemon.ports.smtp[0]! });
  process.stdout.write(`xoauth2-relay spool benchmark: Node ${process.version}, ${SECONDS} s per load, loopback; shared CPU: indicative figures\n\n`);

  const small = message(1024, 'small');
  const note = (x: LoadResult) => `${x.errors} errors${x.firstError ? ` (${x.firstError.slice(0, 50)})` : ''}`;
  const directRuns = new Map<number, LoadResult>();
  for (const clients of [1, 32]) directRuns.set(clients, await load(direct, clients, SECONDS, small));
  // Delivering: the worker sends each message on to the sandbox mailbox meanwhile, in this same process (its
  // TLS and XOAUTH2 work, both sides, competes with acceptance here; in production the far side is Microsoft's).
  // Paused: the worker stopped, so the figures are the acceptance path alone and its fsyncs per commit.
  for (const mode of ['delivering', 'delivery paused'] as const) {
    if (mode === 'delivery paused') await daemon.delivery.stop(10_000);
    for (const clients of [1, 32]) {
      const d = directRuns.get(clients)!;
      const fsyncsBefore = fsyncsOf(daemon);
      const r = await load(relay(), clients, SECONDS, small);
      const fsyncsAfter = fsyncsOf(daemon);
      row(`SMTP sessions/s, 1 KB, ${clients} client${clients > 1 ? 's' : ''}, ${mode}`, d.sessions / d.seconds, r.sessions / r.seconds, `direct ${note(d)}; relay ${note(r)}`);
      row(`  250 latency p50, ms`, pct(d.latencies, 50), pct(r.latencies, 50), 'end of DATA → 250', 2);
      row(`  250 latency p99, ms`, pct(d.latencies, 99), pct(r.latencies, 99), '', 2);
      const what = mode === 'delivering' ? 'commit, and removal after delivery' : 'commit only';
      if (fsyncsBefore !== null && fsyncsAfter !== null) row(`  fsyncs per message`, null, (fsyncsAfter - fsyncsBefore) / Math.max(1, r.sessions), what, 2);
      else rows.push(['  fsyncs per message', '-', 'n/a', '-', 'this spool has no fsync counter (3 per commit by its code)']);
    }
  }

  const large = message(LARGE_BYTES, 'large');
  const mb = large.length / 1024 / 1024;
  const dl = await load(direct, 1, 0.001, large);
  const rl = await load(relay(), 1, 0.001, large);
  row(`SMTP ${values['large-mb']} MB message, MB/s device side`, mb / (dl.dataMs[0]! / 1000), mb / (rl.dataMs[0]! / 1000), `first body byte → 250 (delivery paused); 250 after the dot: direct ${fmt(dl.latencies[0]!)} / relay ${fmt(rl.latencies[0]!)} ms; errors ${dl.errors}/${rl.errors}`);

  // ── a large queue ─────────────────────────────────────────────────────────────────────────────────────────
  await daemon.stop(5000);
  await rm(join(config.stateDir, 'spool', 'queue'), { recursive: true, force: true }); // the paused runs' leftovers
  let t = performance.now();
  await fillSpool(config.stateDir, QUEUED);
  const fillS = (performance.now() - t) / 1000;
  t = performance.now();
  try {
    daemon = await Daemon.start({ config, logger, deliveryRescanMs: 1000 });
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause;
    rows.push([`daemon start with ${QUEUED} queued`, '-', 'failed', '-', `${(err as Error).message.slice(0, 60)}${cause ? `: ${String(cause.message ?? cause).slice(0, 60)}` : ''}`]);
    printTable();
    await world.close();
    await rm(dir, { recursive: true, force: true });
    return;
  }
  row(`daemon start with ${QUEUED} queued, s`, null, (performance.now() - t) / 1000, `spool written in ${fmt(fillS)} s (setup)`, 2);
  const admin = daemon.admin.url.replace(/\/$/, '');
  const first = await fetch(`${admin}/api/status`);
  const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0]!;
  await first.arrayBuffer();
  let waiting = -1;
  const status = await timed(async () => {
    const res = await fetch(`${admin}/api/status`, { headers: { cookie } });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 80)}`);
    const body = (await res.json()) as { spool?: { waiting: number } };
    waiting = body.spool?.waiting ?? -1;
  });
  row(`admin /api/status at ${QUEUED} queued, ms`, null, status.p50, status.failed ?? `p50 of 5 (first ${fmt(status.first)}); waiting reported: ${waiting}`, 1);
  const metrics = await timed(async () => {
    const res = await fetch(`${admin}/metrics`);
    const text = await res.text();
    if (res.status !== 200 || !text.includes('spool_messages')) throw new Error(`HTTP ${res.status}: ${text.slice(0, 80)}`);
    await new Promise((r) => setTimeout(r, 120)); // past the metrics' 100 ms snapshot reuse
  });
  row(`/metrics at ${QUEUED} queued, ms`, null, metrics.p50 - 120, metrics.failed ?? 'p50 of 5', 1);
  const write = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  let listed = 0;
  const queueList = await timed(async () => {
    listed = 0;
    process.stdout.write = ((chunk: string) => ((listed += chunk.split('\n').length - 1), true)) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await queueCommand('list', undefined, { config: world.configFile });
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
  }, 3);
  row(`queue list at ${QUEUED} queued, ms`, null, queueList.p50, queueList.failed ?? `p50 of 3, in-process (no CLI start-up); ${listed} lines printed`, 1);
  const listedFromDisk = await timed(async () => {
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await queueCommand('list', undefined, { config: world.configFile, limit: 101 } as Parameters<typeof queueCommand>[2]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
  }, 3);
  row(`queue list --limit 101 at ${QUEUED} queued, ms`, null, listedFromDisk.p50, listedFromDisk.failed ?? 'p50 of 3: a page beyond the daemon\'s summary, read from the directory', 1);
  rows.push([`relay process RSS with ${QUEUED} queued, MB`, '-', fmt(rssMb(), 0), '-', 'relay, sandbox mailbox and identity simulator in one process']);

  // With the worker running (it caches the queue and schedules per event, delivery-schedule.ts) and with it stopped.
  for (const mode of ['delivering', 'delivery paused'] as const) {
    if (mode === 'delivery paused') await daemon.delivery.stop(10_000);
    for (const clients of [1, 32]) {
      const r = await load(relay(), clients, Math.min(SECONDS, 2), small);
      row(`  250 p50 ms, ${clients} client${clients > 1 ? 's' : ''}, ${QUEUED} queued, ${mode}`, null, pct(r.latencies, 50), `p99 ${fmt(pct(r.latencies, 99), 2)} ms, ${fmt(r.sessions / r.seconds)} sessions/s, ${r.errors} errors`, 2);
    }
  }
  printTable();
  await daemon.stop(5000);
  await world.close();
  await rm(dir, { recursive: true, force: true });
}

await main();
