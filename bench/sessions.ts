/**
 * IMAP/POP3 proxy benchmark: login latency, 25 MB transfer rates and idle sessions held, each next to a direct
 * baseline measured in the same run. Three processes, all on loopback:
 *   - this one: the load generator and the sandbox identity simulator (the relay signs in through it);
 *   - bench/support/fake-upstream.ts: a minimal fast IMAPS/POP3S with XOAUTH2 and IDLE (the sandbox mailbox has
 *     no IDLE and caps connections at 100);
 *   - bench/support/relay-daemon.ts: the real Daemon, in a child so its RSS and descriptor limit are its own.
 * "direct" is this process talking implicit TLS + XOAUTH2 straight to the fake upstream: the practical limit.
 * The relay runs twice: with `upstreamTls.extraCaFile` (how tests and this bench trust the fake upstream), and
 * without it, the production path (the CA then comes from NODE_EXTRA_CA_CERTS, like a system root).
 *
 *   npx tsx bench/sessions.ts [--logins 200] [--mb 25] [--held 1000,5000,10000] [--skip-no-extra-ca]
 *
 * The held-session memory has its own baseline: bench/support/tls-holder.ts, a process that only holds idle TLS
 * client connections to the same upstream (what Node and OpenSSL cost for a session's upstream half).
 *
 * A held session costs the relay two descriptors (device and upstream); the children are started with their
 * descriptor limit raised to the hard limit, and the largest step is cut to what that limit allows.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Config } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { createPki } from '../src/sandbox/pki.js';
import { SANDBOX_MAILBOX } from '../src/sandbox/sandbox-config.js';
import { startSandboxWorld } from '../src/sandbox/sandbox-world.js';
import { Wire } from './support/wire.js';

const { values } = parseArgs({
  options: {
    logins: { type: 'string', default: '200' },
    mb: { type: 'string', default: '25' },
    held: { type: 'string', default: '1000,5000,10000' },
    'skip-no-extra-ca': { type: 'boolean', default: false },
  },
});
const LOGINS = Number(values.logins);
const MESSAGE_BYTES = Number(values.mb) * 1024 * 1024;
const HELD_STEPS = values.held.split(',').map(Number).filter((n) => n > 0);
const PASSWORD = 'bench';
const here = fileURLToPath(new URL('.', import.meta.url));
let caPemForBaseline = '';
const FAKE_TOKEN = 'eyJ'.padEnd(1500, 'x'); // the fake upstream checks the XOAUTH2 shape, not the token

const hardLimit = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024;
const softLimit = Number(execFileSync('sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim()) || 1024;

/** Forks a TypeScript child with its descriptor limit raised to the hard limit (through a shell's ulimit). */
function forkTs(script: string, env: NodeJS.ProcessEnv = process.env, nodeFlags = ''): ChildProcess {
  const command = `ulimit -n ${hardLimit} 2>/dev/null; exec "${process.execPath}" ${nodeFlags} --import tsx "${join(here, script)}"`;
  return spawn('sh', ['-c', command], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
}

async function reply<T>(child: ChildProcess, type?: string): Promise<T> {
  for (;;) {
    const [message] = (await once(child, 'message')) as [T & { type?: string }];
    if (!type || message.type === type) return message;
  }
}

function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

function p50(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

const xoauth2 = (token: string): string => Buffer.from(`user=${SANDBOX_MAILBOX}\x01auth=Bearer ${token}\x01\x01`).toString('base64');

interface Ports {
  relayImap: number;
  relayPop3: number;
  upImap: number;
  upPop3: number;
}

async function relayImapLogin(port: number): Promise<Wire> {
  const wire = await Wire.tcp(port);
  await wire.until(/^\* OK/);
  wire.send(`a LOGIN mfp ${PASSWORD}`);
  const line = await wire.until(/^a /);
  if (!line.startsWith('a OK')) throw new Error(`relay IMAP login: ${line}`);
  return wire;
}

async function directImapLogin(port: number, ctx: SecureContext): Promise<Wire> {
  const wire = await Wire.tls(port, ctx);
  await wire.until(/^\* OK/);
  wire.send(`a AUTHENTICATE XOAUTH2 ${xoauth2(FAKE_TOKEN)}`);
  const line = await wire.until(/^a /);
  if (!line.startsWith('a OK')) throw new Error(`direct IMAP login: ${line}`);
  return wire;
}

async function relayPop3Login(port: number): Promise<Wire> {
  const wire = await Wire.tcp(port);
  await wire.until(/^\+OK/);
  wire.send('USER mfp');
  await wire.until(/^[+-]/);
  wire.send(`PASS ${PASSWORD}`);
  const line = await wire.until(/^[+-]/);
  if (!line.startsWith('+OK')) throw new Error(`relay POP3 login: ${line}`);
  return wire;
}

async function directPop3Login(port: number, ctx: SecureContext): Promise<Wire> {
  const wire = await Wire.tls(port, ctx);
  await wire.until(/^\+OK/);
  wire.send('AUTH XOAUTH2');
  await wire.until(/^\+/);
  wire.send(xoauth2(FAKE_TOKEN));
  const line = await wire.until(/^[+-]/);
  if (!line.startsWith('+OK')) throw new Error(`direct POP3 login: ${line}`);
  return wire;
}

/** Login latency p50 (connect to logged in), relay and direct interleaved so both see the same machine load. */
async function loginLatency(relay: () => Promise<Wire>, direct: () => Promise<Wire>, quit: string): Promise<{ relay: number; direct: number }> {
  const times = { relay: [] as number[], direct: [] as number[] };
  for (let i = 0; i < LOGINS; i++) {
    for (const [key, login] of [['direct', direct], ['relay', relay]] as const) {
      const t0 = performance.now();
      const wire = await login();
      times[key].push(performance.now() - t0);
      wire.send(quit);
      wire.close();
    }
  }
  return { relay: p50(times.relay), direct: p50(times.direct) };
}

async function imapFetch(wire: Wire): Promise<number> {
  wire.send('s SELECT INBOX');
  await wire.until(/^s OK/);
  const t0 = performance.now();
  wire.send('f FETCH 1 BODY[]');
  const head = await wire.until(/FETCH/);
  const size = Number(/\{(\d+)\}$/.exec(head)?.[1]);
  await wire.skip(size);
  await wire.until(/^f OK/);
  return size / 1024 / 1024 / ((performance.now() - t0) / 1000);
}

async function pop3Retr(wire: Wire): Promise<number> {
  const t0 = performance.now();
  wire.send('RETR 1');
  await wire.until(/^\+OK/);
  const bytes = await wire.skipThrough(Buffer.from('\r\n.\r\n'));
  return bytes / 1024 / 1024 / ((performance.now() - t0) / 1000);
}

/** CPU time (user + system, ms) a process has used, from /proc (10 ms resolution). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/**
 * MB/s, median of 3, relay and direct interleaved; with the relay's pid, also the relay's CPU milliseconds per
 * transfer (median): what the splice costs, apart from what the three processes sharing two cores cost each other.
 */
async function transfer(relay: () => Promise<Wire>, direct: () => Promise<Wire>, run: (w: Wire) => Promise<number>, relayPid?: number): Promise<{ relay: number; direct: number; relayCpuMs: number }> {
  const rates = { relay: [] as number[], direct: [] as number[] };
  const cpu: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (const [key, login] of [['direct', direct], ['relay', relay]] as const) {
      const wire = await login();
      const before = key === 'relay' && relayPid ? cpuMsOf(relayPid) : 0;
      rates[key].push(await run(wire));
      if (key === 'relay' && relayPid) cpu.push(cpuMsOf(relayPid) - before);
      wire.close();
    }
  }
  return { relay: p50(rates.relay), direct: p50(rates.direct), relayCpuMs: cpu.length > 0 ? p50(cpu) : NaN };
}

interface HeldStep {
  target: number;
  held: number;
  connectSeconds: number;
  loginSeconds: number;
  busyReplies: number;
  failed: string;
  rssMb: number;
  kbPerSession: number;
  newLoginMs: number;
}

/** Runs `work` with a deadline; on time-out counts "no reply at <stage>" and closes the wire. */
async function staged<T>(counts: Record<string, number>, deadline: number, work: (at: (stage: string) => void, hold: (w: Wire) => void) => Promise<T>): Promise<T | null> {
  let stage = 'connect';
  let wire: Wire | null = null;
  let timedOut = false;
  const bump = (key: string): void => void (counts[key] = (counts[key] ?? 0) + 1);
  const timer = setTimeout(() => {
    timedOut = true;
    bump(`no reply at ${stage}`);
    wire?.close();
  }, Math.max(0, deadline - Date.now()));
  try {
    return await work((s) => (stage = s), (w) => (wire = w));
  } catch {
    if (!timedOut) bump(`closed at ${stage}`);
    (wire as Wire | null)?.close();
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Connect and read the greeting. */
function connectOne(port: number, counts: Record<string, number>, deadline: number): Promise<Wire | null> {
  return staged(counts, deadline, async (at, hold) => {
    const wire = await Wire.tcp(port);
    hold(wire);
    at('greeting');
    await wire.until(/^\* OK/);
    return wire;
  });
}

/** LOGIN (again after a "try again" reply), then IDLE. */
function loginAndIdle(wire: Wire, counts: Record<string, number>, deadline: number): Promise<Wire | null> {
  return staged(counts, deadline, async (at, hold) => {
    hold(wire);
    for (;;) {
      at('login');
      wire.send(`a LOGIN mfp ${PASSWORD}`);
      const line = await wire.until(/^(a |\* BYE)/);
      if (line.startsWith('a OK')) break;
      if (line.startsWith('* BYE') || !/UNAVAILABLE/.test(line)) throw new Error(line);
      counts.busy = (counts.busy ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000)); // a device retries after a second or two
    }
    at('idle');
    wire.send('b IDLE');
    await wire.until(/^\+ /);
    return wire;
  });
}

async function heldSessions(ports: Ports, relayPid: number, gc: () => Promise<NodeJS.MemoryUsage>, snapshot: (file: string) => Promise<void>): Promise<HeldStep[]> {
  const maxHeld = Math.floor((hardLimit - 200) / 2);
  const generatorMax = softLimit - 200;
  const baseMemory = await gc();
  const baseKb = rssKb(relayPid);
  const held: Wire[] = [];
  const steps: HeldStep[] = [];
  for (const wanted of HELD_STEPS) {
    const target = Math.min(wanted, maxHeld, generatorMax);
    const counts: Record<string, number> = {};
    const t0 = performance.now();
    const deadline = Date.now() + 120_000;
    const add = target - held.length;
    // Connect first (in waves of 500, each greeted before the next: the pattern of devices coming back one by one),
    // then every new session sends LOGIN at once: the burst.
    const connected: Wire[] = [];
    for (let i = 0; i < add; i += 500) {
      const wave = await Promise.all(Array.from({ length: Math.min(500, add - i) }, () => connectOne(ports.relayImap, counts, deadline)));
      for (const wire of wave) if (wire) connected.push(wire);
    }
    const connectSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    for (const wire of await Promise.all(connected.map((w) => loginAndIdle(w, counts, deadline)))) if (wire) held.push(wire);
    const loginSeconds = (performance.now() - t1) / 1000;
    const memory = await gc();
    const rss = rssKb(relayPid);
    if (process.env.BENCH_MEMORY_DETAIL) {
      const per = (key: keyof NodeJS.MemoryUsage): string => ((memory[key] - baseMemory[key]) / 1024 / held.length).toFixed(1);
      process.stdout.write(`  ${held.length} held: per session JS heap ${per('heapUsed')} KB (total ${per('heapTotal')}), external ${per('external')} KB, array buffers ${per('arrayBuffers')} KB\n`);
    }
    const fresh: number[] = [];
    for (let i = 0; i < 11; i++) {
      const t = performance.now();
      const wire = await relayImapLogin(ports.relayImap);
      fresh.push(performance.now() - t);
      wire.close();
    }
    steps.push({ target: wanted, held: held.length, connectSeconds, loginSeconds, busyReplies: counts.busy ?? 0, failed: Object.entries(counts).filter(([k]) => k !== 'busy').map(([k, n]) => `${n} ${k}`).join(', ') || '0', rssMb: rss / 1024, kbPerSession: (rss - baseKb) / held.length, newLoginMs: p50(fresh) });
  }
  if (process.env.BENCH_HEAP_SNAPSHOT) await snapshot(process.env.BENCH_HEAP_SNAPSHOT);
  for (const wire of held) wire.close();
  return steps;
}

async function runRelay(label: string, config: Config, env: NodeJS.ProcessEnv, world: { sim: { approve(code: string, upn: string): void } }, dir: string, ports: Omit<Ports, 'relayImap' | 'relayPop3'>, ctx: SecureContext, withHeld: boolean): Promise<void> {
  const child = forkTs('support/relay-daemon.ts', env, '--expose-gc');
  child.send({ type: 'start', config, logFile: join(dir, `relay-${label.replace(/\W+/g, '-')}.log`) });
  const approve = await reply<{ userCode: string }>(child, 'approve');
  world.sim.approve(approve.userCode, SANDBOX_MAILBOX);
  const ready = await reply<{ imap: number; pop3: number }>(child, 'ready');
  const p: Ports = { ...ports, relayImap: ready.imap, relayPop3: ready.pop3 };
  const gc = async (): Promise<NodeJS.MemoryUsage> => {
    child.send({ type: 'gc' });
    const { memory } = await reply<{ memory: NodeJS.MemoryUsage }>(child, 'gc');
    await new Promise((r) => setTimeout(r, 500));
    return memory;
  };
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  out(`\n## relay ${label}`);
  // Warm-up: the first login pays the scrypt and the first upstream handshake.
  const t0 = performance.now();
  (await relayImapLogin(p.relayImap)).close();
  out(`first IMAP login (scrypt, token from memory): ${(performance.now() - t0).toFixed(1)} ms`);
  (await relayPop3Login(p.relayPop3)).close();

  const imap = await loginLatency(() => relayImapLogin(p.relayImap), () => directImapLogin(p.upImap, ctx), 'z LOGOUT');
  const pop3 = await loginLatency(() => relayPop3Login(p.relayPop3), () => directPop3Login(p.upPop3, ctx), 'QUIT');
  out('| figure | direct | relay | relay/direct |');
  out('|---|---|---|---|');
  out(`| IMAP login p50 (ms, ${LOGINS} sequential) | ${imap.direct.toFixed(2)} | ${imap.relay.toFixed(2)} | ${(imap.relay / imap.direct).toFixed(2)} |`);
  out(`| POP3 login p50 (ms, ${LOGINS} sequential) | ${pop3.direct.toFixed(2)} | ${pop3.relay.toFixed(2)} | ${(pop3.relay / pop3.direct).toFixed(2)} |`);
  if (MESSAGE_BYTES > 0) {
    const fetch = await transfer(() => relayImapLogin(p.relayImap), () => directImapLogin(p.upImap, ctx), imapFetch, child.pid);
    const retr = await transfer(() => relayPop3Login(p.relayPop3), () => directPop3Login(p.upPop3, ctx), pop3Retr, child.pid);
    out(`| IMAP FETCH ${values.mb} MB (MB/s) | ${fetch.direct.toFixed(0)} | ${fetch.relay.toFixed(0)} | ${(fetch.relay / fetch.direct).toFixed(2)} |`);
    out(`| POP3 RETR ${values.mb} MB (MB/s) | ${retr.direct.toFixed(0)} | ${retr.relay.toFixed(0)} | ${(retr.relay / retr.direct).toFixed(2)} |`);
    out(`(relay CPU per ${values.mb} MB transfer, median: FETCH ${fetch.relayCpuMs.toFixed(0)} ms, RETR ${retr.relayCpuMs.toFixed(0)} ms: TLS decryption upstream plus the second TCP stream to the device)`);
  }
  if (withHeld && HELD_STEPS.length > 0) {
    const snapshot = async (file: string): Promise<void> => {
      child.send({ type: 'snapshot', file });
      await reply(child, 'snapshot');
    };
    const steps = await heldSessions(p, child.pid!, gc, snapshot);
    out('');
    out('| idle IMAP sessions (LOGIN burst, then IDLE) | held | connect (greeted) | LOGIN burst to IDLE | "try again" replies | failed | relay RSS | per session | new login p50 while held |');
    out('|---|---|---|---|---|---|---|---|---|');
    for (const s of steps) {
      out(`| ${s.target.toLocaleString('en')} | ${s.held.toLocaleString('en')} | ${s.connectSeconds.toFixed(1)} s | ${s.loginSeconds.toFixed(1)} s | ${s.busyReplies} | ${s.failed} | ${s.rssMb.toFixed(0)} MB | ${s.kbPerSession.toFixed(1)} KB | ${s.newLoginMs.toFixed(1)} ms |`);
    }
    const holder = forkTs('support/tls-holder.ts', process.env, '--expose-gc');
    const count = Math.min(5000, Math.floor((hardLimit - 200) / 2));
    holder.send({ port: p.upImap, caPem: caPemForBaseline, count });
    const floor = await reply<{ baseKb: number; heldKb: number; held: number }>(holder);
    holder.kill();
    out(`| direct baseline: a process holding only idle TLS client connections to the same upstream | ${floor.held.toLocaleString('en')} | | | | | ${((floor.heldKb - floor.baseKb) / 1024).toFixed(0)} MB | ${((floor.heldKb - floor.baseKb) / floor.held).toFixed(1)} KB | |`);
    if (steps.some((s) => s.held < s.target)) out(`(descriptor hard limit ${hardLimit}: the relay needs two per held session, so the largest step holds at most ${Math.floor((hardLimit - 200) / 2)})`);
  }
  child.send({ type: 'stop' });
  await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-bench-sessions-'));
  const logger = createLogger({ level: 'warn', destination: pino.destination({ dest: join(dir, 'world.log'), sync: false }) });
  const world = await startSandboxWorld({ dir: join(dir, 'world'), smtpPort: 0, pop3Port: 0, imapPort: 0, devicePassword: PASSWORD, logger });
  const pki = await createPki('xoauth2-relay bench upstream CA');
  const caFile = join(dir, 'upstream-ca.pem');
  await writeFile(caFile, pki.caCertPem);
  caPemForBaseline = pki.caCertPem;
  const cert = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
  const upstream = forkTs('support/fake-upstream.ts');
  upstream.send({ certPem: cert.certPem, keyPem: cert.keyPem, messageBytes: MESSAGE_BYTES || 1024 });
  const up = await reply<{ imapPort: number; pop3Port: number }>(upstream);
  // The generator's own trust: one context, made once (the practical limit of a client).
  const ctx = createSecureContext({ ca: [...rootCertificates, pki.caCertPem], minVersion: 'TLSv1.2' });

  const base = world.loaded.config;
  const config: Config = {
    ...base,
    smtp: { ...base.smtp, maxConnectionsPerAddress: 100_000, maxConnectionsPerListener: 100_000 },
    // Every held session is on the one sandbox mailbox: lift the per-mailbox cap (Exchange's would be ~16–20).
    mailboxSessions: { maxPerMailbox: 100_000, waitSeconds: 10, maxWaitingPerMailbox: 100_000 },
    imap: { ...base.imap, upstream: { host: '127.0.0.1', port: up.imapPort } },
    pop3: { ...base.pop3, upstream: { host: '127.0.0.1', port: up.pop3Port } },
    upstreamTls: { extraCaFile: caFile },
  };
  process.stdout.write(`xoauth2-relay IMAP/POP3 benchmark: Node ${process.version}, loopback, ${LOGINS} logins each, ${values.mb} MB message, descriptors: hard ${hardLimit}, this process ${softLimit}\n`);
  const ports = { upImap: up.imapPort, upPop3: up.pop3Port };
  await runRelay('with upstreamTls.extraCaFile', config, process.env, world, dir, ports, ctx, true);
  if (!values['skip-no-extra-ca']) {
    const production: Config = { ...config, upstreamTls: { extraCaFile: null } };
    await runRelay('without extraCaFile (production path; CA via NODE_EXTRA_CA_CERTS)', production, { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, world, dir, ports, ctx, false);
  }
  upstream.disconnect();
  await world.close();
  if (process.env.BENCH_KEEP) process.stdout.write(`kept ${dir}\n`);
  else await rm(dir, { recursive: true, force: true });
}

await main();
