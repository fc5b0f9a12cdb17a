/**
 * A spool in a temp dir, a scripted upstream, a fake token source and a delivery worker wired together, with
 * short retry settings so the tests run in seconds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Config } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/log.js';
import { DeliveryWorker, type DeliveryWorkerOptions } from '../../../src/smtp/delivery/delivery-worker.js';
import type { DeliveryEvent, DeliveryEventName } from '../../../src/smtp/delivery/record-outcome.js';
import type { NewEnvelope } from '../../../src/smtp/spool/envelope.js';
import { Spool } from '../../../src/smtp/spool/spool.js';
import { startScriptedUpstream, type ScriptedUpstream, type UpstreamScript, type UpstreamTls } from '../../support/scripted-upstream.js';
import { FakeTokens } from './fake-tokens.js';

export const mailboxes: Record<string, string> = { scanner: 'scanner@contoso.example', copier: 'copier@contoso.example' };

export interface Harness {
  stateDir: string;
  spool: Spool;
  upstream: ScriptedUpstream;
  tokens: FakeTokens;
  worker: DeliveryWorker;
  events: Array<{ name: DeliveryEventName; event: DeliveryEvent }>;
  /** The bytes of every message submitted, by id. */
  submitted: Map<string, Buffer>;
  /** Commits a small message for `account` (default scanner). */
  submit(opts?: { account?: string; from?: string; rcptTo?: string[]; body?: string }): Promise<string>;
  /** Resolves the first event `name` for message `id` (waits for it). */
  waitForEvent(name: DeliveryEventName, id: string, timeoutMs?: number): Promise<DeliveryEvent>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  tls: UpstreamTls;
  script?: UpstreamScript;
  limits?: Partial<Config['smtp']['delivery']>;
  tokens?: FakeTokens;
  /** Point the worker at this port instead of the upstream's (e.g. a closed one). */
  upstreamPort?: number;
  /** Trust the upstream's CA (default true). */
  trustUpstream?: boolean;
  worker?: Partial<DeliveryWorkerOptions>;
  /** Start the worker at once (default true). */
  start?: boolean;
}

export const message = (body = 'scan attached') =>
  Buffer.from(`From: scanner@contoso.example\r\nTo: alice@contoso.example\r\nSubject: Scan\r\nMessage-ID: <${body.length}.${Math.random()}@test>\r\n\r\n${body}\r\n`);

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const stateDir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-delivery-'));
  const spool = await Spool.open(stateDir, { recover: true });
  const upstream = await startScriptedUpstream({ dir: stateDir, tls: opts.tls, script: opts.script });
  const tokens = opts.tokens ?? new FakeTokens();
  const logger = createLogger({ level: (process.env.TEST_LOG_LEVEL as 'debug' | undefined) ?? 'silent' });
  const worker = new DeliveryWorker({
    spool,
    tokens,
    upstream: { host: '127.0.0.1', port: opts.upstreamPort ?? upstream.port, timeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 10_000 } },
    extraCaPem: opts.trustUpstream === false ? null : upstream.caCertPem,
    limits: { maxConnectionsPerMailbox: 3, maxMessagesPerMinute: 1000, retryInitialSeconds: 0.1, retryMaxSeconds: 0.4, maxAgeHours: 72, ...opts.limits },
    mailboxOf: (account) => {
      const mailbox = mailboxes[account];
      if (!mailbox) throw new Error(`no account ${account}`);
      return mailbox;
    },
    logger: logger.child({ component: 'delivery' }),
    rescanIntervalMs: 200,
    ...opts.worker,
  });
  const events: Harness['events'] = [];
  const submitted = new Map<string, Buffer>();
  for (const name of ['delivered', 'deferred', 'held', 'dead'] as const) worker.on(name, (event) => events.push({ name, event }));
  if (opts.start !== false) await worker.start();

  return {
    stateDir,
    spool,
    upstream,
    tokens,
    worker,
    events,
    submitted,
    async submit({ account = 'scanner', from, rcptTo = ['alice@contoso.example'], body } = {}) {
      const envelope: NewEnvelope = { device: 'floor2-mfp', account, mailFrom: from ?? mailboxes[account] ?? 'x@contoso.example', rcptTo, remoteAddress: '192.168.10.50', smtpUtf8: false };
      const bytes = message(body);
      const { id } = await spool.commit(envelope, Readable.from([bytes]));
      submitted.set(id, bytes);
      return id;
    },
    async waitForEvent(name, id, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find((e) => e.name === name && e.event.id === id);
        if (found) return found.event;
        if (Date.now() > deadline) throw new Error(`no ${name} event for ${id} after ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => [e.name, e.event.id, e.event.reply]))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      await worker.stop(5000);
      await upstream.stop();
      await spool.close(); // its summary write (≤ 1 s after a change) must not land in a directory being removed
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
