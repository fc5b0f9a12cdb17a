/**
 * The relay under test in a process of its own (forked by bench/sessions.ts), so its RSS and its descriptor
 * limit are its own: the real Daemon with the configuration it is sent, signed in through the sandbox identity
 * simulator's device-code flow (the parent approves the code). Requests over IPC: `start`, `gc`, `stop`.
 */
import { writeHeapSnapshot } from 'node:v8';
import { pino } from 'pino';
import type { Config } from '../../src/config/schema.js';
import { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';

type Request = { type: 'start'; config: Config; logFile: string } | { type: 'gc' } | { type: 'snapshot'; file: string } | { type: 'stop' };

let daemon: Daemon | null = null;
const send = (reply: object): void => void process.send!(reply);

async function handle(request: Request): Promise<void> {
  if (request.type === 'start') {
    const logger = createLogger({ level: (process.env.BENCH_RELAY_LOG_LEVEL ?? 'warn') as 'warn', destination: pino.destination({ dest: request.logFile, sync: false }) });
    daemon = await Daemon.start({ config: request.config, logger });
    const prompt = await daemon.tokens.get('scanner').startDeviceCode();
    send({ type: 'approve', userCode: prompt.userCode });
    await prompt.done;
    await daemon.tokens.accessTokenFor('scanner');
    send({ type: 'ready', imap: daemon.ports.imap[0], pop3: daemon.ports.pop3[0] });
  } else if (request.type === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    send({ type: 'gc', memory: process.memoryUsage() });
  } else if (request.type === 'snapshot') {
    send({ type: 'snapshot', file: writeHeapSnapshot(request.file) });
  } else {
    await daemon?.stop(2000);
    process.exit(0);
  }
}

process.on('message', (request: Request) => {
  handle(request).catch((err: unknown) => {
    process.stderr.write(`relay child: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
