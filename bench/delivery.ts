/**
 * Delivery drain benchmark: a backlog of small messages already in the spool, drained by the relay's delivery
 * worker (STARTTLS + XOAUTH2, ≤ 3 connections per mailbox, pacing lifted) into the sandbox mailbox on loopback.
 * The baseline in the same run is nodemailer's pool sending the same messages straight to that mailbox over ≤ 3
 * reused authenticated connections: the practical limit of the upstream.
 *
 * A delivery path that opens a connection per message pays a TCP + TLS handshake, STARTTLS, a token and AUTH on
 * every message (and, before the relay and the sandbox greeted promptly, smtp-server's 100 ms early-talker wait);
 * reused connections pay them once per connection.
 *
 *   npx tsx bench/delivery.ts                  (2,000 × 1 KB)
 *   npx tsx bench/delivery.ts --messages 500 --size 1024
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { SANDBOX_MAILBOX } from '../src/sandbox/sandbox-config.js';
import { startSandboxWorld } from '../src/sandbox/sandbox-world.js';
import { Spool } from '../src/smtp/spool/index.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    size: { type: 'string', default: '1024' },
  },
});
const COUNT = Number(values.messages);
const SIZE = Number(values.size);

function message(i: number): Buffer {
  const head = `From: ${SANDBOX_MAILBOX}\r\nTo: ${SANDBOX_MAILBOX}\r\nSubject: drain ${i}\r\nMessage-ID: <drain-${i}-${Date.now()}@bench>\r\n\r\n`;
  const body = 'x'.repeat(Math.max(0, SIZE - head.length - 2)).replace(/.{76}/g, '$&\r\n');
  return Buffer.from(`${head}${body}\r\n`);
}

function rssMb(): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
}

/** SMTP connections and XOAUTH2 logins the sandbox mailbox saw, read from its log (info level). */
async function upstreamCounts(logFile: string): Promise<{ auths: number; stored: number }> {
  const lines = (await readFile(logFile, 'utf8').catch(() => '')).split('\n');
  const smtp = lines.filter((l) => l.includes('"protocol":"smtp"'));
  return { auths: smtp.filter((l) => l.includes('"msg":"authenticated"')).length, stored: smtp.filter((l) => l.includes('"msg":"message stored"')).length };
}

function row(name: string, count: number, ms: number, extra: string): void {
  process.stdout.write(`| ${name.padEnd(46)} | ${String(count).padStart(6)} | ${(ms / 1000).toFixed(2).padStart(7)} | ${(count / (ms / 1000)).toFixed(1).padStart(8)} | ${extra}\n`);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-bench-delivery-'));
  const worldLog = join(dir, 'world.log');
  const worldLogger = createLogger({ level: 'info', destination: pino.destination({ dest: worldLog, sync: false }) });
  const logger = createLogger({ level: 'warn', destination: pino.destination({ dest: join(dir, 'relay.log'), sync: false }) });
  const world = await startSandboxWorld({ dir: join(dir, 'world'), smtpPort: 0, pop3Port: null, devicePassword: 'bench', logger: worldLogger });
  const base = world.loaded.config;
  // Exchange's pacing (30/min) would make this a benchmark of the pacing: lift it, keep 3 connections per mailbox.
  const config = { ...base, smtp: { ...base.smtp, delivery: { ...base.smtp.delivery, maxMessagesPerMinute: 1_000_000 } } };
  const messages = Array.from({ length: COUNT }, (_, i) => message(i));
  const ca = readFileSync(base.upstreamTls.extraCaFile!, 'utf8');

  // Sign in once; the token store keeps the refresh token for the daemon that drains.
  const signIn = await Daemon.start({ config, logger });
  const prompt = await signIn.tokens.get('scanner').startDeviceCode();
  world.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await prompt.done;
  const token = await signIn.tokens.accessTokenFor('scanner');
  await signIn.stop(2000);

  process.stdout.write(`xoauth2-relay delivery drain: ${COUNT} × ${SIZE} B queued for one mailbox, pacing lifted, ≤ ${config.smtp.delivery.maxConnectionsPerMailbox} connections, loopback, Node ${process.version}\n`);
  process.stdout.write(`| ${'path'.padEnd(46)} | ${'msgs'.padStart(6)} | ${'s'.padStart(7)} | ${'msg/s'.padStart(8)} | upstream\n`);

  // Baseline: nodemailer's pool, straight to the sandbox mailbox.
  let before = await upstreamCounts(worldLog);
  let t0 = performance.now();
  const direct = nodemailer.createTransport({
    host: '127.0.0.1', port: world.mailbox.smtpPort, secure: false, requireTLS: true,
    pool: true, maxConnections: config.smtp.delivery.maxConnectionsPerMailbox, maxMessages: Infinity,
    tls: { ca: [ca] }, auth: { type: 'OAuth2', user: SANDBOX_MAILBOX, accessToken: token.token },
  });
  await Promise.all(messages.map((raw) => direct.sendMail({ envelope: { from: SANDBOX_MAILBOX, to: [SANDBOX_MAILBOX] }, raw })));
  const directMs = performance.now() - t0;
  direct.close();
  await new Promise((r) => setTimeout(r, 300)); // the sandbox's log is written asynchronously
  let after = await upstreamCounts(worldLog);
  row('direct: nodemailer pool, 3 reused connections', COUNT, directMs, `${after.auths - before.auths} AUTH, ${after.stored - before.stored} stored`);

  // The backlog: committed to the spool while no delivery worker runs.
  const spool = await Spool.open(config.stateDir, { create: true });
  for (let i = 0; i < COUNT; i += 32) {
    await Promise.all(
      messages.slice(i, i + 32).map((bytes) =>
        spool.commit({ device: 'bench', account: 'scanner', mailFrom: SANDBOX_MAILBOX, rcptTo: [SANDBOX_MAILBOX], remoteAddress: '127.0.0.1', smtpUtf8: false }, Readable.from([bytes])),
      ),
    );
  }

  before = await upstreamCounts(worldLog);
  const rssBefore = rssMb();
  t0 = performance.now();
  const daemon = await Daemon.start({ config, logger, deliveryRescanMs: 1000 });
  const startedMs = performance.now() - t0;
  let delivered = 0;
  let failed = 0;
  let firstAt = 0;
  let lastAt = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`drain: ${delivered} of ${COUNT} after 170 s (${failed} deferred/dead)`)), 170_000);
    const done = () => {
      if (delivered + failed < COUNT) return;
      clearTimeout(timer);
      resolve();
    };
    daemon.delivery.on('delivered', () => {
      lastAt = performance.now();
      if (delivered++ === 0) firstAt = lastAt;
      done();
    });
    for (const name of ['deferred', 'dead'] as const) daemon.delivery.on(name, () => void failed++);
  });
  const drainMs = lastAt - t0;
  await daemon.stop(5000);
  await new Promise((r) => setTimeout(r, 300));
  after = await upstreamCounts(worldLog);
  row('relay: queued backlog drained by delivery', delivered, drainMs, `${after.auths - before.auths} AUTH, ${after.stored - before.stored} stored, ${failed} deferred/dead`);
  process.stdout.write(
    `relay/direct ${(directMs / drainMs).toFixed(2)}; daemon start ${startedMs.toFixed(0)} ms, first delivery at ${(firstAt - t0).toFixed(0)} ms, ` +
      `first→last ${(COUNT / ((lastAt - firstAt) / 1000)).toFixed(1)} msg/s; RSS ${rssBefore.toFixed(0)} → ${rssMb().toFixed(0)} MB (relay and sandbox in one process)\n`,
  );
  await world.close();
  await rm(dir, { recursive: true, force: true });
}

await main();
