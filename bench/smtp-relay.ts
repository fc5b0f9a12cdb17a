/**
 * SMTP relay benchmark: devices → relay (spool, fsync) → delivery (STARTTLS + XOAUTH2) → sandbox mailbox, all on
 * loopback. Prints acceptance latency (what a scanner waits for its 250), end-to-end delivery time, throughput,
 * and memory; the baseline in the same run is direct XOAUTH2 submission to the same mailbox. Each device keeps
 * one connection for all its messages (bench/spool.ts measures a new connection per message).
 *
 *   npm run bench                 (defaults)
 *   npm run bench -- --small 400 --large 8 --large-mb 10 --devices 8
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { SANDBOX_MAILBOX } from '../src/sandbox/sandbox-config.js';
import { startSandboxWorld } from '../src/sandbox/sandbox-world.js';
import { readFileSync } from 'node:fs';

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '200' },
    large: { type: 'string', default: '6' },
    'large-mb': { type: 'string', default: '10' },
    devices: { type: 'string', default: '8' },
  },
});
const SMALL = Number(values.small);
const LARGE = Number(values.large);
const LARGE_BYTES = Number(values['large-mb']) * 1024 * 1024;
const DEVICES = Number(values.devices);

function message(i: number, bodyBytes: number): string {
  const body = Buffer.alloc(Math.ceil((bodyBytes * 3) / 4), i & 0xff).toString('base64').replace(/.{76}/g, '$&\r\n');
  // From the mailbox itself: the sandbox, like Exchange, refuses a From header the token's user may not send as.
  return `From: ${SANDBOX_MAILBOX}\r\nTo: ${SANDBOX_MAILBOX}\r\nSubject: bench ${i}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${body}\r\n`;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function rssMb(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
}

/** Sends the messages over `devices` parallel connections; returns per-message 250 latencies (ms). */
async function send(port: number, messages: string[], devices: number, auth?: { user: string; accessToken: string }, ca?: string): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    // One connection per device for all its messages (bench/spool.ts measures a session per message).
    const transport = auth
      ? nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, requireTLS: true, pool: true, maxConnections: 1, maxMessages: Infinity, tls: { ca: ca ? [ca] : undefined }, auth: { type: 'OAuth2', user: auth.user, accessToken: auth.accessToken } })
      : nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, pool: true, maxConnections: 1, maxMessages: Infinity });
    while (next < messages.length) {
      const raw = messages[next++]!;
      const t = performance.now();
      await transport.sendMail({ envelope: { from: auth ? auth.user : 'scan@printer.local', to: [SANDBOX_MAILBOX] }, raw });
      latencies.push(performance.now() - t);
    }
    transport.close();
  };
  await Promise.all(Array.from({ length: devices }, worker));
  return latencies.sort((a, b) => a - b);
}

async function waitForCount(count: () => Promise<number>, target: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await count()) < target) {
    if (Date.now() > until) throw new Error(`only ${await count()} of ${target} messages arrived in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function report(name: string, latencies: number[], bytes: number, ms: number, extra = ''): void {
  const mb = bytes / 1024 / 1024;
  process.stdout.write(
    `${name.padEnd(34)} ${String(latencies.length).padStart(5)} msgs  ${(latencies.length / (ms / 1000)).toFixed(1).padStart(7)} msg/s  ${(mb / (ms / 1000)).toFixed(1).padStart(6)} MB/s  ` +
      `250 after p50 ${percentile(latencies, 50).toFixed(1)} / p95 ${percentile(latencies, 95).toFixed(1)} / p99 ${percentile(latencies, 99).toFixed(1)} ms${extra}\n`,
  );
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-bench-'));
  const logger = createLogger({ level: 'warn', destination: pino.destination({ dest: join(dir, 'relay.log'), sync: false }) });
  const world = await startSandboxWorld({ dir: join(dir, 'world'), smtpPort: 0, pop3Port: null, devicePassword: 'bench', logger });
  const base = world.loaded.config;
  // Exchange's pacing (30/min) would make this a benchmark of the pacing: lift it, keep 3 connections.
  const config = { ...base, smtp: { ...base.smtp, delivery: { ...base.smtp.delivery, maxMessagesPerMinute: 1_000_000 } } };
  const daemon = await Daemon.start({ config, logger, deliveryRescanMs: 1000 });
  const prompt = await daemon.tokens.get('scanner').startDeviceCode();
  world.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await prompt.done;
  const token = await daemon.tokens.accessTokenFor('scanner');
  const ca = readFileSync(base.upstreamTls.extraCaFile!, 'utf8');
  const inbox = async () => (await world.mailbox.messages(SANDBOX_MAILBOX)).length;
  const relayPort = daemon.ports.smtp[0]!;
  process.stdout.write(`xoauth2-relay SMTP benchmark: ${SMALL} × ~10 KB and ${LARGE} × ${values['large-mb']} MB, ${DEVICES} device connections, loopback, Node ${process.version}\n`);
  process.stdout.write(`relay RSS at start ${rssMb().toFixed(0)} MB (bench process: relay, sandbox mailbox and identity simulator together)\n`);

  const loads = ([['small (10 KB)', SMALL, 10 * 1024], ['large', LARGE, LARGE_BYTES]] as const)
    .filter(([, count]) => count > 0)
    .map(([label, count, size]) => {
      const messages = Array.from({ length: count }, (_, i) => message(i, size));
      return { label, count, messages, bytes: messages.reduce((n, m) => n + m.length, 0) };
    });
  // Every direct baseline first: the relay's delivery keeps its authenticated connections open for a while after a
  // load (connection reuse), and they count against the mailbox's 3, as at Exchange.
  for (const { label, count, messages, bytes } of loads) {
    const have = await inbox();
    const t0 = performance.now();
    const direct = await send(world.mailbox.smtpPort, messages, Math.min(DEVICES, 3), { user: SANDBOX_MAILBOX, accessToken: token.token }, ca);
    await waitForCount(inbox, have + count, 600_000);
    report(`baseline: direct XOAUTH2, ${label}`, direct, bytes, performance.now() - t0, ' (3 connections, like Exchange allows)');
  }
  for (const { label, count, messages, bytes } of loads) {
    const have = await inbox();
    const rssBefore = rssMb();
    const t0 = performance.now();
    const accepted = await send(relayPort, messages, DEVICES);
    const acceptedMs = performance.now() - t0;
    await waitForCount(inbox, have + count, 600_000);
    const deliveredMs = performance.now() - t0;
    report(`relay: accepted, ${label}`, accepted, bytes, acceptedMs);
    report(`relay: delivered end to end, ${label}`, accepted, bytes, deliveredMs, `  (RSS ${rssBefore.toFixed(0)} → ${rssMb().toFixed(0)} MB)`);
  }
  await daemon.stop(5000);
  await world.close();
  await rm(dir, { recursive: true, force: true });
}

await main();
